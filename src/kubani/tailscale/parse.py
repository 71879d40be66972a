"""Turn each source's JSON into the one peer model."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from kubani.errors import KubaniError
from kubani.models.peer import TailscalePeer

_ZERO_TIME_PREFIX = "0001-01-01"


class TailscaleError(KubaniError):
    """Tailscale (CLI, API or headscale) could not give us the tailnet."""


def _time(value: object) -> datetime | None:
    if not isinstance(value, str) or not value or value.startswith(_ZERO_TIME_PREFIX):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _ipv4(addresses: Iterable[str]) -> str | None:
    for address in addresses:
        try:
            if isinstance(ipaddress.ip_address(address), ipaddress.IPv4Address):
                return address
        except ValueError:
            continue
    return None


def _reply_error(source: str, detail: str) -> TailscaleError:
    return TailscaleError(f"unexpected reply from {source}", detail, "report this with --debug")


def _mapping(value: object, source: str, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _reply_error(source, f"{what} is not an object")
    return value


def _listed(reply: object, source: str, key: str) -> list[Any]:
    """The list a JSON reply carries under ``key``."""
    items = _mapping(reply, source, "the reply").get(key)
    if not isinstance(items, list):
        raise _reply_error(source, f"no '{key}' list in the reply")
    return items


def _peer_from_status_node(node: Mapping[str, Any], is_self: bool) -> TailscalePeer:
    ips = tuple(str(ip) for ip in node.get("TailscaleIPs") or ())
    online = bool(node.get("Online"))
    relayed = (
        not is_self
        and online
        and bool(node.get("Active"))
        and not node.get("CurAddr")
        and bool(node.get("Relay"))
    )
    return TailscalePeer(
        hostname=str(node.get("HostName", "")),
        dns_name=str(node.get("DNSName", "")).rstrip("."),
        tailscale_ips=ips,
        ipv4=_ipv4(ips),
        os=str(node.get("OS", "")),
        online=online,
        last_seen=None if online else _time(node.get("LastSeen")),
        tags=tuple(node.get("Tags") or ()),
        relay=str(node["Relay"]) if relayed else None,
        is_self=is_self,
    )


def peers_from_status(status: object) -> list[TailscalePeer]:
    """Peers from ``tailscale status --json`` (Self included, marked is_self)."""
    source = "tailscale status --json"
    body = _mapping(status, source, "the reply")
    peers = []
    if body.get("Self"):
        peers.append(_peer_from_status_node(_mapping(body["Self"], source, "Self"), True))
    for key, node in (body.get("Peer") or {}).items():
        peers.append(_peer_from_status_node(_mapping(node, source, f"Peer {key}"), False))
    return peers


def peers_from_api(devices: object) -> list[TailscalePeer]:
    """Peers from the API v2 ``GET /tailnet/{tailnet}/devices``."""
    source = "the Tailscale API"
    peers = []
    for raw in _listed(devices, source, "devices"):
        device = _mapping(raw, source, "a device")
        ips = tuple(str(ip) for ip in device.get("addresses") or ())
        online = bool(device.get("connectedToControl"))
        peers.append(
            TailscalePeer(
                hostname=str(device.get("hostname", "")),
                dns_name=str(device.get("name", "")).rstrip("."),
                tailscale_ips=ips,
                ipv4=_ipv4(ips),
                os=str(device.get("os", "")),
                online=online,
                last_seen=None if online else _time(device.get("lastSeen")),
                tags=tuple(device.get("tags") or ()),
            )
        )
    return peers


def peers_from_headscale(nodes: object, dns_suffix: str | None = None) -> list[TailscalePeer]:
    """Peers from headscale ``GET /api/v1/node``."""
    source = "headscale"
    peers = []
    for raw in _listed(nodes, source, "nodes"):
        node = _mapping(raw, source, "a node")
        ips = tuple(str(ip) for ip in node.get("ipAddresses") or ())
        online = bool(node.get("online"))
        given = str(node.get("givenName") or node.get("name") or "")
        # headscale before 0.28 split tags into forced and valid ones.
        tags = node.get("tags") or [*(node.get("forcedTags") or ()), *(node.get("validTags") or ())]
        peers.append(
            TailscalePeer(
                hostname=str(node.get("name", "")),
                dns_name=f"{given}.{dns_suffix.strip('.')}" if dns_suffix else given,
                tailscale_ips=ips,
                ipv4=_ipv4(ips),
                os="",
                online=online,
                last_seen=None if online else _time(node.get("lastSeen")),
                tags=tuple(dict.fromkeys(tags)),
            )
        )
    return peers


def mark_in_cluster(
    peers: Iterable[TailscalePeer], hostnames: Iterable[str], addresses: Iterable[str]
) -> list[TailscalePeer]:
    """Flag the peers whose hostname or any Tailscale IP is in the inventory."""
    names = {h.lower() for h in hostnames}
    ips = {str(ipaddress.ip_address(a)) for a in addresses}
    return [
        peer.model_copy(
            update={
                "in_cluster": peer.hostname.lower() in names
                or any(str(ipaddress.ip_address(ip)) in ips for ip in peer.tailscale_ips)
            }
        )
        for peer in peers
    ]
