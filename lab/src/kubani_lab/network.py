"""The lab's underlay: a bridge on the host (the "LAN" between the lab's machines), and per
machine a network namespace holding its end of a veth as ``eth0``.

The underlay uses a slice of 198.18.0.0/15 (RFC 2544, reserved for tests) that exists only on
the bridge and inside the lab's namespaces; nothing routes it anywhere else and no namespace
has a default route. The tailnet (100.64.0.0/10) runs over it: tailscaled's WireGuard and
the control server's DERP relay are the only traffic between machines.

Every name carries the lab's short id, so that everything a lab made can be found and
removed again, also after a crash. Creation and removal are idempotent.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from kubani_lab.host import capture, run

UNDERLAY = "198.18.0.0/15"
TAILNET = "100.64.0.0/10"  # Tailscale's CGNAT range; each lab hands out a /24 of it
UNDERLAY_MTU = 1500
LAN_DEVICE = "eth0"
CONTROL = "control"  # the namespace of the tailnet's control server (headscale)
# tailscaled marks the packets of its own sockets (WireGuard, DERP, control, logs) with this
# fwmark (tailscale.com/net/tsconst LinuxBypassMark), whatever port or peer they use.
TAILSCALED_MARK = "0x80000"
TAILSCALED_MARK_MASK = "0xff0000"


@dataclass(frozen=True)
class LabNames:
    lab_id: str

    @property
    def bridge(self) -> str:
        return f"kbr-{self.lab_id}"

    def netns(self, machine: str) -> str:
        return f"kubani-{self.lab_id}-{machine}"

    def veth(self, index: int) -> str:
        return f"kv-{self.lab_id}-{index}"

    def machine(self, node: str) -> str:
        return f"kubani-{self.lab_id}-{node}"

    @property
    def tun(self) -> str:
        """The management side's tailnet interface (one per lab, so labs coexist)."""
        return f"kts-{self.lab_id}"

    @property
    def nft_table(self) -> str:
        return f"kubani_lab_{self.lab_id}"


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
        ["ip", "link", "set", names.bridge, "mtu", str(UNDERLAY_MTU), "up"],
        "cannot bring the lab bridge up",
    )


def ensure_machine_link(
    names: LabNames, machine: str, index: int, address: str, prefix: int
) -> None:
    """A namespace for ``machine`` whose ``eth0`` sits on the lab bridge at ``address``."""
    netns = names.netns(machine)
    if netns not in netns_list():
        run(["ip", "netns", "add", netns], f"cannot create the network namespace of {machine}")
    veth = names.veth(index)
    if not link_exists(veth):
        run(
            ["ip", "link", "add", veth, "type", "veth", "peer", "name", LAN_DEVICE, "netns", netns],
            f"cannot create the LAN link of {machine}",
        )
    run(
        ["ip", "link", "set", veth, "master", names.bridge, "mtu", str(UNDERLAY_MTU), "up"],
        f"cannot attach {machine} to the lab bridge",
    )
    inside = ["ip", "netns", "exec", netns]
    run(
        [*inside, "ip", "addr", "replace", f"{address}/{prefix}", "dev", LAN_DEVICE],
        f"cannot address {LAN_DEVICE} of {machine}",
    )
    run(
        [*inside, "ip", "link", "set", LAN_DEVICE, "mtu", str(UNDERLAY_MTU), "up"],
        f"cannot bring {LAN_DEVICE} of {machine} up",
    )
    run([*inside, "ip", "link", "set", "lo", "up"], f"cannot bring lo up on {machine}")


# tailscaled on Linux routes its peers in this table, looked up through ip rules it adds at
# preferences 5210-5270 and deletes when it stops, by preference and table, whoever added them.
TAILSCALE_ROUTE_TABLE = "52"
# A lab's own rule for its slice, past tailscaled's preferences (which it defends and deletes).
LAB_RULE_PREF = "5300"


def _lab_rule(tailnet: str) -> list[str]:
    return ["to", tailnet, "lookup", TAILSCALE_ROUTE_TABLE, "pref", LAB_RULE_PREF]


def ensure_tailnet_contained(tailnet: str) -> None:
    """The lab's tailnet slice never leaves this machine: the management tailscaled routes its
    peers (table 52, looked up first); any other address of the slice, such as a node that is
    logged out, is unreachable here instead of following the default route out.

    Every lab's management tailscaled shares the machine's network namespace, and with it
    tailscaled's ip rules: one that stops deletes them for all, and the others put them back
    only after a while (a quarter second, more when rate-limited). A rule of the lab's own,
    for its slice only, keeps its peers routed in between. A real management machine runs one
    tailscaled and never meets this."""
    run(
        ["ip", "route", "replace", "unreachable", tailnet],
        "cannot keep the lab tailnet on this machine",
    )
    rules = capture(["ip", "rule", "show", "to", tailnet], 10).stdout
    if f"lookup {TAILSCALE_ROUTE_TABLE}" not in rules:
        run(["ip", "rule", "add", *_lab_rule(tailnet)], "cannot route the lab tailnet")


def release_tailnet(tailnet: str) -> None:
    run(["ip", "route", "del", "unreachable", tailnet], "", check=False)
    for _ in range(8):  # one per earlier run that crashed between adding and recording it
        if run(["ip", "rule", "del", *_lab_rule(tailnet)], "", check=False).returncode != 0:
            break


def set_machine_link(names: LabNames, index: int, up: bool) -> None:
    """Cut a machine off the LAN (or plug it in again) at its bridge port."""
    run(
        ["ip", "link", "set", names.veth(index), "up" if up else "down"],
        "cannot change the machine's link",
    )


def _nft(script: str, what: str) -> None:
    result = run(["nft", "-f", "-"], what, check=False, stdin=script)
    if result.returncode != 0:
        run(["nft", "-f", "-"], what, stdin=script)  # raises with nft's own words


def ensure_guard(names: LabNames) -> None:
    """The host's side of "nothing leaves the lab": tailscaled's own packets (known by their
    fwmark) may use loopback and lab bridges only; any other attempt is counted and dropped.
    A table per lab, so that each lab's guard comes and goes with it."""
    table = names.nft_table
    mark = f"meta mark & {TAILSCALED_MARK_MASK} == {TAILSCALED_MARK}"
    _nft(
        f"table inet {table}\ndelete table inet {table}\n"
        f"table inet {table} {{\n"
        "  chain out {\n    type filter hook output priority filter; policy accept;\n"
        f'    oifname "lo" accept\n'
        f'    oifname "kbr-*" {mark} counter accept comment "tailscaled on a lab bridge"\n'
        f'    {mark} counter drop comment "tailscaled leaving the lab"\n'
        "  }\n}\n",
        "cannot install the lab's egress guard (nftables)",
    )


def guard_counters(names: LabNames) -> dict[str, int]:
    """Packets the guard saw: tailscaled on lab bridges, and tailscaled leaving the lab."""
    result = run(
        ["nft", "-j", "list", "table", "inet", names.nft_table], "cannot read the lab's guard"
    )
    counters: dict[str, int] = {}
    for item in json.loads(result.stdout).get("nftables", []):
        rule = item.get("rule")
        if not rule or "comment" not in rule:
            continue
        for expression in rule.get("expr", []):
            if "counter" in expression:
                counters[rule["comment"]] = int(expression["counter"]["packets"])
    return counters


def set_relayed(names: LabNames, index: int, control_address: str, relayed: bool) -> None:
    """Block (or allow again) UDP between a machine and every other one except the control
    server, at the bridge: WireGuard's direct paths fail and traffic falls back to DERP."""
    table = f"{names.nft_table}_relay_{index}"
    if not relayed:
        run(["nft", "delete", "table", "bridge", table], "cannot unblock", check=False)
        return
    port = names.veth(index)
    rules = (
        f'iifname "{port}" ip daddr != {control_address} meta l4proto udp drop\n'
        f'    oifname "{port}" ip saddr != {control_address} meta l4proto udp drop\n'
    )
    _nft(
        f"table bridge {table}\ndelete table bridge {table}\n"
        f"table bridge {table} {{\n"
        f"  chain forward {{\n    type filter hook forward priority filter; policy accept;\n"
        f"    {rules}  }}\n"
        f"  chain input {{\n    type filter hook input priority filter; policy accept;\n"
        f"    {rules}  }}\n"
        f"  chain output {{\n    type filter hook output priority filter; policy accept;\n"
        f"    {rules}  }}\n"
        "}\n",
        "cannot block direct UDP paths in the lab",
    )


def remove_everything(names: LabNames) -> list[str]:
    """Delete this lab's veths, namespaces, bridge and nft tables; what was removed."""
    removed = []
    prefix = f"kv-{names.lab_id}-"
    for link in _links():
        name = str(link.get("ifname", ""))
        if name.startswith(prefix) or name == names.tun:
            run(["ip", "link", "del", name], f"cannot delete {name}", check=False)
            removed.append(name)
    for netns in netns_list():
        if netns.startswith(f"kubani-{names.lab_id}-"):
            run(["ip", "netns", "del", netns], f"cannot delete netns {netns}", check=False)
            removed.append(netns)
    if link_exists(names.bridge):
        run(["ip", "link", "del", names.bridge], "cannot delete the lab bridge", check=False)
        removed.append(names.bridge)
    tables = run(["nft", "-j", "list", "tables"], "cannot list nft tables", check=False)
    try:
        listed = json.loads(tables.stdout or "{}").get("nftables", [])
    except ValueError:
        listed = []
    for item in listed:
        table = item.get("table") or {}
        if str(table.get("name", "")).startswith(names.nft_table):
            run(["nft", "delete", "table", table["family"], table["name"]], "", check=False)
            removed.append(f"nft {table['family']} {table['name']}")
    stale = Path("/run/netns")
    for leftover in stale.glob(f"kubani-{names.lab_id}-*") if stale.exists() else []:
        leftover.unlink(missing_ok=True)
    return removed
