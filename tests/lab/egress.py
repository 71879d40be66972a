"""Proof that nothing leaves the lab: a packet capture on every interface of this machine that
is not the lab's (lab bridges and veths, the management tailnet interfaces, loopback)."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

from kubani_lab.headscale import STUN_PORT
from kubani_lab.network import TAILNET, UNDERLAY
from kubani_lab.tailnet import TAILSCALED_PORT

# Anything that could only come from the lab: its underlay and tailnet ranges, tailscaled's
# WireGuard ports (nodes and management side), STUN.
LAB_TRAFFIC = (
    f"net {UNDERLAY} or net {TAILNET} or udp port {TAILSCALED_PORT} or udp port {STUN_PORT} "
    "or udp portrange 42000-42255 or port 53"
)
# A DNS query for one of these names would be a lab process looking for the outside world
# (the name of a query is plain text in the packet); other DNS traffic of the machine is not
# the lab's.
CALLING_HOME = ("tailscale", "headscale", "kubani", "derp", "ts.net")
_LAB_PREFIXES = ("lo", "kbr-", "kv-", "kts-")


def outside_interfaces() -> list[str]:
    """This machine's interfaces that are up and not the lab's."""
    links = json.loads(
        subprocess.run(
            ["ip", "-j", "link", "show", "up"], capture_output=True, text=True, check=True
        ).stdout
    )
    # `ip -j link show up` lists the interfaces that are down as empty objects.
    names = [str(link["ifname"]) for link in links if "ifname" in link]
    return [name for name in names if not name.startswith(_LAB_PREFIXES)]


class EgressCapture:
    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.files: dict[str, Path] = {}
        self.processes: list[subprocess.Popen[bytes]] = []
        for interface in outside_interfaces():
            target = folder / f"egress-{interface}.pcap"
            self.files[interface] = target
            self.processes.append(
                subprocess.Popen(
                    ["tcpdump", "-i", interface, "-n", "-U", "-w", str(target), LAB_TRAFFIC],
                    stdout=subprocess.DEVNULL,
                    stderr=(folder / f"egress-{interface}.log").open("wb"),
                )
            )
        deadline = time.monotonic() + 10
        while not all(f.exists() for f in self.files.values()) and time.monotonic() < deadline:
            time.sleep(0.1)

    def stop(self) -> dict[str, list[str]]:
        """Stop capturing; the lab packets seen on each outside interface."""
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            process.wait(timeout=10)
        seen = {}
        for interface, path in self.files.items():
            read = subprocess.run(
                ["tcpdump", "-n", "-r", str(path)], capture_output=True, text=True, check=True
            )
            seen[interface] = [line for line in read.stdout.splitlines() if _lab_packet(line)]
        return seen


def _lab_packet(line: str) -> bool:
    """A captured line that is the lab's: any packet of its ranges or ports, and DNS only
    when it asks for one of the names a lab process could call home to."""
    if ".53: " in line or ".53 > " in line:
        return any(name in line.lower() for name in CALLING_HOME)
    return True
