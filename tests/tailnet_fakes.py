"""Test data: one set of tailnet devices rendered in the real wire formats.

``tailscale status --json`` (Go field names, ``Peer`` keyed by node key, zero time while
online, ``CurAddr`` empty and ``Relay`` set when traffic goes through DERP) and the API v2
device list are produced from the same devices, so that unit tests and benchmarks can
check both discovery sources against each other at any size. The lab runs the real
tailscale; this only feeds tests that need many or odd devices.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

ZERO_TIME = "0001-01-01T00:00:00Z"
CLIENT_VERSION = "1.82.5-t6c1e5f6a2-g1a2b3c4d5"


@dataclass
class TailnetDevice:
    hostname: str
    ipv4: str
    ipv6: str | None = None
    os: str = "linux"
    online: bool = True
    relay: str | None = None  # DERP region code when the path is relayed
    last_seen: datetime | None = None
    tags: list[str] = field(default_factory=list)
    backend_state: str = "Running"
    endpoint: str | None = None  # its "physical" address:port when the path is direct
    dns_label: str | None = None  # its MagicDNS label, unique in a tailnet (default: hostname)

    @property
    def label(self) -> str:
        return self.dns_label or self.hostname.lower()

    @property
    def node_key(self) -> str:
        return "nodekey:" + hashlib.sha256(self.label.encode()).hexdigest()

    @property
    def stable_id(self) -> str:
        return "n" + hashlib.sha256(self.label.encode()).hexdigest()[:10] + "CNTRL"

    @property
    def addresses(self) -> list[str]:
        return [self.ipv4, *([self.ipv6] if self.ipv6 else [])]


def _time(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if value else ZERO_TIME


def _status_node(device: TailnetDevice, suffix: str, index: int, is_self: bool) -> dict[str, Any]:
    active = device.online and not is_self
    direct = active and device.relay is None
    return {
        "ID": device.stable_id,
        "NodeID": 7000 + index,
        "PublicKey": device.node_key,
        "HostName": device.hostname,
        "DNSName": f"{device.label}.{suffix}.",
        "OS": device.os,
        "UserID": 1,
        "TailscaleIPs": device.addresses,
        "AllowedIPs": [f"{device.ipv4}/32", *([f"{device.ipv6}/128"] if device.ipv6 else [])],
        "Tags": list(device.tags) or None,
        "Addrs": [device.endpoint] if device.endpoint else [],
        "CurAddr": (device.endpoint or f"{device.ipv4}:41641") if direct else "",
        "Relay": device.relay or "lab",
        "RxBytes": 0,
        "TxBytes": 0,
        "Created": "2025-01-10T09:12:44Z",
        "LastWrite": ZERO_TIME,
        "LastSeen": ZERO_TIME if device.online else _time(device.last_seen),
        "LastHandshake": ZERO_TIME,
        "Online": device.online,
        "ExitNode": False,
        "ExitNodeOption": False,
        "Active": active,
        "InNetworkMap": True,
        "InMagicSock": active,
        "InEngine": active,
        "KeyExpiry": "2099-01-01T00:00:00Z",
    }


def render_status(
    devices: list[TailnetDevice], self_hostname: str, suffix: str = "tail0lab.ts.net"
) -> dict[str, Any]:
    """``tailscale status --json`` as seen from ``self_hostname``."""
    me = next(d for d in devices if d.hostname == self_hostname)
    running = me.backend_state == "Running"
    peers = {
        d.node_key: _status_node(d, suffix, i, False)
        for i, d in enumerate(devices)
        if d.hostname != self_hostname and running
    }
    return {
        "Version": CLIENT_VERSION,
        "TUN": True,
        "BackendState": me.backend_state,
        "HaveNodeKey": running,
        "AuthURL": "",
        "TailscaleIPs": me.addresses if running else None,
        "Self": _status_node(me, suffix, devices.index(me), True),
        "Health": [] if running else [f"state={me.backend_state}"],
        "MagicDNSSuffix": suffix,
        "CurrentTailnet": {"Name": "lab", "MagicDNSSuffix": suffix, "MagicDNSEnabled": True}
        if running
        else None,
        "CertDomains": None,
        "Peer": peers or None,
        "User": {"1": {"ID": 1, "LoginName": "lab@kubani", "DisplayName": "Kubani lab"}},
        "ClientVersion": None,
    }


def render_api_devices(
    devices: list[TailnetDevice], suffix: str = "tail0lab.ts.net"
) -> dict[str, Any]:
    """``GET /api/v2/tailnet/-/devices?fields=all``."""
    items = []
    for device in devices:
        items.append(
            {
                "addresses": device.addresses,
                "authorized": True,
                "blocksIncomingConnections": False,
                "clientVersion": CLIENT_VERSION,
                "created": "2025-01-10T09:12:44Z",
                "expires": "2099-01-01T00:00:00Z",
                "hostname": device.hostname,
                "id": device.stable_id.removeprefix("n")[:10],
                "nodeId": device.stable_id,
                "isExternal": False,
                "keyExpiryDisabled": True,
                "connectedToControl": device.online,
                "lastSeen": None if device.online else _time(device.last_seen),
                "machineKey": "mkey:" + device.node_key.removeprefix("nodekey:"),
                "name": f"{device.label}.{suffix}",
                "nodeKey": device.node_key,
                "os": device.os,
                "tags": list(device.tags) or None,
                "updateAvailable": False,
                "user": "lab@kubani",
                "clientConnectivity": {
                    "endpoints": [device.endpoint] if device.endpoint else [],
                    "derp": device.relay or "",
                    "mappingVariesByDestIP": False,
                },
            }
        )
    return {"devices": items}
