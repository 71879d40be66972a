"""A tailnet device, whatever source reported it.

A plain record rather than a pydantic model: every field is filled by the parsers in
``kubani.tailscale.parse``, which already turn each source's JSON into these types, and
``discover`` then runs without importing pydantic (about a third of its start-up)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any


@dataclass(frozen=True)
class TailscalePeer:
    hostname: str
    dns_name: str
    tailscale_ips: tuple[str, ...]
    ipv4: str | None
    os: str
    online: bool
    last_seen: datetime | None
    tags: tuple[str, ...] = ()
    relay: str | None = None
    is_self: bool = False
    in_cluster: bool = False

    def to_json(self) -> dict[str, Any]:
        """The peer as JSON data: lists for the tuples, ISO 8601 for the time (``Z`` for UTC)."""
        return {
            "hostname": self.hostname,
            "dns_name": self.dns_name,
            "tailscale_ips": list(self.tailscale_ips),
            "ipv4": self.ipv4,
            "os": self.os,
            "online": self.online,
            "last_seen": _iso(self.last_seen),
            "tags": list(self.tags),
            "relay": self.relay,
            "is_self": self.is_self,
            "in_cluster": self.in_cluster,
        }


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    text = moment.isoformat()
    if moment.utcoffset() == timedelta(0):
        text = text.removesuffix("+00:00") + "Z"
    return text
