"""Reading the tailnet policy from wherever it is (a file, the Tailscale API, headscale)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from kubani import userfiles
from kubani.errors import KubaniError
from kubani.vocabulary import HEADSCALE_API_KEY_VARIABLE, HEADSCALE_URL_VARIABLE, PeerSource

if TYPE_CHECKING:
    from kubani.tailscale.policy import PathVerdict


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
            text = userfiles.read_text(policy_file)
        except (OSError, UnicodeDecodeError) as exc:
            why = "it is not UTF-8 text" if isinstance(exc, UnicodeDecodeError) else str(exc)
            raise KubaniError(f"cannot read {policy_file}", why, None) from exc
        # An editor on Windows may begin the file with a byte-order mark.
        return parse_hujson(text.removeprefix(userfiles.BYTE_ORDER_MARK))
    if source == PeerSource.HEADSCALE:
        text = fetch_headscale_policy(headscale_url, timeout=timeout)
        # No policy in headscale: every node reaches every other.
        return parse_hujson(text) if text.strip() else {}
    return fetch_api_policy(ApiCredentials.from_env(), tailnet, api_url, timeout)


def addresses_of_inventory(hosts: Path) -> list[str]:
    """The nodes' tailnet addresses (for policies written with IP ranges)."""
    from kubani.inventory.document import InventoryDocument

    entries = InventoryDocument(hosts).host_entries()
    return [str(e.variables["tailscale_ip"]) for e in entries if e.variables.get("tailscale_ip")]


def live_policy_source() -> PeerSource | None:
    """Where the live policy can be read with the credentials this environment holds:
    headscale (HEADSCALE_URL + HEADSCALE_API_KEY), the Tailscale API, or nowhere."""
    import os

    from kubani.tailscale.remote import ApiCredentials

    if os.environ.get(HEADSCALE_URL_VARIABLE) and os.environ.get(HEADSCALE_API_KEY_VARIABLE):
        return PeerSource.HEADSCALE
    credentials = ApiCredentials.from_env()
    if credentials.api_key or (credentials.client_id and credentials.client_secret):
        return PeerSource.API
    return None


def live_policy_verdicts(addresses: list[str], timeout: float = 10.0) -> list[PathVerdict] | None:
    """The needed paths checked against the live policy, or None without credentials."""
    from kubani.tailscale.policy import check_policy, needed_paths

    source = live_policy_source()
    if source is None:
        return None
    policy = read_policy(None, source, "-", None, None, timeout)
    return check_policy(policy, needed_paths(), addresses)


def _device_id(listing: Any, key: str, id_fields: tuple[str, ...], address: str) -> str | None:
    items = listing.get(key) if isinstance(listing, dict) else None
    for item in items or []:
        if not isinstance(item, dict):
            continue
        addresses = item.get("addresses") or item.get("ipAddresses") or []
        if address in [str(a) for a in addresses]:
            found = next((item.get(f) for f in id_fields if item.get(f)), None)
            return str(found) if found else None
    return None


def require_control_credentials() -> str:
    """Where devices can be deleted from, with this environment's credentials; raises the
    fix when there is nowhere (before anything else is done)."""
    source = live_policy_source()
    if source is None:
        raise KubaniError(
            "cannot forget the device",
            "no Tailscale API or headscale credentials are set",
            "set TAILSCALE_API_KEY (or an OAuth client), or HEADSCALE_URL and HEADSCALE_API_KEY",
        )
    return source


def device_id_for(source: str, address: str, timeout: float = 10.0) -> str | None:
    """The id of the tailnet device that holds ``address`` (None when there is none)."""
    from kubani.tailscale.remote import ApiCredentials, fetch_api_devices, fetch_headscale_nodes

    if source == PeerSource.HEADSCALE:
        return _device_id(fetch_headscale_nodes(timeout=timeout), "nodes", ("id",), address)
    listing = fetch_api_devices(ApiCredentials.from_env(), timeout=timeout)
    return _device_id(listing, "devices", ("nodeId", "id"), address)


def forget_device(source: str, address: str, hostname: str, timeout: float = 10.0) -> str:
    """Delete the tailnet device that holds ``address``; returns its id."""
    from kubani.tailscale.remote import ApiCredentials, delete_api_device, delete_headscale_node

    device = device_id_for(source, address, timeout)
    if device is None:
        raise KubaniError(
            f"cannot forget {hostname}'s device",
            f"no device on the tailnet has the address {address}",
            "it may be gone already; check the admin console or `headscale nodes list`",
        )
    if source == PeerSource.HEADSCALE:
        delete_headscale_node(device, timeout=timeout)
    else:
        delete_api_device(ApiCredentials.from_env(), device, timeout=timeout)
    return device
