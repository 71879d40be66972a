"""One row per node, as both `cluster-mgr status` and `cluster-tui` show it."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from kubani.kube.fields import at, entries, mapping, optional_text, text
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
    annotations = at(node, "metadata", "annotations")
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


def amount(value: object) -> float | None:
    """A Kubernetes quantity as a number, or None when absent or malformed."""
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        return None
    try:
        number = float(parse_quantity(value))
    except QuantityError:
        return None
    return number if math.isfinite(number) else None


def internal_ip(node: dict[str, Any]) -> str | None:
    """The node's InternalIP (on Kubani's nodes: its tailnet address)."""
    addresses = entries(at(node, "status").get("addresses"))
    return next(
        (optional_text(a.get("address")) for a in addresses if a.get("type") == "InternalIP"), None
    )


def summarise(node: dict[str, Any], usage: dict[str, str] | None = None) -> NodeSummary:
    meta, spec, status = at(node, "metadata"), at(node, "spec"), at(node, "status")
    labels = mapping(meta.get("labels"))
    ready = next(
        (
            text(c.get("status"), "Unknown")
            for c in entries(status.get("conditions"))
            if c.get("type") == "Ready"
        ),
        "Unknown",
    )
    allocatable = mapping(status.get("allocatable"))
    usage = mapping(usage)
    memory = amount(allocatable.get("memory"))
    used_memory = amount(usage.get("memory"))
    return NodeSummary(
        name=text(meta.get("name")),
        ready=ready,
        roles=tuple(
            sorted(k.split("/", 1)[1] for k in labels if k.startswith("node-role.kubernetes.io/"))
        ),
        internal_ip=internal_ip(node),
        kubelet_version=text(at(status, "nodeInfo").get("kubeletVersion")),
        unschedulable=spec.get("unschedulable") is True,
        cpu_allocatable=amount(allocatable.get("cpu")),
        memory_allocatable=int(memory) if memory is not None else None,
        gpu_capacity=int(amount(at(status, "capacity").get("nvidia.com/gpu")) or 0),
        cpu_used=amount(usage.get("cpu")),
        memory_used=int(used_memory) if used_memory is not None else None,
        taints=tuple(
            f"{text(t.get('key'))}{'=' + text(t.get('value')) if t.get('value') else ''}"
            f":{text(t.get('effect'))}"
            for t in entries(spec.get("taints"))
        ),
        held=held_of(node),
    )
