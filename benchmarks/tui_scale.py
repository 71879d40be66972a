"""cluster-tui at scale, against the stand-in API server holding many nodes and pods.

The API server runs in its own process (so that the TUI's memory is the TUI's); the TUI
runs headless (Textual's test driver) with the real KubeSource over HTTP. Measured:
time from start to the first full screen (every node and workload row present), time
for one pod change to reach its row (median and p95 of 20 changes), and the TUI
process's peak RSS. Run: uv run python benchmarks/tui_scale.py [--nodes N --pods N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

PODS_PER_WORKLOAD = 10


def _node(index: int) -> dict[str, Any]:
    name = f"node-{index:04d}"
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
        "spec": {},
        "status": {
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}],
            "addresses": [{"type": "InternalIP", "address": f"100.{64 + index // 65536}."
                           f"{index // 256 % 256}.{index % 256}"}],
            "capacity": {"cpu": "8", "memory": "32Gi"},
            "allocatable": {"cpu": "7", "memory": "28Gi"},
            "nodeInfo": {"kubeletVersion": "v1.31.4+k3s1"},
        },
    }  # fmt: skip


def _pod(index: int, nodes: int) -> tuple[str, dict[str, Any]]:
    workload, namespace = index // PODS_PER_WORKLOAD, f"ns-{index // 1000:03d}"
    name = f"app-{workload:05d}-7f9c4-{index:06d}"
    return namespace, {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "ownerReferences": [{"kind": "ReplicaSet", "name": f"app-{workload:05d}-7f9c4",
                                 "controller": True, "uid": "x"}],
        },
        "spec": {"nodeName": f"node-{index % nodes:04d}", "containers": [{"name": "c"}]},
        "status": {"phase": "Running",
                   "containerStatuses": [{"name": "c", "ready": True, "restartCount": 0}]},
    }  # fmt: skip


def serve(nodes: int, pods: int, port_out: Any, commands: Any) -> None:
    from kubani.lab.k3s.apiserver import ApiServer
    from kubani.lab.k3s.http import KubeHTTPServer
    from kubani.lab.k3s.store import Store

    store = Store()
    for index in range(nodes):
        node = _node(index)
        store.create(("", "nodes", "", node["metadata"]["name"]), node)
    for workload in range(pods // PODS_PER_WORKLOAD):
        namespace = f"ns-{workload * PODS_PER_WORKLOAD // 1000:03d}"
        name = f"app-{workload:05d}"
        store.create(
            ("apps", "deployments", namespace, name),
            {"apiVersion": "apps/v1", "kind": "Deployment",
             "metadata": {"name": name, "namespace": namespace},
             "spec": {"replicas": PODS_PER_WORKLOAD}},
        )  # fmt: skip
    for index in range(pods):
        namespace, pod = _pod(index, nodes)
        store.create(("", "pods", namespace, pod["metadata"]["name"]), pod)
    api = ApiServer(store)
    http = KubeHTTPServer(("127.0.0.1", 0), api)
    http.serve_in_thread()
    port_out.put(http.server_address[1])
    while True:
        command = commands.get()
        if command is None:
            return
        namespace, name, ready = command
        key = ("", "pods", namespace, name)
        pod = store.get(key)
        assert pod is not None
        pod["status"]["containerStatuses"][0]["ready"] = ready
        store.update(key, pod, check_version=False)


def kubeconfig(folder: Path, port: int) -> Path:
    path = folder / "kubeconfig"
    path.write_text(
        "apiVersion: v1\nkind: Config\n"
        f"clusters: [{{name: b, cluster: {{server: 'http://127.0.0.1:{port}'}}}}]\n"
        "users: [{name: u, user: {token: t}}]\n"
        "contexts: [{name: b, context: {cluster: b, user: u}}]\ncurrent-context: b\n"
    )
    return path


async def measure(config: Path, nodes: int, pods: int, commands: Any) -> dict[str, float]:
    from kubani.cluster.live import KubeSource
    from kubani.tui.app import ClusterApp

    workloads = pods // PODS_PER_WORKLOAD
    start = time.perf_counter()
    app = ClusterApp(KubeSource(config, None, "bench"), refresh_s=5.0)
    async with app.run_test(size=(160, 50)) as pilot:
        while not (
            app.table("nodes").row_count == nodes and app.table("workloads").row_count == workloads
        ):
            await pilot.pause(0.01)
        first_screen = time.perf_counter() - start
        await pilot.pause(0.5)
        lags = []
        for attempt in range(20):
            workload = (attempt * 7919) % workloads
            index = workload * PODS_PER_WORKLOAD
            namespace, pod = _pod(index, nodes)
            row = f"Deployment:{namespace}/app-{workload:05d}"
            ready = attempt % 2 == 1
            wanted = f"{PODS_PER_WORKLOAD if ready else PODS_PER_WORKLOAD - 1}/{PODS_PER_WORKLOAD}"
            sent = time.perf_counter()
            commands.put((namespace, pod["metadata"]["name"], ready))
            while True:
                current = app.table("workloads").row_of(row)
                if current is not None and current[3] == wanted:
                    break
                await pilot.pause(0.001)
            lags.append((time.perf_counter() - sent) * 1000)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "nodes": nodes,
        "pods": pods,
        "first_full_screen_s": round(first_screen, 2),
        "pod_change_median_ms": round(statistics.median(lags), 1),
        "pod_change_p95_ms": round(sorted(lags)[int(len(lags) * 0.95) - 1], 1),
        "peak_rss_mb": round(rss, 1),
    }


def run(nodes: int, pods: int) -> dict[str, float]:
    context = multiprocessing.get_context("spawn")
    ports, commands = context.Queue(), context.Queue()
    server = context.Process(target=serve, args=(nodes, pods, ports, commands), daemon=True)
    server.start()
    try:
        port = ports.get(timeout=600)
        with tempfile.TemporaryDirectory() as folder:
            return asyncio.run(measure(kubeconfig(Path(folder), port), nodes, pods, commands))
    finally:
        commands.put(None)
        server.join(5)
        if server.is_alive():
            server.terminate()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--pods", type=int, default=30000)
    args = parser.parse_args()
    result = run(args.nodes, args.pods)
    targets = {"first_full_screen_s": 3.0, "pod_change_median_ms": 100.0, "peak_rss_mb": 500.0}
    meets = all(result[k] <= v for k, v in targets.items())
    json.dump({**result, "meets_targets": meets}, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
