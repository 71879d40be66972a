"""A new cluster's inventory from chosen tailnet devices (``cluster-mgr init``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from kubani.errors import KubaniError
from kubani.models.node import Node
from kubani.models.peer import TailscalePeer
from kubani.vocabulary import Role


@dataclass(frozen=True)
class Choice:
    peer: TailscalePeer
    role: Role
    gpu: bool = False
    workstation: bool = False
    cpus: int | None = None
    memory_mb: int | None = None


def suggest_reservations(
    cpus: int | None, memory_mb: int | None, workstation: bool
) -> dict[str, str]:
    """CPU and memory kept away from pods. A workstation keeps a quarter of its CPUs
    (at least 1) and a quarter of its memory (1-8 GiB) for its user; a server keeps what
    the OS and K3s need (10%, at least half a CPU and 512 MiB)."""
    if cpus is None or memory_mb is None:
        return {"reserved_cpu": "2", "reserved_memory": "4Gi"} if workstation else {}
    if workstation:
        cpu = max(1.0, cpus / 4)
        memory = min(8 * 1024, max(1024, memory_mb // 4))
    else:
        cpu = max(0.5, cpus / 10)
        memory = max(512, memory_mb // 10)
    cpu_text = f"{cpu:g}" if cpu == int(cpu) else f"{int(cpu * 1000)}m"
    return {"reserved_cpu": cpu_text, "reserved_memory": f"{memory}Mi"}


def build_nodes(choices: list[Choice], ssh_user: str | None) -> list[Node]:
    nodes = []
    for choice in choices:
        if choice.peer.ipv4 is None:
            raise KubaniError(
                f"cannot use {choice.peer.hostname}", "it has no tailnet IPv4 address", None
            )
        name = choice.peer.node_name
        if name is None:
            raise KubaniError(
                f"cannot name {choice.peer.hostname!r} in the inventory",
                "its name has no letter or digit a Kubernetes node name may hold",
                "give the machine another name (`sudo tailscale set --hostname NAME` on it)",
            )
        fields: dict[str, Any] = {
            "hostname": name,
            "tailscale_ip": choice.peer.ipv4,
            "role": choice.role,
            "gpu": choice.gpu,
            **suggest_reservations(choice.cpus, choice.memory_mb, choice.workstation),
        }
        if ssh_user:
            fields["ansible_user"] = ssh_user
        if choice.workstation:
            fields["node_labels"] = {"kubani.io/workstation": "true"}
        nodes.append(Node.model_validate(fields))
    return nodes


def write_new_inventory(
    folder: Path, cluster_name: str, nodes: list[Node], extra_vars: dict[str, Any]
) -> Path:
    """hosts.yml (validated through the engine) and group_vars/all.yml; refuses to
    overwrite an existing inventory."""
    from kubani.inventory.store import atomic_write, edit_inventory

    hosts = folder / "hosts.yml"
    if hosts.exists():
        raise KubaniError(
            f"will not write {hosts}",
            "an inventory is already there",
            "choose another --output, or edit it with add-node/remove-node",
        )
    if not any(n.role is Role.CONTROL_PLANE for n in nodes):
        raise KubaniError("cannot create the inventory", "no control plane chosen", "pick one")
    folder.mkdir(parents=True, exist_ok=True)
    header = (
        "---\n# Kubani inventory (written by `cluster-mgr init`). Edit with cluster-mgr\n"
        "# add-node / remove-node / config-set, or by hand: comments are kept.\n"
    )
    atomic_write(
        hosts,
        (header + yaml.safe_dump({"all": {"vars": {"cluster_name": cluster_name}}})).encode(),
        backup=False,
    )
    if extra_vars:
        atomic_write(
            folder / "group_vars" / "all.yml",
            ("---\n" + yaml.safe_dump(extra_vars, sort_keys=False)).encode(),
            backup=False,
        )
    try:
        with edit_inventory(hosts, "cannot write the new inventory") as document:
            for node in nodes:
                document.add_host(node.role.group, node.hostname, node.host_vars())
    except BaseException:
        hosts.unlink(missing_ok=True)
        raise
    return hosts
