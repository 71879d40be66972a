"""Reading the tailnet policy from wherever it is (a file, the Tailscale API, headscale)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kubani.errors import KubaniError


def read_policy(
    policy_file: Path | None,
    source: str,
    tailnet: str,
    api_url: str | None,
    headscale_url: str | None,
    timeout: float,
) -> Any:
    """The policy as data: from ``policy_file`` (HuJSON), else the API or headscale."""
    from kubani.tailscale.policy import parse_hujson
    from kubani.tailscale.remote import (
        ApiCredentials,
        fetch_api_policy,
        fetch_headscale_policy,
    )

    if policy_file is not None:
        try:
            return parse_hujson(policy_file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            raise KubaniError(f"cannot read {policy_file}", str(exc), None) from exc
    if source == "headscale":
        text = fetch_headscale_policy(headscale_url, timeout=timeout)
        # No policy in headscale: every node reaches every other.
        return parse_hujson(text) if text.strip() else {}
    return fetch_api_policy(ApiCredentials.from_env(), tailnet, api_url, timeout)


def addresses_of_inventory(hosts: Path) -> list[str]:
    """The nodes' tailnet addresses (for policies written with IP ranges)."""
    from kubani.inventory.document import InventoryDocument

    entries = InventoryDocument(hosts).host_entries()
    return [str(e.variables["tailscale_ip"]) for e in entries if e.variables.get("tailscale_ip")]
