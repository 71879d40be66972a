"""The Kubernetes layer against the lab's stand-in API server (one implementation for both)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kubani.kube.client import Kube, KubeError
from kubani.kube.summary import summarise
from tests.standin_api import StandInApi, write_kubeconfig

NODE_INFO = {
    "architecture": "amd64",
    "bootID": "b",
    "containerRuntimeVersion": "containerd://1.7.23-k3s2",
    "kernelVersion": "6.1.0",
    "kubeProxyVersion": "v1.31.4+k3s1",
    "kubeletVersion": "v1.31.4+k3s1",
    "machineID": "m",
    "operatingSystem": "linux",
    "osImage": "Debian GNU/Linux 12 (bookworm)",
    "systemUUID": "s",
}


class Api(StandInApi):
    def create(self, path: str, body: dict[str, Any]) -> None:
        import json

        response = self.api.handle("POST", path, {}, json.dumps(body).encode())
        assert response.status == 201, response.body

    def node(self, name: str, gpus: int = 0) -> None:
        capacity = {"cpu": "4", "memory": "8Gi", "pods": "110"}
        if gpus:
            capacity["nvidia.com/gpu"] = str(gpus)
        self.create(
            "/api/v1/nodes",
            {
                "metadata": {
                    "name": name,
                    "labels": {"node-role.kubernetes.io/control-plane": "true"},
                },
                "spec": {"taints": [{"key": "gpu", "value": "yes", "effect": "NoSchedule"}]},
                "status": {
                    "conditions": [{"type": "Ready", "status": "True"}],
                    "addresses": [{"type": "InternalIP", "address": "100.64.0.11"}],
                    "allocatable": {"cpu": "3500m", "memory": "7Gi"},
                    "capacity": capacity,
                    "nodeInfo": NODE_INFO,
                },
            },
        )


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    instance = Api(tmp_path)
    yield instance
    instance.close()


def test_nodes_and_summary(api: Api) -> None:
    api.node("cp-1", gpus=4)
    api.api.metrics = lambda plural, ns: [
        {"metadata": {"name": "cp-1"}, "usage": {"cpu": "700m", "memory": "1Gi"}}
    ]

    async def scenario() -> tuple[list[dict[str, Any]], dict[str, dict[str, str]] | None]:
        async with Kube(api.kubeconfig) as kube:
            return await kube.nodes(), await kube.node_metrics()

    nodes, metrics = asyncio.run(scenario())
    assert metrics == {"cp-1": {"cpu": "700m", "memory": "1Gi"}}
    row = summarise(nodes[0], metrics["cp-1"])
    assert (row.name, row.status, row.roles, row.internal_ip) == (
        "cp-1",
        "Ready",
        ("control-plane",),
        "100.64.0.11",
    )
    assert row.gpu_capacity == 4 and row.taints == ("gpu=yes:NoSchedule",)
    assert row.cpu_percent == pytest.approx(20.0)
    assert row.memory_used == 2**30 and row.memory_allocatable == 7 * 2**30


def test_metrics_missing_is_none(api: Api) -> None:
    async def scenario() -> dict[str, dict[str, str]] | None:
        async with Kube(api.kubeconfig) as kube:
            return await kube.node_metrics()

    assert asyncio.run(scenario()) is None


def test_watch_resumes_and_reports_expiry(api: Api) -> None:
    api.node("cp-1")
    since = str(api.api.store.revision)

    async def scenario() -> list[tuple[str, str]]:
        async with Kube(api.kubeconfig) as kube:
            seen: list[tuple[str, str]] = []

            async def consume() -> None:
                async for kind, node in kube.watch_nodes(since):
                    seen.append((kind, node["spec"].get("unschedulable", False)))
                    if len(seen) == 2:
                        return

            task = asyncio.create_task(consume())
            await asyncio.sleep(0.3)
            await kube.cordon("cp-1")
            await kube.cordon("cp-1", unschedulable=False)
            await asyncio.wait_for(task, 10)
            return seen

    assert asyncio.run(scenario()) == [("MODIFIED", True), ("MODIFIED", False)]

    for index in range(2100):
        api.api.store.create(
            ("", "configmaps", "default", f"c{index}"), {"metadata": {"name": f"c{index}"}}
        )

    async def expired() -> None:
        async with Kube(api.kubeconfig) as kube:
            async for _ in kube.watch_nodes(since):
                pass

    with pytest.raises(KubeError, match="410"):
        asyncio.run(expired())


def test_eviction_and_deletion(api: Api) -> None:
    api.node("w-1")
    for name in ("a", "b"):
        api.create(
            "/api/v1/namespaces/default/pods",
            {
                "metadata": {"name": name, "labels": {"app": "db"}},
                "spec": {"nodeName": "w-1", "containers": [{"name": "c", "image": "i"}]},
                "status": {"phase": "Running"},
            },
        )
    api.create(
        "/apis/policy/v1/namespaces/default/poddisruptionbudgets",
        {
            "metadata": {"name": "db"},
            "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "db"}}},
        },
    )

    async def scenario() -> tuple[bool, bool, list[str], list[str]]:
        async with Kube(api.kubeconfig) as kube:
            first = await kube.evict("default", "a")
            second = await kube.evict("default", "b")
            left = [p["metadata"]["name"] for p in await kube.pods(node="w-1")]
            await kube.delete_node("w-1")
            return first, second, left, [n["metadata"]["name"] for n in await kube.nodes()]

    assert asyncio.run(scenario()) == (True, False, ["b"], [])


def test_unreachable_api_is_one_clear_error(tmp_path: Path) -> None:
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", "http://127.0.0.1:9", "x")

    async def scenario() -> None:
        async with Kube(kubeconfig, timeout=2) as kube:
            await kube.nodes()

    with pytest.raises(KubeError) as info:
        asyncio.run(scenario())
    assert "cannot reach http://127.0.0.1:9" in str(info.value)
    with pytest.raises(KubeError, match="cannot read the kubeconfig"):
        Kube(tmp_path / "missing")


def test_a_malformed_reply_is_reported_as_such(api: Api) -> None:
    api.api.store.create(
        ("", "nodes", "", "odd"),
        {"metadata": {"name": "odd"}, "status": {"nodeInfo": {"kubeletVersion": "x"}}},
    )

    async def scenario() -> None:
        async with Kube(api.kubeconfig) as kube:
            await kube.nodes()

    with pytest.raises(KubeError, match=r"unexpected reply from http://127\.0\.0\.1"):
        asyncio.run(scenario())
