"""How good the path to a peer is: one ``tailscale ping`` (a disco ping: the tailnet's own
path, neither host's firewall) and its round-trip time, as the CLI prints it:

    pong from gpu-box (100.64.0.13, 41641) via 192.168.1.20:41641 in 2ms
    pong from nuc (100.64.0.12) via DERP(fra) in 38ms
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass

from kubani.tailscale.local import tailscale_binary

_PONG = re.compile(r"^pong from \S+ \((?P<ip>[^,)]+)[^)]*\) via (?P<via>\S+) in (?P<rtt>\S+)$")
# Go's time.Duration as printed: "2ms", "1.5s", "850µs", "1m2.5s".
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|μs|ms|s|m|h)")
_UNIT_MS = {"ns": 1e-6, "us": 1e-3, "µs": 1e-3, "μs": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4,
            "h": 3.6e6}  # fmt: skip


@dataclass(frozen=True)
class Pong:
    address: str
    via: str  # an endpoint (direct), DERP(<region>) or peer-relay(<...>)
    rtt_ms: float

    @property
    def relayed(self) -> bool:
        return self.via.startswith(("DERP(", "peer-relay("))


def duration_ms(text: str) -> float | None:
    """A Go duration in milliseconds, or None when it is not one."""
    if text == "0s":
        return 0.0
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(number + unit for number, unit in parts) != text:
        return None
    return sum(float(number) * _UNIT_MS[unit] for number, unit in parts)


def parse_pong(output: str) -> Pong | None:
    """The last pong in ``tailscale ping``'s output, or None when none came back."""
    for line in reversed(output.strip().splitlines()):
        found = _PONG.match(line.strip())
        if found is None:
            continue
        rtt = duration_ms(found["rtt"])
        if rtt is not None:
            return Pong(found["ip"].strip(), found["via"], rtt)
    return None


def ping(address: str, binary: str | None = None, timeout_s: float = 1.0) -> Pong | None:
    """One disco ping to ``address``; None when the CLI is missing or no pong came back
    within ``timeout_s`` (the path is then reported without a time, never as an error)."""
    resolved = shutil.which(tailscale_binary(binary))
    if resolved is None:
        return None
    # One ping: a direct pong ends it at once; a relayed one ends it a second later with
    # "direct connection not established" (exit 1), its pong printed all the same.
    command = [resolved, "ping", "-c", "1", f"--timeout={timeout_s:g}s", address]
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout_s + 3, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return parse_pong(done.stdout)
