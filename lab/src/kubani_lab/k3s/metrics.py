"""``metrics.k8s.io``: a small stand-in for K3s's packaged metrics-server, served through the
real API server's aggregator.

The real metrics-server scrapes each kubelet; the lab's kubelets are simulated (KWOK), so this
server reads each node's ``stats/summary`` (the node's own cgroup figures, served by the
stand-in's kubelet endpoint) and answers the two lists metrics-server answers. The API
server reaches it as it reaches metrics-server: an APIService naming a Service in
kube-system whose endpoint is this server (aggregator routing). Only the aggregator may call
it: a client must show a front-proxy certificate (request-header CA), as with the real one.
"""

from __future__ import annotations

import json
import ssl
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

GROUP_VERSION = "metrics.k8s.io/v1beta1"
SERVICE = ("kube-system", "metrics-server")

# (path, body) pairs that make the API server route metrics.k8s.io here.
Objects = list[tuple[str, dict[str, Any]]]


def registration(address: str, port: int, ca_pem: bytes) -> Objects:
    """The Service, its endpoint and the APIService for a metrics server at address:port."""
    import base64

    namespace, name = SERVICE
    labels = {"k8s-app": "metrics-server", "kubernetes.io/service-name": name}
    return [
        (
            f"/api/v1/namespaces/{namespace}/services",
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": name, "namespace": namespace, "labels": labels},
                "spec": {"ports": [{"name": "https", "port": 443, "targetPort": port}]},
            },
        ),
        (
            f"/apis/discovery.k8s.io/v1/namespaces/{namespace}/endpointslices",
            {
                "apiVersion": "discovery.k8s.io/v1",
                "kind": "EndpointSlice",
                "metadata": {"name": name, "namespace": namespace, "labels": labels},
                "addressType": "IPv4",
                "endpoints": [{"addresses": [address], "conditions": {"ready": True}}],
                "ports": [{"name": "https", "port": port, "protocol": "TCP"}],
            },
        ),
        (
            "/apis/apiregistration.k8s.io/v1/apiservices",
            {
                "apiVersion": "apiregistration.k8s.io/v1",
                "kind": "APIService",
                "metadata": {"name": "v1beta1.metrics.k8s.io", "labels": labels},
                "spec": {
                    "group": "metrics.k8s.io",
                    "version": "v1beta1",
                    "groupPriorityMinimum": 100,
                    "versionPriority": 100,
                    "service": {"namespace": namespace, "name": name, "port": 443},
                    "caBundle": base64.b64encode(ca_pem).decode(),
                },
            },
        ),
    ]


def _stamp() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


RESOURCES = {
    "kind": "APIResourceList",
    "apiVersion": "v1",
    "groupVersion": GROUP_VERSION,
    "resources": [
        {"name": "nodes", "singularName": "", "namespaced": False, "kind": "NodeMetrics",
         "verbs": ["get", "list"]},
        {"name": "pods", "singularName": "", "namespaced": True, "kind": "PodMetrics",
         "verbs": ["get", "list"]},
    ],
}  # fmt: skip


class MetricsSource:
    """Where the figures come from: the API (nodes, pods) and each node's stats/summary."""

    def __init__(
        self,
        list_objects: Callable[[str], list[dict[str, Any]]],
        summary: Callable[[dict[str, Any]], dict[str, Any] | None],
    ) -> None:
        self.list_objects = list_objects
        self.summary = summary

    def nodes(self) -> list[dict[str, Any]]:
        ready = [n for n in self.list_objects("/api/v1/nodes") if _ready(n)]

        def one(node: dict[str, Any]) -> dict[str, Any] | None:
            summary = self.summary(node)
            if not summary:
                return None
            usage = summary.get("node") or {}
            cpu, memory = usage.get("cpu") or {}, usage.get("memory") or {}
            return {
                "metadata": {
                    "name": node["metadata"]["name"],
                    "creationTimestamp": _stamp(),
                    "labels": node["metadata"].get("labels") or {},
                },
                "timestamp": cpu.get("time") or _stamp(),
                "window": "10s",
                "usage": {
                    "cpu": f"{int(cpu.get('usageNanoCores') or 0)}n",
                    "memory": f"{int(memory.get('workingSetBytes') or 0) // 1024}Ki",
                },
            }

        with ThreadPoolExecutor(max_workers=8) as pool:
            return [m for m in pool.map(one, ready) if m is not None]

    def pods(self, namespace: str | None) -> list[dict[str, Any]]:
        path = f"/api/v1/namespaces/{namespace}/pods" if namespace else "/api/v1/pods"
        return [
            {
                "metadata": {
                    "name": pod["metadata"]["name"],
                    "namespace": pod["metadata"]["namespace"],
                    "creationTimestamp": _stamp(),
                    "labels": pod["metadata"].get("labels") or {},
                },
                "timestamp": _stamp(),
                "window": "10s",
                # Simulated containers use nothing of the machine.
                "containers": [
                    {"name": c.get("name"), "usage": {"cpu": "0", "memory": "0Ki"}}
                    for c in (pod.get("spec") or {}).get("containers") or []
                ],
            }
            for pod in self.list_objects(path)
            if (pod.get("status") or {}).get("phase") == "Running"
        ]


def _ready(node: dict[str, Any]) -> bool:
    conditions = (node.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def _answer(source: MetricsSource, path: str) -> tuple[int, dict[str, Any]]:
    prefix = f"/apis/{GROUP_VERSION}"
    if path in (prefix, prefix + "/"):
        return 200, RESOURCES
    rest = path.removeprefix(prefix + "/").strip("/").split("/")
    if rest[0] == "nodes":
        items = source.nodes()
        kind = "NodeMetrics"
    elif rest[0] == "pods" or (len(rest) >= 3 and rest[0] == "namespaces" and rest[2] == "pods"):
        namespace = rest[1] if rest[0] == "namespaces" else None
        items = source.pods(namespace)
        kind = "PodMetrics"
        rest = rest[2:] if namespace else rest
    else:
        return 404, _status(404, "NotFound", "the server could not find the requested resource")
    if len(rest) == 2:
        found = next((i for i in items if i["metadata"]["name"] == rest[1]), None)
        if found is None:
            return 404, _status(404, "NotFound", f'{kind.lower()} "{rest[1]}" not found')
        return 200, {"kind": kind, "apiVersion": GROUP_VERSION, **found}
    listed = [{"kind": kind, "apiVersion": GROUP_VERSION, **i} for i in items]
    return 200, {
        "kind": f"{kind}List",
        "apiVersion": GROUP_VERSION,
        "metadata": {},
        "items": listed,
    }


def _status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": code,
            "reason": reason, "message": message, "metadata": {}}  # fmt: skip


class MetricsServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self, address: tuple[str, int], source: MetricsSource, cert: Path, key: Path, proxy_ca: Path
    ) -> None:
        self.source = source
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(cert), str(key))
        context.load_verify_locations(str(proxy_ca))
        context.verify_mode = ssl.CERT_REQUIRED  # the aggregator's front-proxy certificate
        self.context = context
        super().__init__(address, _Handler)

    def get_request(self) -> tuple[Any, Any]:
        sock, address = super().get_request()
        return self.context.wrap_socket(sock, server_side=True), address

    def serve_in_thread(self) -> threading.Thread:
        thread = threading.Thread(target=self.serve_forever, name="metrics", daemon=True)
        thread.start()
        return thread


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: MetricsServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path.startswith("/openapi/"):
            status, body = 404, _status(404, "NotFound", "no OpenAPI document is served")
        elif path in ("/healthz", "/readyz", "/livez"):
            self._send(200, b"ok", "text/plain")
            return
        else:
            try:
                status, body = _answer(self.server.source, path)
            except OSError as exc:
                status, body = 503, _status(503, "ServiceUnavailable", str(exc))
        self._send(status, json.dumps(body).encode(), "application/json")

    def _send(self, status: int, data: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
