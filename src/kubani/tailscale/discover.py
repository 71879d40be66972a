"""One entry point for discovery, whatever the source."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from pathlib import Path

from kubani.models.peer import TailscalePeer
from kubani.tailscale.local import check_backend, read_status
from kubani.tailscale.parse import (
    TailscaleError,
    mark_in_cluster,
    peers_from_api,
    peers_from_headscale,
    peers_from_status,
)
from kubani.tailscale.remote import ApiCredentials, fetch_api_devices, fetch_headscale_nodes
from kubani.vocabulary import PeerSource


@dataclass(frozen=True)
class DiscoveryOptions:
    source: PeerSource = PeerSource.CLI
    tailscale_bin: str | None = None
    status_file: Path | None = None
    tailnet: str = "-"
    api_url: str | None = None
    credentials: ApiCredentials = field(default_factory=ApiCredentials.from_env)
    headscale_url: str | None = None
    headscale_api_key: str | None = None
    dns_suffix: str | None = None
    timeout: float = 10.0


def fetch_peers(options: DiscoveryOptions) -> list[TailscalePeer]:
    if options.source is PeerSource.API:
        devices = fetch_api_devices(
            options.credentials, options.tailnet, options.api_url, options.timeout
        )
        return peers_from_api(devices)
    if options.source is PeerSource.HEADSCALE:
        nodes = fetch_headscale_nodes(
            options.headscale_url, options.headscale_api_key, options.timeout
        )
        return peers_from_headscale(nodes, options.dns_suffix)
    status = read_status(options.tailscale_bin, options.status_file, options.timeout)
    check_backend(status)
    return peers_from_status(status)


def discover(
    options: DiscoveryOptions,
    inventory_hostnames: set[str] | None = None,
    inventory_addresses: set[str] | None = None,
    online_only: bool = False,
    pattern: str | None = None,
) -> list[TailscalePeer]:
    peers = mark_in_cluster(
        fetch_peers(options), inventory_hostnames or set(), inventory_addresses or set()
    )
    if online_only:
        peers = [p for p in peers if p.online]
    if pattern:
        wanted = pattern.lower()
        peers = [
            p
            for p in peers
            if fnmatch.fnmatchcase(p.hostname.lower(), wanted)
            or fnmatch.fnmatchcase(p.dns_name.lower(), wanted)
        ]
    return sorted(peers, key=lambda p: (not p.is_self, p.hostname.lower()))


def _first_label(dns_name: str) -> str:
    return dns_name.lower().rstrip(".").split(".", 1)[0]


def pick_device(peers: list[TailscalePeer], name: str) -> TailscalePeer:
    """The one device called ``name``: its MagicDNS name (unique in a tailnet) decides when
    several devices report the same host name; otherwise the name must be unambiguous."""
    wanted = name.lower()
    by_dns = [p for p in peers if _first_label(p.dns_name) == wanted]
    if len(by_dns) == 1:
        return by_dns[0]
    candidates = by_dns or [p for p in peers if p.hostname.lower() == wanted]
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise TailscaleError(
            f"no device named {name!r} on the tailnet",
            f"{len(peers)} devices seen, none with that host name or MagicDNS name",
            "check the name with `cluster-mgr discover`",
        )
    listed = "; ".join(
        f"{p.hostname} ({p.dns_name or 'no DNS name'}, {p.ipv4 or 'no IPv4'}, {p.os or '?'}, "
        + (
            "online"
            if p.online
            else f"last seen {p.last_seen:%Y-%m-%d %H:%M}"
            if p.last_seen
            else "offline"
        )
        + ")"
        for p in candidates
    )
    raise TailscaleError(
        f"{len(candidates)} devices are called {name!r} on the tailnet",
        listed,
        "pass the address of the one you mean (`cluster-mgr add-node NAME IP`), or use its "
        "MagicDNS name",
    )
