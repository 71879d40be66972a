"""Merging the inventory, the tailnet and the API into one row per machine.

A node the inventory lists but the tailnet shows offline is *unreachable*, whatever the
API last heard from it; a node in the API but not in the inventory, or the reverse, is
flagged. Pure data: the CLI's `status` and the TUI both render it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from kubani.kube.fields import at, count, entries, optional_text, text
from kubani.kube.summary import NodeSummary
from kubani.models.peer import TailscalePeer
from kubani.vocabulary import NodeState, Role


@dataclass(frozen=True)
class InventoryNode:
    name: str
    role: str  # control-plane | worker
    tailscale_ip: str | None
    gpu: bool = False


@dataclass(frozen=True)
class MachineStatus:
    name: str
    state: NodeState
    role: str | None
    in_inventory: bool
    in_cluster: bool
    tailscale_ip: str | None
    tailnet: str  # online | offline | missing | unknown
    path: str | None  # direct | relay:<derp> | None
    node: NodeSummary | None = None
    gpu_allocated: int = 0
    flags: tuple[str, ...] = ()

    def as_json(self) -> dict[str, Any]:
        node = self.node
        return {
            "name": self.name,
            "state": self.state,
            "role": self.role,
            "in_inventory": self.in_inventory,
            "in_cluster": self.in_cluster,
            "tailscale_ip": self.tailscale_ip,
            "tailnet": self.tailnet,
            "path": self.path,
            "internal_ip": node.internal_ip if node else None,
            "roles": list(node.roles) if node else [],
            "version": node.kubelet_version if node else None,
            "schedulable": (not node.unschedulable) if node else None,
            "cpu_percent": round(node.cpu_percent, 1)
            if node and node.cpu_percent is not None
            else None,
            "memory_used": node.memory_used if node else None,
            "memory_allocatable": node.memory_allocatable if node else None,
            "gpu_capacity": node.gpu_capacity if node else 0,
            "gpu_allocated": self.gpu_allocated,
            "flags": list(self.flags),
            "held": (
                {
                    "since": node.held.since or None,
                    "reason": node.held.reason or None,
                    "override": node.held.override,
                }
                if node and node.held
                else None
            ),
        }


@dataclass(frozen=True)
class FluxObject:
    kind: str
    namespace: str
    name: str
    ready: str  # True | False | Unknown
    reason: str
    message: str
    revision: str | None
    suspended: bool = False

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "namespace": self.namespace,
            "name": self.name,
            "ready": self.ready,
            "reason": self.reason,
            "message": self.message,
            "revision": self.revision,
            "suspended": self.suspended,
        }


@dataclass(frozen=True)
class PodStatus:
    """One pod as ``kubectl get pods`` shows it."""

    namespace: str
    name: str
    ready: str  # "1/2"
    status: str  # the phase, or why it is not running (CrashLoopBackOff, Terminating, ...)
    restarts: int
    node: str | None
    created: str | None

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def pod_status(pod: dict[str, Any]) -> PodStatus:
    meta, spec, state = at(pod, "metadata"), at(pod, "spec"), at(pod, "status")
    containers = entries(state.get("containerStatuses"))
    wanted = len(entries(spec.get("containers"))) or len(containers)
    ready = sum(1 for c in containers if c.get("ready") is True)
    status = text(state.get("reason")) or text(state.get("phase")) or "Unknown"
    for container in containers:
        waiting = text(at(container, "state", "waiting").get("reason"))
        terminated = text(at(container, "state", "terminated").get("reason"))
        if waiting or (terminated and status == "Running"):
            status = waiting or terminated
            break
    if meta.get("deletionTimestamp"):
        status = "Terminating"
    return PodStatus(
        namespace=text(meta.get("namespace")),
        name=text(meta.get("name")),
        ready=f"{ready}/{wanted}",
        status=status,
        restarts=sum(count(c.get("restartCount")) for c in containers),
        node=optional_text(spec.get("nodeName")),
        created=optional_text(meta.get("creationTimestamp")),
    )


@dataclass
class ClusterStatus:
    cluster_name: str
    api_server: str | None
    api_error: str | None
    tailnet_error: str | None
    machines: list[MachineStatus] = field(default_factory=list)
    flux: list[FluxObject] = field(default_factory=list)
    metrics_available: bool = False
    pods: list[PodStatus] | None = None  # only when asked for

    @property
    def healthy(self) -> bool:
        return self.api_error is None and all(
            m.state is NodeState.READY and not m.flags for m in self.machines
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "cluster": self.cluster_name,
            "api_server": self.api_server,
            "api_error": self.api_error,
            "tailnet_error": self.tailnet_error,
            "healthy": self.healthy,
            "metrics_available": self.metrics_available,
            "nodes": [m.as_json() for m in self.machines],
            "flux": [f.as_json() for f in self.flux],
            **({"pods": [p.as_json() for p in self.pods]} if self.pods is not None else {}),
        }


def _peer_for(node: InventoryNode, peers: list[TailscalePeer]) -> TailscalePeer | None:
    for peer in peers:
        if node.tailscale_ip and node.tailscale_ip in peer.tailscale_ips:
            return peer
    for peer in peers:
        if peer.hostname.lower() == node.name.lower():
            return peer
    return None


def _path(peer: TailscalePeer | None) -> str | None:
    if peer is None or not peer.online:
        return None
    return f"relay:{peer.relay}" if peer.relay else "direct"


def merge(
    inventory: list[InventoryNode],
    peers: list[TailscalePeer] | None,
    nodes: list[NodeSummary] | None,
    gpu_allocated: dict[str, int] | None = None,
) -> list[MachineStatus]:
    """One row per machine. ``peers``/``nodes`` are None when that source was unavailable."""
    api = {n.name: n for n in nodes or []}
    allocated = gpu_allocated or {}
    rows: list[MachineStatus] = []
    for entry in inventory:
        peer = _peer_for(entry, peers) if peers is not None else None
        tailnet = (
            "unknown"
            if peers is None
            else ("missing" if peer is None else ("online" if peer.online else "offline"))
        )
        summary = api.get(entry.name)
        flags: list[str] = []
        if tailnet == "missing":
            flags.append("not on the tailnet")
        if summary is not None and entry.tailscale_ip and summary.internal_ip != entry.tailscale_ip:
            flags.append(f"InternalIP {summary.internal_ip} is not its tailnet IP")
        if tailnet in ("offline", "missing"):
            state = NodeState.UNREACHABLE
        elif nodes is None:
            state = NodeState.UNKNOWN
        elif summary is None:
            state = NodeState.NOT_JOINED
        else:
            state = NodeState.READY if summary.ready == "True" else NodeState.NOT_READY
        rows.append(
            MachineStatus(
                name=entry.name,
                state=state,
                role=entry.role,
                in_inventory=True,
                in_cluster=summary is not None,
                tailscale_ip=entry.tailscale_ip,
                tailnet=tailnet,
                path=_path(peer),
                node=summary,
                gpu_allocated=allocated.get(entry.name, 0),
                flags=tuple(flags),
            )
        )
    known = {entry.name for entry in inventory}
    for summary in sorted(api.values(), key=lambda s: s.name):
        if summary.name in known:
            continue
        peer = next(
            (p for p in peers or [] if summary.internal_ip in p.tailscale_ips),
            None,
        )
        rows.append(
            MachineStatus(
                name=summary.name,
                state=NodeState.READY if summary.ready == "True" else NodeState.NOT_READY,
                role=Role.CONTROL_PLANE if Role.CONTROL_PLANE in summary.roles else Role.WORKER,
                in_inventory=False,
                in_cluster=True,
                tailscale_ip=summary.internal_ip,
                tailnet="unknown"
                if peers is None
                else ("online" if peer and peer.online else "offline"),
                path=_path(peer),
                node=summary,
                gpu_allocated=allocated.get(summary.name, 0),
                flags=("in the cluster but not in the inventory",),
            )
        )
    return rows


def flux_object(kind: str, obj: dict[str, Any]) -> FluxObject:
    meta, status = at(obj, "metadata"), at(obj, "status")
    ready = next((c for c in entries(status.get("conditions")) if c.get("type") == "Ready"), {})
    revision = (
        text(status.get("lastAppliedRevision"))
        or text(at(status, "artifact").get("revision"))
        or text(status.get("lastAttemptedRevision"))
        or None
    )
    current = status.get("observedGeneration") == meta.get("generation")
    return FluxObject(
        kind=kind,
        namespace=text(meta.get("namespace")),
        name=text(meta.get("name")),
        ready=text(ready.get("status"), "Unknown") if current or ready else "Unknown",
        reason=text(ready.get("reason"), "Progressing" if not current else ""),
        message=text(ready.get("message")),
        revision=revision,
        suspended=at(obj, "spec").get("suspend") is True,
    )


def gpu_limit(pod: dict[str, Any]) -> int:
    """The nvidia.com/gpu a pod holds: its containers' limits, 0 once it has finished."""
    if at(pod, "status").get("phase") in ("Succeeded", "Failed"):
        return 0
    return sum(
        count(at(c, "resources", "limits").get("nvidia.com/gpu"))
        for c in entries(at(pod, "spec").get("containers"))
    )


def gpu_requests(pods: list[dict[str, Any]]) -> dict[str, int]:
    """nvidia.com/gpu held on each node by the pods bound to it."""
    per_node: dict[str, int] = {}
    for pod in pods:
        node = text(at(pod, "spec").get("nodeName"))
        gpus = gpu_limit(pod) if node else 0
        if gpus:
            per_node[node] = per_node.get(node, 0) + gpus
    return per_node
