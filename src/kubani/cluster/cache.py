"""The live view's copy of the cluster, kept in sync from lists and watch events.

Every change reports which rows it touched, so that a view updates those rows only: a
pod event changes one workload's counts, whatever the number of pods.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from kubani.cluster.status import gpu_limit
from kubani.cluster.times import event_moment

Key = str
RUNNING = "Running"  # a pod's phase
WARNING = "Warning"  # an event's type


def object_key(obj: dict[str, Any]) -> Key:
    meta = obj.get("metadata") or {}
    namespace = meta.get("namespace")
    return f"{namespace}/{meta.get('name')}" if namespace else str(meta.get("name"))


WORKLOAD_KINDS = {
    "deployments": "Deployment",
    "statefulsets": "StatefulSet",
    "daemonsets": "DaemonSet",
}
WORKLOAD_PLURALS = {kind: plural for plural, kind in WORKLOAD_KINDS.items()}


def owner_of(pod: dict[str, Any]) -> tuple[str, str] | None:
    """(kind, namespace/name) of the workload a pod belongs to. A ReplicaSet's pods belong
    to its Deployment (the ReplicaSet is named <deployment>-<hash>)."""
    meta = pod.get("metadata") or {}
    for ref in meta.get("ownerReferences") or []:
        if not ref.get("controller", True):
            continue
        kind, name = ref.get("kind"), str(ref.get("name"))
        if kind == "ReplicaSet":
            return "Deployment", f"{meta.get('namespace')}/{name.rsplit('-', 1)[0]}"
        if kind in ("Deployment", "StatefulSet", "DaemonSet"):
            return str(kind), f"{meta.get('namespace')}/{name}"
        return str(kind), f"{meta.get('namespace')}/{name}"
    return None


@dataclass
class PodFacts:
    ready: bool
    restarts: int
    node: str | None
    phase: str


def pod_facts(pod: dict[str, Any]) -> PodFacts:
    status = pod.get("status") or {}
    containers = status.get("containerStatuses") or []
    phase = str(status.get("phase") or "Pending")
    ready = (
        all(c.get("ready") for c in containers) if containers else phase == RUNNING
    ) and phase == RUNNING
    return PodFacts(
        ready=ready,
        restarts=sum(int(c.get("restartCount") or 0) for c in containers),
        node=(pod.get("spec") or {}).get("nodeName"),
        phase=phase,
    )


@dataclass
class WorkloadCounts:
    pods: dict[Key, PodFacts] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return len(self.pods)

    @property
    def ready(self) -> int:
        return sum(1 for p in self.pods.values() if p.ready)

    @property
    def restarts(self) -> int:
        return sum(p.restarts for p in self.pods.values())


@dataclass
class Changes:
    """Row keys touched, per table; ``reset`` when a table must be rebuilt (after a list)."""

    touched: dict[str, set[Key]] = field(default_factory=dict)
    removed: dict[str, set[Key]] = field(default_factory=dict)
    reset: set[str] = field(default_factory=set)

    def touch(self, table: str, key: Key) -> None:
        self.touched.setdefault(table, set()).add(key)

    def remove(self, table: str, key: Key) -> None:
        self.removed.setdefault(table, set()).add(key)


class ClusterCache:
    def __init__(self) -> None:
        self.objects: dict[str, dict[Key, dict[str, Any]]] = {}
        self.versions: dict[str, str] = {}
        self.workloads: dict[tuple[str, Key], WorkloadCounts] = {}
        self._pod_owner: dict[Key, tuple[str, Key]] = {}
        self.pods_by_node: dict[str, set[Key]] = {}
        self._pod_gpus: dict[Key, int] = {}  # pods holding GPUs only
        self.pods_running = 0  # kept with the index: the overview counts no pods
        # When each event last happened (parsed once), and which events are warnings: the
        # events pane and the overview never parse every event again.
        self.event_moments: dict[Key, datetime] = {}
        self.warnings: set[Key] = set()

    def of(self, kind: str) -> dict[Key, dict[str, Any]]:
        return self.objects.setdefault(kind, {})

    # ---- writes ------------------------------------------------------------------------

    def replace(self, kind: str, items: list[dict[str, Any]], version: str) -> Changes:
        changes = Changes()
        previous = self.of(kind)
        fresh = {object_key(item): item for item in items}
        self.objects[kind] = {}
        if kind == "pods":
            self.workloads = {k: v for k, v in self.workloads.items() if not v.pods}
            self._pod_owner.clear()
            self.pods_by_node.clear()
            self._pod_gpus.clear()
            self.pods_running = 0
        if kind == "events":
            self.event_moments.clear()
            self.warnings.clear()
        for key, obj in fresh.items():
            self._store(kind, key, obj, changes)
        for key in set(previous) - set(fresh):
            changes.remove(self._table(kind), key)
        self.versions[kind] = version
        changes.reset.add(self._table(kind))
        if kind == "pods":
            changes.reset.add("workloads")
        return changes

    def apply(self, kind: str, event: str, obj: dict[str, Any]) -> Changes:
        changes = Changes()
        version = (obj.get("metadata") or {}).get("resourceVersion")
        if version:
            self.versions[kind] = str(version)
        if event == "BOOKMARK":
            return changes
        key = object_key(obj)
        if event == "DELETED":
            self._drop(kind, key, changes)
        else:
            self._store(kind, key, obj, changes)
        return changes

    @staticmethod
    def _table(kind: str) -> str:
        if kind in WORKLOAD_KINDS:
            return "workloads"
        if kind in ("gitrepositories", "helmrepositories", "kustomizations", "helmreleases"):
            return "flux"
        return kind

    def _store(self, kind: str, key: Key, obj: dict[str, Any], changes: Changes) -> None:
        # Which manager set which field: never shown, often a third of an object's size.
        (obj.get("metadata") or {}).pop("managedFields", None)
        self.of(kind)[key] = obj
        if kind == "pods":
            self._index_pod(key, obj, changes)
            return
        if kind == "events":
            self.event_moments[key] = event_moment(obj)
            if obj.get("type") == WARNING:
                self.warnings.add(key)
            else:
                self.warnings.discard(key)
        if kind in WORKLOAD_KINDS:
            workload = (WORKLOAD_KINDS[kind], key)
            self.workloads.setdefault(workload, WorkloadCounts())
            changes.touch("workloads", f"{workload[0]}:{key}")
            return
        table = self._table(kind)
        changes.touch(table, f"{kind}:{key}" if table == "flux" else key)

    def _drop(self, kind: str, key: Key, changes: Changes) -> None:
        obj = self.of(kind).pop(key, None)
        if obj is None:
            return
        if kind == "pods":
            self._unindex_pod(key, changes)
            return
        if kind == "events":
            self.event_moments.pop(key, None)
            self.warnings.discard(key)
        if kind in WORKLOAD_KINDS:
            workload = (WORKLOAD_KINDS[kind], key)
            counts = self.workloads.get(workload)
            if counts is not None and not counts.pods:
                del self.workloads[workload]
            changes.remove("workloads", f"{workload[0]}:{key}")
            return
        table = self._table(kind)
        changes.remove(table, f"{kind}:{key}" if table == "flux" else key)

    def _index_pod(self, key: Key, pod: dict[str, Any], changes: Changes) -> None:
        self._unindex_pod(key, changes, keep_rows=True)
        facts = pod_facts(pod)
        gpus = gpu_limit(pod)
        if gpus:
            self._pod_gpus[key] = gpus
        owner = owner_of(pod) or ("Pod", key)
        self._pod_owner[key] = owner
        self.workloads.setdefault(owner, WorkloadCounts()).pods[key] = facts
        self.pods_running += facts.phase == RUNNING
        changes.touch("workloads", f"{owner[0]}:{owner[1]}")
        if facts.node:
            self.pods_by_node.setdefault(facts.node, set()).add(key)
            changes.touch("nodes", facts.node)

    def _unindex_pod(self, key: Key, changes: Changes, keep_rows: bool = False) -> None:
        self._pod_gpus.pop(key, None)
        owner = self._pod_owner.pop(key, None)
        if owner is None:
            return
        counts = self.workloads.get(owner)
        facts = counts.pods.pop(key, None) if counts else None
        if facts is not None:
            self.pods_running -= facts.phase == RUNNING
        row = f"{owner[0]}:{owner[1]}"
        if counts is not None and not counts.pods and owner[0] == "Pod":
            del self.workloads[owner]
            if not keep_rows:
                changes.remove("workloads", row)
        else:
            changes.touch("workloads", row)
        if facts and facts.node:
            self.pods_by_node.get(facts.node, set()).discard(key)
            changes.touch("nodes", facts.node)

    # ---- reads -------------------------------------------------------------------------

    def workload(self, row: Key) -> tuple[tuple[str, Key], WorkloadCounts] | None:
        kind, _, key = row.partition(":")
        counts = self.workloads.get((kind, key))
        return ((kind, key), counts) if counts is not None else None

    def workload_object(self, kind: str, key: Key) -> dict[str, Any] | None:
        plural = WORKLOAD_PLURALS.get(kind)
        return self.of(plural).get(key) if plural else self.of("pods").get(key)

    def pods_on(self, node: str) -> list[dict[str, Any]]:
        pods = self.of("pods")
        return [pods[k] for k in sorted(self.pods_by_node.get(node, set())) if k in pods]

    def gpu_allocated(self, node: str) -> int:
        return sum(self._pod_gpus.get(key, 0) for key in self.pods_by_node.get(node, ()))
