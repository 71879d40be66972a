"""``init``: a new cluster's inventory from chosen tailnet devices, its reservations sized
from each machine's facts where SSH reaches it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from kubani.errors import KubaniError
from kubani.inventory.initial import Choice, build_nodes, write_new_inventory
from kubani.models.peer import TailscalePeer
from kubani.vocabulary import Role


@dataclass(frozen=True)
class Selection:
    """Which devices become nodes, by tailnet hostname, MagicDNS label or node name (any
    case)."""

    control_planes: Sequence[str]
    workers: Sequence[str] = ()
    gpus: Sequence[str] = ()
    workstations: Sequence[str] = ()


@dataclass(frozen=True)
class NewInventory:
    hosts: Path
    control_planes: list[str]
    workers: list[str]
    sized: list[str]  # nodes whose reservations come from their facts
    warnings: list[str] = field(default_factory=list)

    @property
    def nodes(self) -> list[str]:
        return self.control_planes + self.workers


def choose(peers: Sequence[TailscalePeer], selection: Selection) -> list[Choice]:
    """The chosen devices with their roles; refuses names the tailnet does not have."""
    if not selection.control_planes:
        raise KubaniError(
            "cannot set up the cluster",
            "no control plane chosen",
            "pass --control-plane HOST (and --worker HOST...), or run in a terminal",
        )
    # A device answers to its hostname, its MagicDNS label and the name it will have.
    by_name: dict[str, list[TailscalePeer]] = {}
    for peer in peers:
        for name in dict.fromkeys((peer.node_name, peer.magic_dns_label, peer.hostname.lower())):
            if name and peer not in by_name.setdefault(name, []):
                by_name[name].append(peer)
    chosen = [(n.lower(), Role.CONTROL_PLANE) for n in selection.control_planes]
    chosen += [(n.lower(), Role.WORKER) for n in selection.workers]
    unknown = [name or repr(name) for name, _ in chosen if name not in by_name]
    if unknown:
        raise KubaniError(
            "cannot set up the cluster",
            f"not on the tailnet: {', '.join(unknown)}",
            "check the names with `cluster-mgr discover`",
        )
    devices = [(name, role, _device(name, by_name)) for name, role in chosen]
    named_twice = [
        name for index, (name, _, peer) in enumerate(devices)
        if any(other is peer for _, _, other in devices[:index])
    ]  # fmt: skip
    if named_twice:
        raise KubaniError(
            "cannot set up the cluster",
            f"named twice (as control plane or worker): {', '.join(named_twice)}",
            "give each machine one role",
        )
    nodes = [peer for _, _, peer in devices]
    flags = [(n, "--gpu") for n in selection.gpus] + [
        (n, "--workstation") for n in selection.workstations
    ]
    stray = [f"{option} {n}" for n, option in flags if _device(n.lower(), by_name) not in nodes]
    if stray:
        raise KubaniError(
            "cannot set up the cluster",
            f"not among the chosen nodes: {', '.join(stray)}",
            "name it with --control-plane or --worker too",
        )
    gpus = [_device(n.lower(), by_name) for n in selection.gpus]
    desks = [_device(n.lower(), by_name) for n in selection.workstations]
    return [
        Choice(peer, role, any(p is peer for p in gpus), any(p is peer for p in desks))
        for _, role, peer in devices
    ]


def _device(name: str, by_name: dict[str, list[TailscalePeer]]) -> TailscalePeer:
    """The one tailnet device ``name`` names; refused when none, several, or this machine."""
    found = by_name.get(name, [])
    found = [p for p in found if not p.is_self] or found  # a node, where one answers too
    if not found:
        raise KubaniError(
            "cannot set up the cluster",
            f"not on the tailnet: {name or repr(name)}",
            "check the names with `cluster-mgr discover`",
        )
    if len(found) > 1:
        addresses = ", ".join(p.ipv4 or p.hostname for p in found)
        raise KubaniError(
            "cannot set up the cluster",
            f"{name} names {len(found)} devices ({addresses})",
            "rename one (`tailscale set --hostname`), or choose it by its MagicDNS name "
            "(`cluster-mgr discover` lists them)",
        )
    if found[0].is_self:
        raise KubaniError(
            "cannot set up the cluster",
            f"{name} is this machine, the management machine, which runs the playbooks "
            "against the nodes",
            "run cluster-mgr on another machine of the tailnet to make this one a node",
        )
    return found[0]


def _probe(hosts: Path) -> tuple[dict[str, tuple[int, int]], dict[str, str]]:
    """CPUs and memory of each node, from Ansible facts (read-only), and why the others
    gave none."""
    from kubani.ansible.adhoc import run_module

    run = run_module(hosts, "all", "ansible.builtin.setup", "gather_subset=min,hardware")
    if run.rc and not run.ok and not run.failed:
        raise KubaniError("Ansible did not run", run.why, "see `cluster-mgr doctor`")
    sizes: dict[str, tuple[int, int]] = {}
    for host, result in run.ok.items():
        facts = result.get("ansible_facts") or {}
        cpus = facts.get("ansible_processor_vcpus") or facts.get("ansible_processor_count")
        memory = facts.get("ansible_memtotal_mb")
        if cpus and memory:
            sizes[host] = (int(cpus), int(memory))
    return sizes, run.failed


def size_reservations(hosts: Path, choices: list[Choice]) -> tuple[list[str], list[str]]:
    """Reservations sized from each node's facts, written into the inventory; defaults stay
    where facts are missing. The nodes sized, and a warning for each that was not."""
    from kubani.inventory.store import edit_inventory

    try:
        sized, failed = _probe(hosts)
    except (KubaniError, OSError) as exc:
        # Ansible missing or unable to run: sizing is a suggestion, the inventory stands.
        return [], [f"could not read the nodes' sizes ({exc}); default reservations kept"]
    names = [c.peer.hostname.lower() for c in choices]
    warnings = [
        f"{name}: default reservations kept; its size is unknown: "
        f"{failed.get(name, 'no facts returned')}"
        for name in names
        if name not in sized
    ]
    if not sized:
        return [], warnings
    resized = [
        Choice(
            c.peer, c.role, c.gpu, c.workstation, *sized.get(c.peer.hostname.lower(), (None, None))
        )
        for c in choices
    ]
    with edit_inventory(hosts, "cannot record the reservations") as document:
        for node in build_nodes(resized, None):
            for key in ("reserved_cpu", "reserved_memory"):
                value = node.host_vars().get(key)
                if value is not None:
                    document.set(key, value, node.hostname)
    return sorted(name for name in names if name in sized), warnings


def create_inventory(
    output: Path,
    cluster_name: str,
    choices: list[Choice],
    ssh_user: str | None = None,
    probe: bool = True,
) -> NewInventory:
    """Write the new inventory (never over an existing one), then size its reservations."""
    extra = {"ansible_user": ssh_user} if ssh_user else {}
    hosts = write_new_inventory(output, cluster_name, build_nodes(choices, None), extra)
    sized, warnings = size_reservations(hosts, choices) if probe else ([], [])
    names = [(c.peer.hostname.lower(), c.role) for c in choices]
    return NewInventory(
        hosts,
        [name for name, role in names if role is Role.CONTROL_PLANE],
        [name for name, role in names if role is Role.WORKER],
        sized,
        warnings,
    )
