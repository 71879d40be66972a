"""A tailnet device, whatever source reported it.

A plain record rather than a pydantic model: every field is filled by the parsers in
``kubani.tailscale.parse``, which already turn each source's JSON into these types, and
``discover`` then runs without importing pydantic (about a third of its start-up)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from kubani.models.names import is_dns_label, label_from

# What a fresh install calls itself: not a name that tells machines apart.
UNNAMED = "localhost"


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

    @property
    def magic_dns_label(self) -> str | None:
        """The first label of the MagicDNS name (Tailscale's own label for the machine)."""
        first = self.dns_name.split(".", 1)[0].lower()
        return first if is_dns_label(first) else None

    @property
    def node_name(self) -> str | None:
        """The name the machine gets in the inventory and in Kubernetes: its hostname where
        that is a DNS label, else its MagicDNS label, else its hostname made one. A machine
        still called localhost goes by its MagicDNS label (Tailscale numbers the duplicates)."""
        own = self.hostname.lower()
        if is_dns_label(own) and (own != UNNAMED or self.magic_dns_label is None):
            return own
        return self.magic_dns_label or label_from(self.hostname)

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
