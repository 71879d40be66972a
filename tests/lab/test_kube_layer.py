"""The product's Kubernetes layer (``kubani.kube``) against the real API server the lab's
K3s runs, on a throwaway datastore, with a node kept by the real KWOK."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kubani.kube.client import Kube, KubeError
from kubani.kube.summary import summarise
from kubani_lab.k3s import metrics, pki
from kubani_lab.k3s.control import ControlPlane
from tests.lab.components_fixtures import (
    control_plane,
    get,
    kubectl,
    node_ready,
    own_address,
    start_kwok,
    wait_for,
)

pytestmark = pytest.mark.components

__all__ = ["control_plane"]  # the module's control plane fixture

NODE, NODE_IP = "kube-layer-1", "127.0.0.21"


def write_kubeconfig(path: Path, server: str, name: str = "lab") -> Path:
    path.write_text(
        "apiVersion: v1\nkind: Config\n"
        f"clusters: [{{name: {name}, cluster: {{server: '{server}'}}}}]\n"
        "users: [{name: u, user: {token: t}}]\n"
        f"contexts: [{{name: {name}, context: {{cluster: {name}, user: u}}}}]\n"
        f"current-context: {name}\n"
    )
    return path


@pytest.fixture(scope="module")
def node(control_plane: ControlPlane) -> Iterator[str]:
    process = start_kwok(control_plane, NODE, NODE_IP)
    try:
        wait_for(
            "the node to be Ready", lambda: node_ready(get(control_plane, "node", NODE)) == "True"
        )
        # Pods are admitted only once the controller manager has made the namespace's
        # default ServiceAccount; a test that runs first on a fresh server must not race it.
        wait_for(
            "the default ServiceAccount",
            lambda: kubectl(control_plane, "get", "serviceaccount", "default").returncode == 0,
        )
        yield NODE
    finally:
        process.terminate()
        process.wait(10)


def _run(plane: ControlPlane, coroutine: Any) -> Any:
    return asyncio.run(coroutine(Kube(plane.files.kubeconfig("admin"))))


def test_nodes_and_summary_with_metrics_through_the_aggregator(
    control_plane: ControlPlane, node: str
) -> None:
    tls, address = control_plane.files.tls, own_address()
    assert kubectl(control_plane, "label", "node", node,
                   "node-role.kubernetes.io/control-plane=true").returncode == 0  # fmt: skip
    assert kubectl(control_plane, "taint", "node", node, "gpu=yes:NoSchedule").returncode == 0

    async def no_metrics(kube: Kube) -> Any:
        async with kube:
            return await kube.node_metrics()

    assert _run(control_plane, no_metrics) is None  # no metrics API registered yet

    pki.issue(tls / "server-ca.crt", tls / "server-ca.key", tls / "layer-metrics.crt",
              tls / "layer-metrics.key", "metrics-server",
              sans=[address, "metrics-server.kube-system.svc"],
              server=True)  # fmt: skip
    admin = control_plane.admin_client()

    def summary(_node: dict[str, Any]) -> dict[str, Any]:
        return {"node": {"cpu": {"usageNanoCores": 700_000_000},
                         "memory": {"workingSetBytes": 2**30}}}  # fmt: skip

    server = metrics.MetricsServer(
        (address, 0),
        metrics.MetricsSource(lambda path: admin.request("GET", path)["items"], summary),
        tls / "layer-metrics.crt",
        tls / "layer-metrics.key",
        tls / "request-header-ca.crt",
    )
    server.serve_in_thread()
    try:
        port = server.server_address[1]
        for path, body in metrics.registration(address, port, (tls / "server-ca.crt").read_bytes()):
            admin.request("POST", path, body)

        async def scenario(kube: Kube) -> Any:
            async with kube:
                return await kube.nodes(), await kube.node_metrics()

        def served() -> bool:
            _, found = _run(control_plane, scenario)
            return bool(found and node in found)

        wait_for("the metrics API to answer", served)
        nodes, found = _run(control_plane, scenario)
    finally:
        server.shutdown()
    assert found[node] == {"cpu": "700000000n", "memory": "1048576Ki"}
    mine = next(n for n in nodes if n["metadata"]["name"] == node)
    row = summarise(mine, found[node])
    assert (row.name, row.status, row.roles, row.internal_ip) == (
        node, "Ready", ("control-plane",), NODE_IP,
    )  # fmt: skip
    assert "gpu=yes:NoSchedule" in row.taints
    assert row.cpu_percent == pytest.approx(700 / 40)  # KWOK's node: 4 CPUs (start_kwok)
    assert row.memory_used == 2**30
    assert kubectl(control_plane, "taint", "node", node, "gpu-").returncode == 0


def test_watch_resumes_and_reports_expiry(control_plane: ControlPlane, node: str) -> None:
    since = get(control_plane, "node", node)["metadata"]["resourceVersion"]

    async def scenario(kube: Kube) -> list[bool]:
        async with kube:
            seen: list[bool] = []

            async def consume() -> None:
                async for kind, changed in kube.watch_path("/api/v1/nodes", since):
                    if kind == "MODIFIED" and changed["metadata"]["name"] == node:
                        flag = bool(changed["spec"].get("unschedulable", False))
                        if not seen or seen[-1] != flag:
                            seen.append(flag)
                    if len(seen) == 2:
                        return

            task = asyncio.create_task(consume())
            await asyncio.sleep(0.5)
            await kube.cordon(node)
            await asyncio.sleep(0.5)
            await kube.cordon(node, unschedulable=False)
            await asyncio.wait_for(task, 20)
            return seen

    assert _run(control_plane, scenario) == [True, False]

    async def expired(kube: Kube) -> None:
        async with kube:
            # "1" is older than the API server's watch window.
            async for _ in kube.watch_path("/api/v1/nodes", "1"):
                pass

    with pytest.raises(KubeError, match="410"):
        _run(control_plane, expired)


POD = """
apiVersion: v1
kind: Pod
metadata: {name: %s, namespace: default, labels: {app: db}}
spec:
  nodeName: %s
  containers: [{name: c, image: registry.lab.kubani.test/db:1}]
"""
BUDGET = """
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: db, namespace: default}
spec: {minAvailable: 1, selector: {matchLabels: {app: db}}}
"""


def test_eviction_honours_the_budget_and_nodes_are_deleted(
    control_plane: ControlPlane, node: str
) -> None:
    for name in ("db-a", "db-b"):
        done = kubectl(control_plane, "apply", "-f", "-", stdin=POD % (name, node))
        assert done.returncode == 0, done.stderr
    assert kubectl(control_plane, "apply", "-f", "-", stdin=BUDGET).returncode == 0
    wait_for(
        "the budget to allow one disruption",
        lambda: (
            (get(control_plane, "pdb", "db").get("status") or {}).get("disruptionsAllowed") == 1
        ),
    )

    async def scenario(kube: Kube) -> tuple[bool, bool]:
        async with kube:
            return await kube.evict("default", "db-a"), await kube.evict("default", "db-b")

    assert _run(control_plane, scenario) == (True, False)

    def gone() -> bool:
        names = [p["metadata"]["name"] for p in get(control_plane, "pods")["items"]]
        return "db-a" not in names and "db-b" in names

    wait_for("the evicted pod to be gone", gone)

    async def listed(kube: Kube) -> list[str]:
        async with kube:
            return [p["metadata"]["name"] for p in await kube.pods(node=node)]

    assert "db-b" in _run(control_plane, listed)
    assert kubectl(control_plane, "delete", "pdb", "db").returncode == 0
    assert kubectl(control_plane, "delete", "pod", "db-b", "--wait=false").returncode == 0


def test_deleting_a_node(control_plane: ControlPlane) -> None:
    body = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "to-delete"}}
    assert kubectl(control_plane, "create", "-f", "-", stdin=json.dumps(body)).returncode == 0

    async def scenario(kube: Kube) -> list[str]:
        async with kube:
            await kube.delete_node("to-delete")
            return [n["metadata"]["name"] for n in await kube.nodes()]

    assert "to-delete" not in _run(control_plane, scenario)


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


def test_a_malformed_reply_is_reported_as_such(tmp_path: Path) -> None:
    """A server that answers the node list with something that is not one."""
    import http.server
    import threading

    class Odd(http.server.BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            listed = {"kind": "NodeList", "apiVersion": "v1", "metadata": {},
                      "items": [{"metadata": {"name": "odd"}, "status": 7}]}  # fmt: skip
            data = json.dumps(listed).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Odd)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", url)

    async def scenario() -> None:
        async with Kube(kubeconfig, timeout=5) as kube:
            await kube.nodes()

    try:
        with pytest.raises(KubeError, match=r"unexpected reply from http://127\.0\.0\.1"):
            asyncio.run(scenario())
    finally:
        server.shutdown()
