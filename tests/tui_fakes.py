"""A ClusterSource with fixed data, for the TUI's Pilot and snapshot tests and benchmarks."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Any

from kubani.kube.client import KubeError
from kubani.models.peer import TailscalePeer

FIXED_NOW = datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)
CREATED = "2026-11-20T12:00:00Z"


def node(
    name: str, ip: str, ready: bool = True, role: str = "worker", gpu: int = 0
) -> dict[str, Any]:
    labels = {"kubernetes.io/hostname": name}
    if role == "control-plane":
        labels["node-role.kubernetes.io/control-plane"] = "true"
    capacity = {"cpu": "8", "memory": "32Gi", "pods": "110"}
    if gpu:
        capacity["nvidia.com/gpu"] = str(gpu)
    return {
        "metadata": {"name": name, "labels": labels, "creationTimestamp": CREATED,
                     "resourceVersion": "1"},
        "spec": {},
        "status": {
            "conditions": [{"type": "Ready", "status": "True" if ready else "Unknown",
                            "reason": "KubeletReady" if ready else "NodeStatusUnknown",
                            "message": "kubelet is posting ready status" if ready
                            else "Kubelet stopped posting node status."}],
            "addresses": [{"type": "InternalIP", "address": ip}],
            "capacity": capacity,
            "allocatable": {**capacity, "cpu": "7", "memory": "28Gi"},
            "nodeInfo": {"kubeletVersion": "v1.31.4+k3s1"},
        },
    }  # fmt: skip


def deployment(namespace: str, name: str, replicas: int) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": namespace, "resourceVersion": "1"},
        "spec": {"replicas": replicas},
        "status": {},
    }


def pod(namespace: str, owner: str, index: int, node_name: str, ready: bool = True,
        gpu: int = 0) -> dict[str, Any]:  # fmt: skip
    container: dict[str, Any] = {"name": "main", "resources": {}}
    if gpu:
        container["resources"] = {"limits": {"nvidia.com/gpu": gpu}}
    return {
        "metadata": {
            "name": f"{owner}-5d8f7-{index:05d}", "namespace": namespace,
            "creationTimestamp": CREATED, "resourceVersion": "1",
            "ownerReferences": [{"kind": "ReplicaSet", "name": f"{owner}-5d8f7",
                                 "controller": True}],
        },
        "spec": {"nodeName": node_name, "containers": [container]},
        "status": {"phase": "Running" if ready else "Pending",
                   "containerStatuses": [{"name": "main", "ready": ready,
                                          "restartCount": 0 if ready else 3}]},
    }  # fmt: skip


def event(namespace: str, name: str, reason: str, message: str, kind: str = "Normal",
          minutes_ago: int = 1, obj: str = "Pod") -> dict[str, Any]:  # fmt: skip
    stamp = FIXED_NOW.replace(minute=60 - minutes_ago if minutes_ago else 0, hour=11)
    return {
        "metadata": {"name": f"{name}.{reason.lower()}", "namespace": namespace},
        "involvedObject": {"kind": obj, "name": name, "namespace": namespace},
        "reason": reason, "message": message, "type": kind,
        "lastTimestamp": stamp.isoformat().replace("+00:00", "Z"),
    }  # fmt: skip


def flux(
    kind: str, name: str, ready: str, reason: str, message: str, revision: str
) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "flux-system", "generation": 1},
        "spec": {},
        "status": {"observedGeneration": 1, "lastAppliedRevision": revision,
                   "conditions": [{"type": "Ready", "status": ready, "reason": reason,
                                   "message": message}]},
    }  # fmt: skip


def sample_cluster() -> dict[str, list[dict[str, Any]]]:
    """A small home cluster: a desktop control plane, a NUC, a GPU box."""
    return {
        "nodes": [
            node("desk", "100.64.0.11", role="control-plane"),
            node("nuc", "100.64.0.12"),
            node("gpu-box", "100.64.0.13", gpu=4),
        ],
        "deployments": [deployment("web", "shop", 3), deployment("ml", "inference", 1)],
        "pods": [
            pod("web", "shop", 0, "nuc"), pod("web", "shop", 1, "desk"),
            pod("web", "shop", 2, "nuc", ready=False),
            pod("ml", "inference", 0, "gpu-box", gpu=1),
        ],
        "events": [
            event("web", "shop-5d8f7-00002", "BackOff", "Back-off restarting failed container",
                  kind="Warning", minutes_ago=2),
            event("ml", "inference-5d8f7-00000", "Scheduled", "Successfully assigned to gpu-box",
                  minutes_ago=5),
        ],
        "gitrepositories": [
            flux("GitRepository", "flux-system", "True", "Succeeded", "stored artifact",
                 "main@sha1:132f4e719209eb10b9485302f8593fc0e680f4fc"),
        ],
        "kustomizations": [
            flux("Kustomization", "infra-gpu", "True", "ReconciliationSucceeded", "Applied",
                 "main@sha1:132f4e719209eb10b9485302f8593fc0e680f4fc"),
            flux("Kustomization", "apps", "False", "DependencyNotReady",
                 "dependency 'flux-system/infra-storage' is not ready", "main@sha1:67e2c98a"),
        ],
    }  # fmt: skip


def sample_peers() -> list[TailscalePeer]:
    def peer(name: str, ip: str, relay: str | None = None, online: bool = True) -> TailscalePeer:
        return TailscalePeer(
            hostname=name, dns_name=f"{name}.tail.ts.net", tailscale_ips=(ip,), ipv4=ip,
            os="linux", online=online, last_seen=None, relay=relay,
        )  # fmt: skip

    return [peer("desk", "100.64.0.11"), peer("nuc", "100.64.0.12", relay="fra"),
            peer("gpu-box", "100.64.0.13")]  # fmt: skip


# Round trips of one ping to each node, as `tailscale ping` would report them.
SAMPLE_RTTS = {"100.64.0.11": 0.4, "100.64.0.12": 38.0, "100.64.0.13": 3.0}


class FakeSource:
    cluster_name = "home"
    server = "https://100.64.0.11:6443"

    def __init__(
        self,
        objects: dict[str, list[dict[str, Any]]] | None = None,
        metrics: dict[str, dict[str, str]] | None = None,
        peers: list[TailscalePeer] | None = None,
        stats: dict[str, dict[str, Any]] | None = None,
        rtts: dict[str, float] | None = None,
    ) -> None:
        self.objects = objects if objects is not None else sample_cluster()
        self.metrics = metrics
        self.peers = peers
        self.stats = stats or {}
        self.rtts = SAMPLE_RTTS if rtts is None else rtts
        self.pinged: list[list[str]] = []
        self.fetched: list[str] = []  # kinds, in the order they were listed
        self.holds: dict[str, asyncio.Event] = {}  # lists that answer once set
        self.queues: dict[str, asyncio.Queue[tuple[str, dict[str, Any]]]] = {}
        self.down = False
        self.lists = 0
        self.logs: dict[str, str] = {}

    def queue(self, kind: str) -> asyncio.Queue[tuple[str, dict[str, Any]]]:
        return self.queues.setdefault(kind, asyncio.Queue())

    def _check(self) -> None:
        if self.down:
            raise KubeError("GET /api/v1/nodes", "cannot reach https://100.64.0.11:6443", None)

    async def fetch(self, kind: str) -> tuple[list[dict[str, Any]], str]:
        self.fetched.append(kind)
        if kind in self.holds:
            await self.holds[kind].wait()
        self._check()
        self.lists += 1
        return copy.deepcopy(self.objects.get(kind, [])), "100"

    async def watch(
        self, kind: str, resource_version: str
    ) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        self._check()
        queue = self.queue(kind)
        while True:
            item = await queue.get()
            if item[0] == "FAIL":
                raise KubeError("watch", "connection reset", None)
            if item[0] == "GONE":
                raise KubeError("watch", "too old resource version", None, 410)
            yield item

    async def node_metrics(self) -> dict[str, dict[str, str]] | None:
        self._check()
        return self.metrics

    async def node_stats(self, name: str) -> dict[str, Any] | None:
        self._check()
        return self.stats.get(name)

    async def pod_log(self, namespace: str, name: str, tail: int = 200) -> str | None:
        return self.logs.get(f"{namespace}/{name}")

    async def tailnet(self) -> list[TailscalePeer] | None:
        return self.peers

    async def round_trips(self, addresses: Sequence[str]) -> dict[str, float]:
        self.pinged.append(list(addresses))
        return {address: self.rtts[address] for address in addresses if address in self.rtts}

    async def close(self) -> None:
        return None


SAMPLE_METRICS = {
    "desk": {"cpu": "1500m", "memory": "6Gi"},
    "nuc": {"cpu": "700m", "memory": "3Gi"},
    "gpu-box": {"cpu": "3", "memory": "12Gi"},
}
SAMPLE_STATS = {
    "desk": {"node": {"fs": {"usedBytes": 40 * 2**30, "capacityBytes": 100 * 2**30}}},
    "nuc": {"node": {"fs": {"usedBytes": 90 * 2**30, "capacityBytes": 100 * 2**30}}},
}
