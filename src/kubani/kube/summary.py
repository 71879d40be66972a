"""One row per node, as both `cluster-mgr status` and `cluster-tui` show it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kubani.quantity import QuantityError, parse_quantity
from kubani.vocabulary import GUARD_HELD_REASON, GUARD_HELD_SINCE, GUARD_OVERRIDE, GuardOverride


@dataclass(frozen=True)
class Held:
    """A workstation held by its owner: since when, why, and whether by hand."""

    since: str
    reason: str
    override: str | None = None

    def describe(self) -> str:
        """One line for people: `status` and the TUI's node screen."""
        if self.override == GuardOverride.HOLD:
            return "held by its owner (by hand)"
        if self.override == GuardOverride.RELEASE:
            return "released by its owner (by hand)"
        return f"held by its owner since {self.since}" + (f": {self.reason}" if self.reason else "")


def held_of(node: dict[str, Any]) -> Held | None:
    """What the node's workstation guard (or its owner, by hand) says of it, if anything."""
    annotations = (node.get("metadata") or {}).get("annotations") or {}
    override = annotations.get(GUARD_OVERRIDE)
    override = override if override in tuple(GuardOverride) else None
    since = annotations.get(GUARD_HELD_SINCE)
    if not isinstance(since, str) and override is None:
        return None
    reason = annotations.get(GUARD_HELD_REASON)
    return Held(
        since if isinstance(since, str) else "",
        reason if isinstance(reason, str) else "",
        override,
    )


@dataclass(frozen=True)
class NodeSummary:
    name: str
    ready: str  # "True", "False" or "Unknown"
    roles: tuple[str, ...]
    internal_ip: str | None
    kubelet_version: str
    unschedulable: bool
    cpu_allocatable: float | None
    memory_allocatable: int | None
    gpu_capacity: int
    cpu_used: float | None = None
    memory_used: int | None = None
    taints: tuple[str, ...] = field(default_factory=tuple)
    held: Held | None = None  # by its owner, as its workstation guard says

    @property
    def status(self) -> str:
        text = {"True": "Ready", "False": "NotReady"}.get(self.ready, "NotReady")
        held = self.held is not None and self.held.override != GuardOverride.RELEASE
        return (
            text + (",SchedulingDisabled" if self.unschedulable else "") + (",Held" if held else "")
        )

    @property
    def cpu_percent(self) -> float | None:
        if self.cpu_used is None or not self.cpu_allocatable:
            return None
        return 100.0 * self.cpu_used / self.cpu_allocatable


def amount(value: str | None) -> float | None:
    """A Kubernetes quantity as a number, or None when absent or malformed."""
    if value is None:
        return None
    try:
        return float(parse_quantity(value))
    except QuantityError:
        return None


def internal_ip(node: dict[str, Any]) -> str | None:
    """The node's InternalIP (on Kubani's nodes: its tailnet address)."""
    addresses = (node.get("status") or {}).get("addresses") or []
    return next((a.get("address") for a in addresses if a.get("type") == "InternalIP"), None)


def summarise(node: dict[str, Any], usage: dict[str, str] | None = None) -> NodeSummary:
    meta, spec, status = (
        node.get("metadata") or {},
        node.get("spec") or {},
        node.get("status") or {},
    )
    labels = meta.get("labels") or {}
    ready = next(
        (
            c.get("status", "Unknown")
            for c in status.get("conditions") or []
            if c.get("type") == "Ready"
        ),
        "Unknown",
    )
    allocatable = status.get("allocatable") or {}
    memory = amount(allocatable.get("memory"))
    used_memory = amount((usage or {}).get("memory"))
    return NodeSummary(
        name=meta.get("name", ""),
        ready=ready,
        roles=tuple(
            sorted(k.split("/", 1)[1] for k in labels if k.startswith("node-role.kubernetes.io/"))
        ),
        internal_ip=internal_ip(node),
        kubelet_version=(status.get("nodeInfo") or {}).get("kubeletVersion", ""),
        unschedulable=bool(spec.get("unschedulable")),
        cpu_allocatable=amount(allocatable.get("cpu")),
        memory_allocatable=int(memory) if memory is not None else None,
        gpu_capacity=int(amount((status.get("capacity") or {}).get("nvidia.com/gpu")) or 0),
        cpu_used=amount((usage or {}).get("cpu")),
        memory_used=int(used_memory) if used_memory is not None else None,
        taints=tuple(
            f"{t.get('key')}{'=' + t['value'] if t.get('value') else ''}:{t.get('effect')}"
            for t in spec.get("taints") or []
        ),
        held=held_of(node),
    )
