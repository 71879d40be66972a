"""The control loops the stand-in runs: node lifecycle, a scheduler, workloads, manifests.

Deliberately small: enough that nodes turn NotReady when their k3s stops, pods of
Deployments and DaemonSets exist and land on nodes, and files in the auto-deploy manifests
folder are applied and kept in sync, as K3s's deploy controller does.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from kubani.lab.k3s.apiserver import ApiServer, Route
from kubani.lab.k3s.store import Conflict, Key, now


def _parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    with contextlib.suppress(ValueError):
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    return None


class Controllers:
    def __init__(
        self,
        api: ApiServer,
        grace_s: float = 40.0,
        manifests: Path | None = None,
        disabled: set[str] | None = None,
    ) -> None:
        self.api = api
        self.store = api.store
        self.grace = timedelta(seconds=grace_s)
        self.manifests = manifests
        self.disabled = disabled or set()
        self.applied: dict[str, str] = {}
        self.stop = threading.Event()

    def run_forever(self, period_s: float = 1.0) -> None:
        while not self.stop.wait(period_s):
            self.tick()

    def tick(self) -> None:
        for step in (self.node_lifecycle, self.deploy_manifests, self.workloads, self.schedule):
            try:
                step()
            except Exception as exc:
                self._event(
                    "kube-system",
                    "Warning",
                    "ControllerError",
                    f"{step.__name__}: {exc}",
                    {"kind": "Namespace", "name": "kube-system"},
                )

    # ---- nodes ------------------------------------------------------------------

    def node_lifecycle(self) -> None:
        limit = datetime.now(UTC) - self.grace
        for node in self.store.list("", "nodes")[0]:
            conditions = (node.get("status") or {}).get("conditions") or []
            ready = next((c for c in conditions if c.get("type") == "Ready"), None)
            if ready is not None and ready.get("status") == "True":
                self._clear_unreachable(node)
            if ready is None or ready.get("status") != "True":
                continue
            beat = _parse_time(ready.get("lastHeartbeatTime"))
            if beat is None or beat >= limit:
                continue
            stamp = now()
            for condition in conditions:
                condition.update(
                    {
                        "status": "Unknown",
                        "reason": "NodeStatusUnknown",
                        "message": "Kubelet stopped posting node status.",
                        "lastTransitionTime": stamp,
                    }
                )
            taints = [
                t
                for t in (node.get("spec") or {}).get("taints") or []
                if t.get("key") != "node.kubernetes.io/unreachable"
            ]
            taints.append(
                {
                    "key": "node.kubernetes.io/unreachable",
                    "effect": "NoSchedule",
                    "timeAdded": stamp,
                }
            )
            node.setdefault("spec", {})["taints"] = taints
            self._write_back(("", "nodes", "", node["metadata"]["name"]), node)
            self._event(
                "default",
                "Normal",
                "NodeNotReady",
                f"Node {node['metadata']['name']} status is now: NodeNotReady",
                {"kind": "Node", "name": node["metadata"]["name"]},
            )

    def _clear_unreachable(self, node: dict[str, Any]) -> None:
        taints = (node.get("spec") or {}).get("taints") or []
        kept = [t for t in taints if t.get("key") != "node.kubernetes.io/unreachable"]
        if len(kept) == len(taints):
            return
        node["spec"]["taints"] = kept
        self._write_back(("", "nodes", "", node["metadata"]["name"]), node)

    def _write_back(self, key: Key, obj: dict[str, Any]) -> None:
        """A controller's own update: no version check, generation unchanged; an object
        deleted meanwhile is simply gone."""
        with contextlib.suppress(Conflict, KeyError):
            self.store.update(key, obj, check_version=False, bump_generation=False)

    # ---- manifests ----------------------------------------------------------------

    def deploy_manifests(self) -> None:
        if self.manifests is None or not self.manifests.is_dir():
            return
        for path in sorted(self.manifests.glob("*.y*ml")):
            if path.name.startswith(".") or path.stem in self.disabled:
                continue
            content = path.read_bytes()
            digest = hashlib.sha256(content).hexdigest()
            if self.applied.get(path.name) == digest:
                continue
            documents = [d for d in yaml.safe_load_all(content) if isinstance(d, dict)]
            ok = all(self.apply(doc) for doc in documents)
            self._addon(path, digest, ok)
            if ok:
                self.applied[path.name] = digest

    def apply(self, obj: dict[str, Any]) -> bool:
        """Create or update one object as the deploy controller does (apply semantics)."""
        kind = self.api.registry.by_kind(str(obj.get("apiVersion")), str(obj.get("kind")))
        if kind is None:
            return False  # e.g. a custom resource whose CRD is not registered yet
        meta = obj.setdefault("metadata", {})
        namespace = (meta.get("namespace") or "default") if kind.namespaced else None
        route = Route(kind, namespace, meta.get("name"), None)
        body = json.dumps(obj).encode()
        response = self.api.handle(
            "PATCH", self._path(route), {"content-type": "application/apply-patch+yaml"}, body
        )
        return response.status < 300

    @staticmethod
    def _path(route: Route) -> str:
        kind = route.kind
        base = f"/api/{kind.version}" if not kind.group else f"/apis/{kind.group}/{kind.version}"
        if route.namespace:
            base += f"/namespaces/{route.namespace}"
        return f"{base}/{kind.plural}/{route.name}"

    def _addon(self, path: Path, digest: str, ok: bool) -> None:
        name = path.stem
        addon = {
            "apiVersion": "k3s.cattle.io/v1",
            "kind": "Addon",
            "metadata": {"name": name, "namespace": "kube-system"},
            "spec": {"source": str(path), "checksum": digest},
        }
        key = ("k3s.cattle.io", "addons", "kube-system", name)
        if self.store.get(key) is None:
            self.store.create(key, addon)
        else:
            self.store.update(key, addon, check_version=False)
        self._event(
            "kube-system",
            "Normal" if ok else "Warning",
            "AppliedManifest" if ok else "ApplyManifestFailed",
            f"{'Applied' if ok else 'Could not apply all of'} manifest at {path}",
            {"kind": "Addon", "name": name, "namespace": "kube-system"},
        )

    # ---- workloads -----------------------------------------------------------------

    def workloads(self) -> None:
        for deployment in self.store.list("apps", "deployments")[0]:
            self._replicate(
                deployment, "Deployment", int((deployment.get("spec") or {}).get("replicas", 1))
            )
        for statefulset in self.store.list("apps", "statefulsets")[0]:
            self._replicate(
                statefulset, "StatefulSet", int((statefulset.get("spec") or {}).get("replicas", 1))
            )
        nodes = [n for n in self.store.list("", "nodes")[0] if _ready(n)]
        for daemonset in self.store.list("apps", "daemonsets")[0]:
            eligible = [n for n in nodes if _fits(daemonset_template(daemonset), n)]
            self._replicate(
                daemonset, "DaemonSet", len(eligible), [n["metadata"]["name"] for n in eligible]
            )

    def _replicate(
        self, owner: dict[str, Any], kind: str, replicas: int, pinned: list[str] | None = None
    ) -> None:
        meta = owner["metadata"]
        namespace, name, uid = meta.get("namespace", "default"), meta["name"], meta["uid"]
        template = daemonset_template(owner)
        pods = [
            p
            for p in self.store.list("", "pods", namespace)[0]
            if any(r.get("uid") == uid for r in p["metadata"].get("ownerReferences") or [])
        ]
        suffix = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()[:10]
        for index in range(len(pods), replicas):
            pod_name = (
                f"{name}-{index}" if kind == "StatefulSet" else f"{name}-{suffix[:5]}{index:x}"
            )
            pod: dict[str, Any] = {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "name": pod_name,
                    "namespace": namespace,
                    "labels": copy.deepcopy((template.get("metadata") or {}).get("labels") or {}),
                    "ownerReferences": [
                        {
                            "apiVersion": owner.get("apiVersion", "apps/v1"),
                            "kind": kind,
                            "name": name,
                            "uid": uid,
                            "controller": True,
                        }
                    ],
                },
                "spec": copy.deepcopy(template.get("spec") or {}),
                "status": {"phase": "Pending"},
            }
            if pinned is not None:
                used = {p["spec"].get("nodeName") for p in pods}
                free = [n for n in pinned if n not in used]
                if not free:
                    break
                pod["spec"]["nodeName"] = free[0]
            with contextlib.suppress(Conflict):
                self.store.create(("", "pods", namespace, pod_name), pod)
                pods.append(pod)
        for extra in pods[replicas:]:
            self.store.delete(("", "pods", namespace, extra["metadata"]["name"]))
        pods = pods[:replicas]
        ready = sum(1 for p in pods if (p.get("status") or {}).get("phase") == "Running")
        status = {
            "observedGeneration": meta.get("generation", 1),
            "replicas": len(pods),
            "readyReplicas": ready,
            "availableReplicas": ready,
            "updatedReplicas": len(pods),
        }
        if kind == "DaemonSet":
            status = {
                "observedGeneration": meta.get("generation", 1),
                "desiredNumberScheduled": replicas,
                "currentNumberScheduled": len(pods),
                "numberReady": ready,
                "numberAvailable": ready,
                "updatedNumberScheduled": len(pods),
            }
        if kind == "Deployment":
            status["conditions"] = [
                {
                    "type": "Available",
                    "status": "True" if ready >= replicas else "False",
                    "reason": "MinimumReplicasAvailable"
                    if ready >= replicas
                    else "MinimumReplicasUnavailable",
                }
            ]
        if owner.get("status") != status:
            owner["status"] = status
            key = ("apps", f"{kind.lower()}s", namespace, name)
            self._write_back(key, owner)

    # ---- scheduling -----------------------------------------------------------------

    def schedule(self) -> None:
        nodes = [
            n
            for n in self.store.list("", "nodes")[0]
            if _ready(n) and not (n.get("spec") or {}).get("unschedulable")
        ]
        pods = self.store.list("", "pods")[0]
        load: dict[str, int] = {}
        for pod in pods:
            node_name = (pod.get("spec") or {}).get("nodeName")
            if node_name:
                load[node_name] = load.get(node_name, 0) + 1
        for pod in pods:
            if (pod.get("spec") or {}).get("nodeName"):
                continue
            fitting = [n for n in nodes if _fits(pod, n)]
            if not fitting:
                continue
            chosen = min(fitting, key=lambda n: load.get(n["metadata"]["name"], 0))
            name = chosen["metadata"]["name"]
            pod["spec"]["nodeName"] = name
            load[name] = load.get(name, 0) + 1
            meta = pod["metadata"]
            self._write_back(("", "pods", meta["namespace"], meta["name"]), pod)
            self._event(
                meta["namespace"],
                "Normal",
                "Scheduled",
                f"Successfully assigned {meta['namespace']}/{meta['name']} to {name}",
                {"kind": "Pod", "name": meta["name"], "namespace": meta["namespace"]},
            )

    # ---- events ---------------------------------------------------------------------

    def _event(
        self, namespace: str, kind: str, reason: str, message: str, involved: dict[str, str]
    ) -> None:
        stamp = now()
        digest = hashlib.sha256((reason + message + stamp).encode()).hexdigest()[:12]
        name = f"{involved.get('name', 'x')}.{digest}"
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": name, "namespace": namespace},
            "involvedObject": involved,
            "reason": reason,
            "message": message,
            "type": kind,
            "count": 1,
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "source": {"component": "k3s"},
        }
        with contextlib.suppress(Conflict):
            self.store.create(("", "events", namespace, name), event)


def daemonset_template(owner: dict[str, Any]) -> dict[str, Any]:
    template: dict[str, Any] = ((owner.get("spec") or {}).get("template")) or {}
    return template


def _ready(node: dict[str, Any]) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (node.get("status") or {}).get("conditions") or []
    )


def _fits(pod: dict[str, Any], node: dict[str, Any]) -> bool:
    """nodeSelector and NoSchedule/NoExecute taints against tolerations."""
    spec = pod.get("spec") or {}
    labels = node["metadata"].get("labels") or {}
    if any(labels.get(k) != v for k, v in (spec.get("nodeSelector") or {}).items()):
        return False
    tolerations = spec.get("tolerations") or []
    for taint in (node.get("spec") or {}).get("taints") or []:
        if taint.get("effect") == "PreferNoSchedule":
            continue
        if not any(_tolerates(t, taint) for t in tolerations):
            return False
    return True


def _tolerates(toleration: dict[str, Any], taint: dict[str, Any]) -> bool:
    if toleration.get("effect") and toleration["effect"] != taint.get("effect"):
        return False
    if toleration.get("operator") == "Exists":
        return not toleration.get("key") or toleration["key"] == taint.get("key")
    return bool(
        toleration.get("key") == taint.get("key")
        and toleration.get("value", "") == taint.get("value", "")
    )
