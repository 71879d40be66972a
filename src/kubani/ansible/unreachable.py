"""Why a node was unreachable, in the tailnet's words.

Kubani reaches nodes at their tailnet addresses. When SSH to one fails, the most likely
reason is the node's tailnet state (logged out, key expired, tailscaled stopped, machine
off), and this machine's own ``tailscale status`` knows it: the peer is offline, or gone
from the netmap. That beats the generic "check SSH" hint.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from kubani.ansible.progress import Failure, RunState
from kubani.errors import KubaniError


def _tailnet_addresses(inventory: Path, hosts: Iterable[str]) -> dict[str, str]:
    from kubani.inventory.document import InventoryDocument

    wanted = set(hosts)
    try:
        hosts_found = list(InventoryDocument(inventory).iter_hosts())
    except KubaniError:
        return {}
    found: dict[str, str] = {}
    for _group, name, variables in hosts_found:
        address = variables.get("tailscale_ip") or variables.get("ansible_host")
        if name in wanted and isinstance(address, str):
            found[name] = address
    return found


def _peer_with(status: Mapping[str, Any], address: str) -> Mapping[str, Any] | None:
    try:
        wanted = ipaddress.ip_address(address.split("/", 1)[0])
    except ValueError:
        return None
    for peer in (status.get("Peer") or {}).values():
        if not isinstance(peer, Mapping):
            continue
        for ip in peer.get("TailscaleIPs") or ():
            try:
                if ipaddress.ip_address(str(ip)) == wanted:
                    return peer
            except ValueError:
                continue
    return None


def tailnet_hint(host: str, address: str, status: Mapping[str, Any]) -> str | None:
    """The fix for an unreachable ``host``, from this machine's view of the tailnet."""
    peer = _peer_with(status, address)
    if peer is None:
        return (
            f"{address} is not on this machine's tailnet: {host} may be logged out, removed, "
            f"or on another tailnet; run `sudo tailscale up` on {host}, then check "
            "`cluster-mgr discover`"
        )
    if not peer.get("Online"):
        seen = str(peer.get("LastSeen") or "")
        when = "" if not seen or seen.startswith("0001-") else f" (last seen {seen})"
        return (
            f"{host} is offline on the tailnet{when}: it is off, logged out, its key expired or "
            f"tailscaled is stopped; run `sudo tailscale up` on {host}"
        )
    return None


def explain_unreachable(state: RunState, inventory: Path) -> None:
    """Replace the hint of each unreachable host's failure with the tailnet's account."""
    unreachable = {name for name, host in state.hosts.items() if host.unreachable}
    if not unreachable:
        return
    from kubani.tailscale.local import read_status
    from kubani.tailscale.parse import TailscaleError

    addresses = _tailnet_addresses(inventory, unreachable)
    try:
        status = read_status(timeout=5.0)
    except TailscaleError:
        return  # no tailscale here to ask: keep the generic hint
    hints = {host: tailnet_hint(host, addresses[host], status) for host in addresses}
    state.failures = [_with_hint(f, hints.get(f.host)) for f in state.failures]


def _with_hint(failure: Failure, hint: str | None) -> Failure:
    return replace(failure, hint=hint) if hint else failure
