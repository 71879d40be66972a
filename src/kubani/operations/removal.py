"""Taking a node out of the cluster: what may be removed (never the last control plane,
never below etcd's quorum unless forced), and the drain before the playbook runs."""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kubani.errors import KubaniError
from kubani.models.problems import Problems
from kubani.vocabulary import ProblemCode, Role

if TYPE_CHECKING:
    from kubani.inventory.document import InventoryDocument

Say = Callable[[str], None]


@dataclass(frozen=True)
class RemovalPlan:
    hostname: str
    removing_control_plane: bool
    control_planes: tuple[str, ...]  # every control plane of the inventory, the node included
    force: bool = False

    @property
    def remaining_control_planes(self) -> tuple[str, ...]:
        return tuple(name for name in self.control_planes if name != self.hostname)


def plan_removal(document: InventoryDocument, hostname: str, force: bool) -> RemovalPlan:
    """Raises when ``hostname`` is not in the inventory, or is its last control plane
    (unless forced: `reset` is how a cluster is taken down)."""
    from kubani.cluster.gather import inventory_nodes

    nodes = {n.name: n for n in inventory_nodes(document)}
    if hostname not in nodes:
        raise KubaniError(
            f"cannot remove node {hostname}",
            f"{hostname} is not in the inventory",
            "see the nodes with `cluster-mgr status`",
        )
    control_planes = tuple(n.name for n in nodes.values() if n.role == Role.CONTROL_PLANE)
    removing = nodes[hostname].role == Role.CONTROL_PLANE
    if removing and len(control_planes) == 1 and not force:
        raise KubaniError(
            f"refusing to remove {hostname}",
            "it is the last control plane: the cluster would be gone",
            "use `cluster-mgr reset` to take the cluster down, or pass --force",
        )
    return RemovalPlan(hostname, removing, control_planes, force)


def check_quorum(plan: RemovalPlan, ready: Collection[str]) -> None:
    """etcd needs a majority of its members: after the removal, enough of the remaining
    control planes must be Ready (``ready``: the names the API reports Ready)."""
    if not plan.removing_control_plane or plan.force:
        return
    remaining = plan.remaining_control_planes
    if not remaining:
        return
    up = [name for name in remaining if name in ready]
    needed = len(remaining) // 2 + 1
    if len(up) < needed:
        raise KubaniError(
            f"refusing to remove control plane {plan.hostname}",
            f"etcd would keep {len(remaining)} members of which only {len(up)} are Ready, "
            f"below the quorum of {needed}",
            "bring the other control planes back first, or pass --force",
        )


def check_inventory_after(plan: RemovalPlan, problems: Problems) -> None:
    """The inventory left behind: an even number of control planes tolerates no more
    failures than one fewer, so removing a control plane into that needs --force."""
    if not plan.removing_control_plane or plan.force:
        return
    even = [p for p in problems.warnings if p.code is ProblemCode.EVEN_CONTROL_PLANES]
    if even:
        raise KubaniError(
            f"refusing to remove control plane {plan.hostname}",
            even[0].message,
            "add another control plane first, or pass --force",
        )


@dataclass
class ClusterSide:
    """What happened in the cluster before the playbook: the drain, if any."""

    drained: dict[str, Any] | None = None
    warnings: list[str] = field(default_factory=list)


async def prepare(
    plan: RemovalPlan,
    kubeconfig: Path | None,
    drain_first: bool,
    timeout: float,
    say: Say,
) -> ClusterSide:
    """Check quorum through the API, then drain the node. An API that cannot be reached is a
    warning (a dead cluster's node can still be removed); a refused drain raises."""
    from kubani.kube.client import Kube
    from kubani.kube.drain import drain
    from kubani.kube.summary import summarise

    side = ClusterSide()
    try:
        kube = Kube(kubeconfig, timeout=10.0)
    except KubaniError as exc:
        side.warnings.append(f"cannot check the cluster first: {exc.line()}")
        return side
    async with kube:
        try:
            api_nodes = {n.name: n for n in map(summarise, await kube.nodes())}
        except KubaniError as exc:
            side.warnings.append(
                f"the API is not reachable, so {plan.hostname} is not drained: {exc.line()}"
            )
            return side
        check_quorum(plan, {name for name, n in api_nodes.items() if n.ready == "True"})
        if plan.hostname not in api_nodes or not drain_first:
            return side
        result = await drain(kube, plan.hostname, timeout, say)
        side.drained = {"evicted": result.evicted, "blocked": result.blocked, "kept": result.kept}
        if not result.complete and not plan.force:
            raise KubaniError(
                f"cannot drain {plan.hostname}",
                f"PodDisruptionBudgets still refuse to evict {', '.join(result.blocked)} "
                f"after {timeout:.0f}s (the node stays cordoned)",
                "scale those workloads up, relax their PDBs, or pass --force",
            )
    return side
