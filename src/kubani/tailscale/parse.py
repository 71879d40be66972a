"""Turn each source's JSON into the one peer model."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from kubani.errors import KubaniError
from kubani.models.addresses import address_text
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


def _addresses(value: object) -> tuple[str, ...]:
    items = value if isinstance(value, list | tuple) else [value] if value else []
    found = (address_text(item) for item in items)
    return tuple(address for address in found if address)


def _ipv4(addresses: Iterable[str]) -> str | None:
    """The first IPv4 address of ``addresses``, which ``address_text`` made canonical."""
    return next((address for address in addresses if ":" not in address), None)


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
    # Early releases (2020-21) wrote one address, TailAddr, before TailscaleIPs existed.
    ips = _addresses(node.get("TailscaleIPs") or node.get("TailAddr"))
    online = bool(node.get("Online"))
    relayed = (
        not is_self
        and online
        and bool(node.get("Active"))
        and not node.get("CurAddr")
        and bool(node.get("Relay"))
    )
    return TailscalePeer(
        hostname=_text(node.get("HostName")),
        dns_name=_text(node.get("DNSName")).rstrip("."),
        tailscale_ips=ips,
        ipv4=_ipv4(ips),
        os=_text(node.get("OS")),
        online=online,
        last_seen=None if online else _time(node.get("LastSeen")),
        tags=_strings(node.get("Tags")),
        relay=str(node["Relay"]) if relayed else None,
        is_self=is_self,
    )


def _text(value: object) -> str:
    return "" if value is None else str(value)


def _strings(value: object) -> tuple[str, ...]:
    if isinstance(value, list | tuple):
        return tuple(str(item) for item in value if item is not None)
    return (str(value),) if isinstance(value, str) and value else ()


def _peer_nodes(peers: object, source: str) -> list[tuple[str, Mapping[str, Any]]]:
    """``Peer`` is a map keyed by node key; some tools save it as a list. Entries that are
    not objects are skipped: one odd device never hides the others."""
    if isinstance(peers, Mapping):
        items = list(peers.items())
    elif isinstance(peers, list):
        items = [(str(i), node) for i, node in enumerate(peers)]
    elif peers in (None, ""):
        items = []
    else:
        raise _reply_error(source, "Peer is neither an object nor a list")
    return [(str(key), node) for key, node in items if isinstance(node, Mapping)]


def peers_from_status(status: object) -> list[TailscalePeer]:
    """Peers from ``tailscale status --json`` (Self included, marked is_self)."""
    source = "tailscale status --json"
    body = _mapping(status, source, "the reply")
    peers = []
    if body.get("Self"):
        peers.append(_peer_from_status_node(_mapping(body["Self"], source, "Self"), True))
    for _key, node in _peer_nodes(body.get("Peer"), source):
        peers.append(_peer_from_status_node(node, False))
    return peers


def peers_from_api(devices: object) -> list[TailscalePeer]:
    """Peers from the API v2 ``GET /tailnet/{tailnet}/devices``."""
    source = "the Tailscale API"
    peers = []
    for device in _listed(devices, source, "devices"):
        if not isinstance(device, Mapping):
            continue  # one odd device never hides the others
        ips = _addresses(device.get("addresses"))
        online = bool(device.get("connectedToControl"))
        peers.append(
            TailscalePeer(
                hostname=_text(device.get("hostname")),
                dns_name=_text(device.get("name")).rstrip("."),
                tailscale_ips=ips,
                ipv4=_ipv4(ips),
                os=_text(device.get("os")),
                online=online,
                last_seen=None if online else _time(device.get("lastSeen")),
                tags=_strings(device.get("tags")),
            )
        )
    return peers


def peers_from_headscale(nodes: object, dns_suffix: str | None = None) -> list[TailscalePeer]:
    """Peers from headscale ``GET /api/v1/node``."""
    source = "headscale"
    peers = []
    for node in _listed(nodes, source, "nodes"):
        if not isinstance(node, Mapping):
            continue  # one odd device never hides the others
        ips = _addresses(node.get("ipAddresses"))
        online = bool(node.get("online"))
        given = str(node.get("givenName") or node.get("name") or "")
        # headscale before 0.28 split tags into forced and valid ones.
        tags = _strings(node.get("tags")) or (
            *_strings(node.get("forcedTags")),
            *_strings(node.get("validTags")),
        )
        peers.append(
            TailscalePeer(
                hostname=_text(node.get("name")),
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
    ips = {found for found in map(address_text, addresses) if found}
    return [
        replace(
            peer,
            in_cluster=peer.hostname.lower() in names
            or any(ip in ips for ip in peer.tailscale_ips),
        )
        for peer in peers
    ]
