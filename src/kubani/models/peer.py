"""A tailnet device, whatever source reported it."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict


class TailscalePeer(BaseModel):
    model_config = ConfigDict(frozen=True)

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
