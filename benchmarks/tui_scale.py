"""cluster-tui at scale, against the real Kubernetes API server the lab runs.

The lab's pinned control plane (etcd, kube-apiserver, kube-controller-manager,
kube-scheduler) runs on a throwaway datastore with KWOK keeping every node and pod: the
nodes are registered, the Deployments are created, and the real controllers, scheduler and
KWOK make the pods and run them. The TUI then runs headless (Textual's test driver) with
the real KubeSource over HTTPS. Measured: time from start to the first full screen (every
node and workload row present), time until the big lists (pods, events) are in too, time
for one pod change to reach its row once they are (median and p95 of 20 changes), and the
TUI process's peak RSS. ``--profile FILE`` writes the TUI's cProfile stats.

Run (as root, for the lab's build cache): uv run python benchmarks/tui_scale.py
[--nodes N --pods N]
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import ipaddress
import json
import resource
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

PODS_PER_WORKLOAD = 10
CHANGES = 20
# Pods of these workloads have their status written by this script (KWOK leaves them be),
# so that one container's readiness can be flipped and timed.
DRIVEN_LABEL = "bench.kubani.dev/driven"
# The controllers and the scheduler are rate-limited against the API by default (20 and 50
# requests per second); a cluster this size is filled faster with higher limits.
QPS = ["kube-api-qps=2000", "kube-api-burst=4000"]
# A kubelet renews its lease every 10 s (a 40 s lease): 100 writes a second for 1,000 nodes,
# most of what a small machine's datastore can take while it fills 30,000 pods. The
# benchmark measures the TUI, so its KWOK renews every 150 s (a 600 s lease) and the node
# lifecycle controller waits as long before calling a node NotReady.
LEASE_S = 600
GRACE = "node-monitor-grace-period=900s"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _node(index: int) -> dict[str, Any]:
    name = f"node-{index:04d}"
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, "type": "kwok"}},
        "spec": {},
        "status": {
            "addresses": [{"type": "InternalIP", "address": f"100.{64 + index // 65536}."
                           f"{index // 256 % 256}.{index % 256}"}],
            "capacity": {"cpu": "64", "memory": "256Gi", "pods": "110"},
            "allocatable": {"cpu": "64", "memory": "256Gi", "pods": "110"},
        },
    }  # fmt: skip


def _driven(workloads: int) -> list[int]:
    return sorted({(attempt * 7919) % workloads for attempt in range(CHANGES)})


def _deployment(workload: int, driven: bool) -> tuple[str, dict[str, Any]]:
    namespace = f"ns-{workload * PODS_PER_WORKLOAD // 1000:03d}"
    labels = {"app": f"app-{workload:05d}", **({DRIVEN_LABEL: "true"} if driven else {})}
    return namespace, {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": f"app-{workload:05d}", "namespace": namespace},
        "spec": {
            "replicas": PODS_PER_WORKLOAD,
            "selector": {"matchLabels": {"app": labels["app"]}},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "c", "image": "registry.lab/app:1"}]},
            },
        },
    }  # fmt: skip


class Api:
    """Many requests at once over kept-alive HTTPS connections (one per thread)."""

    def __init__(self, port: int, tls: Path) -> None:
        self.port = port
        self.context = ssl.create_default_context(cafile=str(tls / "server-ca.crt"))
        self.context.check_hostname = False
        self.context.load_cert_chain(str(tls / "client-admin.crt"), str(tls / "client-admin.key"))
        self.local = threading.local()

    def call(self, method: str, path: str, body: Any = None, kind: str = "json") -> Any:
        connection = getattr(self.local, "connection", None)
        if connection is None:
            connection = http.client.HTTPSConnection(
                "127.0.0.1", self.port, context=self.context, timeout=60
            )
            self.local.connection = connection
        content = {"json": "application/json", "merge": "application/merge-patch+json",
                   "metadata": "application/json"}[kind]  # fmt: skip
        accept = "application/json"
        if kind == "metadata":
            accept = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
        connection.request(
            method,
            path,
            body=None if body is None else json.dumps(body),
            headers={"Content-Type": content, "Accept": accept},
        )
        response = connection.getresponse()
        data = response.read()
        if response.status >= 400 and response.status != 409:
            raise RuntimeError(f"{method} {path}: {response.status} {data[:300]!r}")
        return json.loads(data) if data else None

    def many(self, calls: list[tuple[str, str, Any]]) -> None:
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(lambda c: self.call(*c), calls))


def _say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@contextmanager
def cluster(folder: Path, nodes: int, pods: int) -> Iterator[tuple[Path, Api, dict[str, float]]]:
    from kubani_lab.components import KUBERNETES, KWOK, ensure_built
    from kubani_lab.k3s import kubelet
    from kubani_lab.k3s.control import (
        ControlPlane,
        ControlPlaneFiles,
        Etcd,
        EtcdMember,
        ensure_pki,
    )
    from kubani_lab.lab import DEFAULT_HOME
    from kubani_lab.network import UNDERLAY

    kube, _ = ensure_built(KUBERNETES, DEFAULT_HOME / "cache", _say)
    kwok_bin, _ = ensure_built(KWOK, DEFAULT_HOME / "cache", _say)
    files = ControlPlaneFiles(folder / "server")
    port = _free_port()
    member = EtcdMember("bench", "127.0.0.1", _free_port(), _free_port())
    ensure_pki(files, ["127.0.0.1"], api_port=port)
    plane = ControlPlane(
        kube / "kube-components",
        files,
        str(ipaddress.ip_network(UNDERLAY)[-2]),  # advertised only, never bound
        api_port=port,
        component_ports=(_free_port(), _free_port()),
        # etcd (K3s's cluster-init datastore) takes writes faster than kine on SQLite.
        etcd=Etcd(member, (member,), "new", metrics_port=_free_port()),
        apiserver_args=["max-requests-inflight=2000", "max-mutating-requests-inflight=1000"],
        controller_manager_args=[*QPS, GRACE, "concurrent-deployment-syncs=20",
                                 "concurrent-replicaset-syncs=20"],
        scheduler_args=QPS,
        output=folder / "logs",
    )  # fmt: skip
    kwok: subprocess.Popen[bytes] | None = None
    setup: dict[str, float] = {}
    try:
        started = time.perf_counter()
        plane.start()
        setup["control_plane_s"] = round(time.perf_counter() - started, 1)
        api = Api(port, files.tls)
        started = time.perf_counter()
        api.many([("POST", "/api/v1/nodes", _node(i)) for i in range(nodes)])
        config = kubelet.write_config(folder / "kwok.yaml", kwok_bin / "assets", LEASE_S)
        kwok = subprocess.Popen(
            [str(kwok_bin / "kwok"), f"--kubeconfig={files.kubeconfig('admin')}",
             f"--config={config}", "--manage-all-nodes=true",
             f"--disregard-status-with-label-selector={DRIVEN_LABEL}=true"],
            stdout=subprocess.DEVNULL, stderr=(folder / "kwok.log").open("wb"),
        )  # fmt: skip
        workloads = pods // PODS_PER_WORKLOAD
        namespaces = sorted({_deployment(w, False)[0] for w in range(workloads)})
        api.many([("POST", "/api/v1/namespaces", {"metadata": {"name": n}}) for n in namespaces])
        driven = set(_driven(workloads))
        api.many(
            [
                ("POST", f"/apis/apps/v1/namespaces/{ns}/deployments", body)
                for ns, body in (_deployment(w, w in driven) for w in range(workloads))
            ]
        )
        _say(f"{nodes} nodes and {workloads} deployments created; waiting for {pods} pods")
        while True:
            running = _running_pods(api)
            if running >= pods - len(driven) * PODS_PER_WORKLOAD and _all_pods_bound(api, pods):
                break
            _say(f"{running} pods running")
            time.sleep(5)
        _drive_ready(api, driven, ready=True)
        setup["fill_s"] = round(time.perf_counter() - started, 1)
        yield files.kubeconfig("admin"), api, setup
    finally:
        if kwok is not None:
            kwok.terminate()
            kwok.wait(30)
        plane.stop()


def _count(api: Api, selector: str) -> int:
    """How many pods match a field selector (metadata only: a full list would be large, and
    the API does not count what a selector leaves out of a page)."""
    listed = api.call("GET", f"/api/v1/pods?fieldSelector={selector}", kind="metadata")
    return len(listed.get("items") or [])


def _running_pods(api: Api) -> int:
    return _count(api, "status.phase%3DRunning")


def _all_pods_bound(api: Api, pods: int) -> bool:
    return _count(api, "spec.nodeName%3D") == 0 and _count(api, "") == pods


def _pod_status(ready: bool) -> dict[str, Any]:
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return {"status": {
        "phase": "Running",
        "conditions": [{"type": "Ready", "status": str(ready), "lastTransitionTime": now}],
        "containerStatuses": [{"name": "c", "ready": ready, "restartCount": 0,
                               "image": "registry.lab/app:1", "imageID": "",
                               "state": {"running": {"startedAt": now}}}],
    }}  # fmt: skip


def _driven_pods(api: Api, workload: int) -> list[dict[str, Any]]:
    namespace = _deployment(workload, True)[0]
    selector = f"app%3Dapp-{workload:05d}"
    listed = api.call("GET", f"/api/v1/namespaces/{namespace}/pods?labelSelector={selector}")
    return sorted(listed["items"], key=lambda p: p["metadata"]["name"])


def _drive_ready(api: Api, workloads: set[int], ready: bool) -> None:
    calls = []
    for workload in workloads:
        for pod in _driven_pods(api, workload):
            meta = pod["metadata"]
            path = f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}/status"
            calls.append(("PATCH", path, _pod_status(ready), "merge"))
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda c: api.call(*c), calls))


async def measure(config: Path, nodes: int, pods: int, api: Api) -> dict[str, float]:
    from kubani.cluster.live import LISTED_LAST, KubeSource
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
        # The big lists (pods, events) come after the first screen; a change is timed once
        # they are in (a pod's row follows its pods only from then on).
        while not app.state.cache.versions.keys() >= LISTED_LAST:
            await pilot.pause(0.05)
        all_listed = time.perf_counter() - start
        await pilot.pause(0.5)
        lags = []
        for attempt in range(CHANGES):
            workload = (attempt * 7919) % workloads
            namespace = _deployment(workload, True)[0]
            pod = (await asyncio.to_thread(_driven_pods, api, workload))[0]["metadata"]["name"]
            row = f"Deployment:{namespace}/app-{workload:05d}"
            ready = attempt % 2 == 1
            wanted = f"{PODS_PER_WORKLOAD if ready else PODS_PER_WORKLOAD - 1}/{PODS_PER_WORKLOAD}"
            path = f"/api/v1/namespaces/{namespace}/pods/{pod}/status"
            sent = time.perf_counter()
            await asyncio.to_thread(api.call, "PATCH", path, _pod_status(ready), "merge")
            while True:
                current = app.table("workloads").row_of(row)
                if current is not None and current.cells[3] == wanted:
                    break
                await pilot.pause(0.001)
            lags.append((time.perf_counter() - sent) * 1000)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "nodes": nodes,
        "pods": pods,
        "first_full_screen_s": round(first_screen, 2),
        "all_listed_s": round(all_listed, 2),
        "pod_change_median_ms": round(statistics.median(lags), 1),
        "pod_change_p95_ms": round(sorted(lags)[int(len(lags) * 0.95) - 1], 1),
        "peak_rss_mb": round(rss, 1),
    }


def run(nodes: int, pods: int, profile: Path | None = None) -> dict[str, Any]:
    with (
        tempfile.TemporaryDirectory() as folder,
        cluster(Path(folder), nodes, pods) as (
            config,
            api,
            setup,
        ),
    ):
        # Leave the API's own work (the fill, KWOK's first heartbeats) behind before timing.
        time.sleep(5)
        if profile is None:
            return {**asyncio.run(measure(config, nodes, pods, api)), "setup": setup}
        import cProfile

        with cProfile.Profile() as profiler:
            result = asyncio.run(measure(config, nodes, pods, api))
        profiler.dump_stats(profile)
        return {**result, "setup": setup, "profile": str(profile)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--pods", type=int, default=30000)
    parser.add_argument(
        "--profile", type=Path, help="Write the TUI's cProfile stats here (slows it down)."
    )
    args = parser.parse_args()
    result = run(args.nodes, args.pods, args.profile)
    targets = {"first_full_screen_s": 3.0, "pod_change_median_ms": 100.0, "peak_rss_mb": 500.0}
    meets = all(result[k] <= v for k, v in targets.items())
    json.dump({**result, "meets_targets": meets}, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
