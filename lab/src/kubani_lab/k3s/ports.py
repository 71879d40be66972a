"""Listening ports for lab processes that the kernel will not hand to anyone else.

A port found free by binding to port 0 comes from the ephemeral range, which the
kernel also hands to every outgoing connection: between the probe and the real
server's bind another process's connection can take it ("address already in use").
Ports below that range are only ever taken by an explicit bind, so a random one
that binds now stays free for the server in all but a true race with another
explicit binder, which the per-process record and randomness make unlikely.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
LOWEST = 10000
FALLBACK_EPHEMERAL_START = 32768
ATTEMPTS = 200

_handed_out: set[tuple[str, int]] = set()


def _ephemeral_start() -> int:
    try:
        return int(EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return FALLBACK_EPHEMERAL_START


def _binds(address: str, port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind((address, port))
        except OSError:
            return False
    return True


def unused_port(address: str = "127.0.0.1") -> int:
    """A port on ``address`` nothing listens on, outside the ephemeral range."""
    top = max(_ephemeral_start() - 1, LOWEST + 1)
    for _ in range(ATTEMPTS):
        port = random.randint(LOWEST, top)
        if (address, port) not in _handed_out and _binds(address, port):
            _handed_out.add((address, port))
            return port
    raise OSError(f"no unused port on {address} in {LOWEST}-{top} after {ATTEMPTS} tries")
