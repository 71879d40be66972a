"""The lab's tailnet: a bridge on the host, and per node a netns holding ``tailscale0``.

Every name carries the lab's short id, so that everything a lab made can be found and
removed again, also after a crash. Creation and removal are idempotent.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from kubani.lab.host import run

TAILSCALE_MTU = 1280  # what tailscaled sets on tailscale0


@dataclass(frozen=True)
class LabNames:
    lab_id: str

    @property
    def bridge(self) -> str:
        return f"kbr-{self.lab_id}"

    def netns(self, node: str) -> str:
        return f"kubani-{self.lab_id}-{node}"

    def veth(self, index: int) -> str:
        return f"kv-{self.lab_id}-{index}"

    def machine(self, node: str) -> str:
        return f"kubani-{self.lab_id}-{node}"


def _links() -> list[dict[str, object]]:
    result = run(["ip", "-j", "link", "show"], "cannot list network links")
    links: list[dict[str, object]] = json.loads(result.stdout or "[]")
    return links


def link_exists(name: str) -> bool:
    return any(link.get("ifname") == name for link in _links())


def netns_list() -> list[str]:
    result = run(["ip", "-j", "netns", "list"], "cannot list network namespaces", check=False)
    try:
        return [str(ns["name"]) for ns in json.loads(result.stdout or "[]")]
    except (ValueError, KeyError, TypeError):
        return []


def ensure_bridge(names: LabNames, address: str, prefix: int) -> None:
    if not link_exists(names.bridge):
        run(["ip", "link", "add", names.bridge, "type", "bridge"], "cannot create the lab bridge")
    run(
        ["ip", "addr", "replace", f"{address}/{prefix}", "dev", names.bridge],
        "cannot address the lab bridge",
    )
    run(
        ["ip", "link", "set", names.bridge, "mtu", str(TAILSCALE_MTU), "up"],
        "cannot bring the lab bridge up",
    )


def ensure_node_link(names: LabNames, node: str, index: int, address: str, prefix: int) -> None:
    netns = names.netns(node)
    if netns not in netns_list():
        run(["ip", "netns", "add", netns], f"cannot create the network namespace of {node}")
    veth = names.veth(index)
    if not link_exists(veth):
        run(
            [
                "ip",
                "link",
                "add",
                veth,
                "type",
                "veth",
                "peer",
                "name",
                "tailscale0",
                "netns",
                netns,
            ],
            f"cannot create the tailscale0 link of {node}",
        )
    run(
        ["ip", "link", "set", veth, "master", names.bridge, "mtu", str(TAILSCALE_MTU), "up"],
        f"cannot attach {node} to the lab bridge",
    )
    inside = ["ip", "netns", "exec", netns]
    run(
        [*inside, "ip", "addr", "replace", f"{address}/{prefix}", "dev", "tailscale0"],
        f"cannot address tailscale0 on {node}",
    )
    run(
        [*inside, "ip", "link", "set", "tailscale0", "mtu", str(TAILSCALE_MTU), "up"],
        f"cannot bring tailscale0 up on {node}",
    )
    run([*inside, "ip", "link", "set", "lo", "up"], f"cannot bring lo up on {node}")


def set_node_link(names: LabNames, index: int, up: bool) -> None:
    """Cut a node off the tailnet (or join it again) by its bridge port."""
    run(
        ["ip", "link", "set", names.veth(index), "up" if up else "down"],
        "cannot change the node's link",
    )


def remove_everything(names: LabNames) -> list[str]:
    """Delete this lab's veths, namespaces and bridge; what was removed, for the record."""
    removed = []
    prefix = f"kv-{names.lab_id}-"
    for link in _links():
        name = str(link.get("ifname", ""))
        if name.startswith(prefix):
            run(["ip", "link", "del", name], f"cannot delete {name}", check=False)
            removed.append(name)
    for netns in netns_list():
        if netns.startswith(f"kubani-{names.lab_id}-"):
            run(["ip", "netns", "del", netns], f"cannot delete netns {netns}", check=False)
            removed.append(netns)
    if link_exists(names.bridge):
        run(["ip", "link", "del", names.bridge], "cannot delete the lab bridge", check=False)
        removed.append(names.bridge)
    stale = Path("/run/netns")
    for leftover in stale.glob(f"kubani-{names.lab_id}-*") if stale.exists() else []:
        leftover.unlink(missing_ok=True)
    return removed
