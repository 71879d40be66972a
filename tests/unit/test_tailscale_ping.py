"""``tailscale ping``'s output read as a round trip, and the live source's pings through a
stand-in CLI that prints what the real one prints (cmd/tailscale/cli/ping.go)."""

from __future__ import annotations

import asyncio
import stat
from pathlib import Path

import pytest

from kubani.cluster.live import KubeSource
from kubani.tailscale.discover import DiscoveryOptions
from kubani.tailscale.ping import Pong, duration_ms, parse_pong, ping
from kubani.vocabulary import PeerSource


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ("pong from gpu-box (100.64.0.13, 41641) via 192.168.1.20:41641 in 2ms\n",
         Pong("100.64.0.13", "192.168.1.20:41641", 2.0)),
        ("pong from nuc (100.64.0.12) via DERP(fra) in 38ms\n",
         Pong("100.64.0.12", "DERP(fra)", 38.0)),
        ("pong from nuc (fd7a:115c:a1e0::1, 41641) via [2001:db8::2]:41641 in 1.5s\n",
         Pong("fd7a:115c:a1e0::1", "[2001:db8::2]:41641", 1500.0)),
        ("pong from b (100.64.0.2) via peer-relay(100.64.0.9:7777:vni:3) in 850µs\n",
         Pong("100.64.0.2", "peer-relay(100.64.0.9:7777:vni:3)", 0.85)),
        # Two pongs (relayed, then direct): the last one is the path in use.
        ("pong from a (100.64.0.1) via DERP(nyc) in 90ms\n"
         "pong from a (100.64.0.1) via 10.0.0.1:41641 in 4ms\n",
         Pong("100.64.0.1", "10.0.0.1:41641", 4.0)),
        ('ping "100.64.0.1" timed out\n', None),
        ("", None),
        ("pong from a (100.64.0.1) via DERP(x) in soon\n", None),
    ],
)  # fmt: skip
def test_pongs_are_read_as_the_cli_prints_them(output: str, expected: Pong | None) -> None:
    assert parse_pong(output) == expected


def test_go_durations() -> None:
    assert duration_ms("0s") == 0.0
    assert duration_ms("1m2.5s") == 62_500.0
    assert duration_ms("12us") == pytest.approx(0.012)
    assert duration_ms("2 ms") is None and duration_ms("ms") is None and duration_ms("3") is None


def _fake_tailscale(tmp_path: Path, body: str) -> Path:
    script = tmp_path / "tailscale"
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


# Answers as the real CLI does: direct at once; relayed, a pong and then exit 1; otherwise
# a time-out. It records its arguments.
PINGS = """echo "$@" >> "$(dirname "$0")/calls"
case "$5" in
  100.64.0.11) echo "pong from desk (100.64.0.11, 41641) via 192.168.1.11:41641 in 2ms" ;;
  100.64.0.12) echo "pong from nuc (100.64.0.12) via DERP(fra) in 38ms"
               echo "direct connection not established" >&2; exit 1 ;;
  *) echo "ping \\"$5\\" timed out"; echo "no reply" >&2; exit 1 ;;
esac"""


def test_ping_runs_one_disco_ping_and_takes_a_relayed_pong(tmp_path: Path) -> None:
    script = str(_fake_tailscale(tmp_path, PINGS))
    assert ping("100.64.0.11", script) == Pong("100.64.0.11", "192.168.1.11:41641", 2.0)
    relayed = ping("100.64.0.12", script)
    assert relayed is not None and relayed.relayed and relayed.rtt_ms == 38.0
    assert ping("100.64.0.99", script) is None
    assert ping("100.64.0.11", str(tmp_path / "missing")) is None
    assert (tmp_path / "calls").read_text().splitlines()[0] == "ping -c 1 --timeout=1s 100.64.0.11"


def test_the_live_source_pings_only_through_the_local_cli(tmp_path: Path) -> None:
    script = str(_fake_tailscale(tmp_path, PINGS))
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\n"
        "clusters: [{name: c, cluster: {server: 'https://127.0.0.1:9'}}]\n"
        "users: [{name: u, user: {token: t}}]\n"
        "contexts: [{name: c, context: {cluster: c, user: u}}]\ncurrent-context: c\n"
    )
    addresses = ["100.64.0.11", "100.64.0.12", "100.64.0.99"]

    async def round_trips(options: DiscoveryOptions | None) -> dict[str, float]:
        source = KubeSource(kubeconfig, None, "home", options)
        try:
            return await source.round_trips(addresses)
        finally:
            await source.close()

    local = DiscoveryOptions(tailscale_bin=script)
    assert asyncio.run(round_trips(local)) == {"100.64.0.11": 2.0, "100.64.0.12": 38.0}
    api = DiscoveryOptions(source=PeerSource.API, tailscale_bin=script)
    assert asyncio.run(round_trips(api)) == {}
    assert asyncio.run(round_trips(None)) == {}
