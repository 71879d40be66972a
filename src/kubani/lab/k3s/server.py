"""``k3s server``: the stand-in control plane, with K3s's files, modes and endpoints."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import shutil
import signal
import socket
import ssl
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubani.lab.k3s import pki
from kubani.lab.k3s.addons import write_packaged
from kubani.lab.k3s.agent import Agent
from kubani.lab.k3s.apiserver import ApiServer, Response, status_error
from kubani.lab.k3s.client import ApiError, Client
from kubani.lab.k3s.config import controller_args, duration_seconds
from kubani.lab.k3s.controllers import Controllers
from kubani.lab.k3s.flux import FluxSimulation
from kubani.lab.k3s.http import KubeHTTPServer
from kubani.lab.k3s.notify import notify
from kubani.lab.k3s.store import Store

API_PORT = 6443
DEFAULT_SANS = (
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
    "localhost",
    "127.0.0.1",
    "::1",
    "10.43.0.1",
)


class FatalError(RuntimeError):
    """K3s would log ``level=fatal`` and exit."""


def _mode(value: Any, default: int = 0o600) -> int:
    if value in (None, ""):
        return default
    text = str(value)
    return int(text, 8)


@dataclass
class ServerPaths:
    data_dir: Path

    @property
    def server(self) -> Path:
        return self.data_dir / "server"

    @property
    def tls(self) -> Path:
        return self.server / "tls"

    @property
    def token(self) -> Path:
        return self.server / "token"

    @property
    def manifests(self) -> Path:
        return self.server / "manifests"

    @property
    def db(self) -> Path:
        return self.server / "db"

    def datastore(self, etcd: bool) -> Path:
        return self.db / "etcd" / "state.json" if etcd else self.db / "state.json"

    @property
    def snapshots(self) -> Path:
        return self.db / "snapshots"


@dataclass
class K3sServer:
    config: dict[str, Any]
    version: str
    data_dir: Path = Path("/var/lib/rancher/k3s")
    node_name: str = field(default_factory=socket.gethostname)
    stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.paths = ServerPaths(Path(self.config.get("data-dir") or self.data_dir))
        self.etcd = bool(self.config.get("cluster-init")) or (self.paths.db / "etcd").exists()

    # ---- set-up ---------------------------------------------------------------

    @property
    def node_ip(self) -> str:
        ips = self.config.get("node-ip") or []
        return str(ips[0]) if ips else "127.0.0.1"

    @property
    def advertise(self) -> str:
        return str(self.config.get("advertise-address") or self.node_ip)

    def _sans(self) -> list[str]:
        sans = [*DEFAULT_SANS, self.node_name, self.node_ip, self.advertise]
        sans += [str(s) for s in self.config.get("node-external-ip") or []]
        sans += [str(s) for s in self.config.get("tls-san") or []]
        return list(dict.fromkeys(sans))

    def prepare_pki(self) -> None:
        tls = self.paths.tls
        pki.make_ca(tls / "server-ca.crt", tls / "server-ca.key", "k3s-server-ca")
        pki.make_ca(tls / "client-ca.crt", tls / "client-ca.key", "k3s-client-ca")
        serving = tls / "serving-kube-apiserver.crt"
        if not serving.exists() or not set(self._sans()) <= set(pki.certificate_sans(serving)):
            pki.issue(
                tls / "server-ca.crt",
                tls / "server-ca.key",
                serving,
                tls / "serving-kube-apiserver.key",
                "kube-apiserver",
                sans=self._sans(),
                server=True,
            )
        admin = tls / "client-admin.crt"
        if not admin.exists():
            pki.issue(
                tls / "client-ca.crt",
                tls / "client-ca.key",
                admin,
                tls / "client-admin.key",
                "system:admin",
                organization="system:masters",
            )

    def prepare_token(self) -> pki.Token:
        """The cluster token: given once (or generated), never changed afterwards."""
        configured = self.config.get("token")
        token_file = self.config.get("token-file")
        if not configured and token_file:
            configured = Path(str(token_file)).read_text().strip()
        fingerprint = self.paths.db / ".bootstrap-token-hash"
        ca = self.paths.tls / "server-ca.crt"
        if configured:
            token = pki.Token.parse(str(configured))
            if token.ca_hash and token.ca_hash != pki.ca_hash(ca):
                raise FatalError("token CA hash does not match the Cluster CA certificate hash")
        elif self.paths.token.exists():
            token = pki.Token.parse(self.paths.token.read_text())
        else:
            token = pki.Token(pki.new_secret())
        digest = hashlib.sha256(token.secret.encode()).hexdigest()
        fingerprint.parent.mkdir(parents=True, exist_ok=True)
        if fingerprint.exists() and fingerprint.read_text().strip() != digest:
            raise FatalError("bootstrap data already found and encrypted with different token")
        fingerprint.write_text(digest + "\n")
        fingerprint.chmod(0o600)
        self._write_secret(self.paths.token, token.full(ca) + "\n")
        node_token = self.paths.server / "node-token"
        if not node_token.is_symlink():
            node_token.unlink(missing_ok=True)
            node_token.symlink_to(self.paths.token)
        agent_token = self.config.get("agent-token")
        if agent_token:
            self._write_secret(
                self.paths.server / "agent-token",
                pki.Token(str(agent_token), username="node").full(ca) + "\n",
            )
        return token

    @staticmethod
    def _write_secret(path: Path, text: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.partial")
        partial.write_text(text)
        partial.chmod(0o600)
        partial.replace(path)

    def write_kubeconfig(self) -> Path:
        target = Path(str(self.config.get("write-kubeconfig") or "/etc/rancher/k3s/k3s.yaml"))
        tls = self.paths.tls
        text = pki.kubeconfig(
            f"https://127.0.0.1:{API_PORT}",
            tls / "server-ca.crt",
            tls / "client-admin.crt",
            tls / "client-admin.key",
        )
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.partial")
        partial.write_text(text)
        partial.chmod(_mode(self.config.get("write-kubeconfig-mode")))
        partial.replace(target)
        return target

    # ---- authentication -----------------------------------------------------------

    def _authenticate(
        self, api: ApiServer, headers: dict[str, str], cert: dict[str, Any] | None
    ) -> bool:
        if cert:
            return True  # verified against client-ca by the TLS layer
        auth = headers.get("authorization", "")
        if auth.startswith("Bearer node:"):
            _, name, password = auth.removeprefix("Bearer ").split(":", 2)
            secret = api.store.get(("", "secrets", "kube-system", f"{name}.node-password.k3s"))
            if secret is None:
                return False
            stored = base64.b64decode(secret["data"]["hash"]).decode()
            return stored == hashlib.sha256(password.encode()).hexdigest()
        return False

    def _extra(self, api: ApiServer, token: pki.Token) -> Any:
        tls = self.paths.tls
        agent_token = str(self.config.get("agent-token") or "")

        def route(
            method: str,
            path: str,
            headers: dict[str, str],
            body: bytes,
            cert: dict[str, Any] | None,
        ) -> Response | None:
            if path == "/cacerts":
                return Response(200, (tls / "server-ca.crt").read_text(), "text/plain")
            if path == "/ping":
                return Response(200, "pong", "text/plain")
            if path == "/v1-k3s/join" and method == "POST":
                return self._join(api, headers, body, token.secret, agent_token)
            if path == "/v1-k3s/server-bootstrap" and method == "POST":
                from kubani.lab.k3s.joining import bootstrap_route

                return bootstrap_route(tls, token.secret, headers)
            if path == "/v1-k3s/snapshot" and method == "POST":
                if not cert:
                    return status_error(401, "Unauthorized", "Unauthorized")
                return Response(200, self.save_snapshot(api, json.loads(body or b"{}")))
            return None

        return route

    def _join(
        self, api: ApiServer, headers: dict[str, str], body: bytes, secret: str, agent_secret: str
    ) -> Response:
        auth = headers.get("authorization", "")
        try:
            user, _, given = base64.b64decode(auth.removeprefix("Basic ")).decode().partition(":")
        except ValueError:
            return status_error(401, "Unauthorized", "Unauthorized")
        request = json.loads(body or b"{}")
        valid = given == secret or (user == "node" and agent_secret and given == agent_secret)
        if not valid or (request.get("role") == "server" and given != secret):
            return status_error(401, "Unauthorized", "Unauthorized")
        name, password = str(request.get("name", "")), str(request.get("password", ""))
        key = ("", "secrets", "kube-system", f"{name}.node-password.k3s")
        digest = hashlib.sha256(password.encode()).hexdigest()
        existing = api.store.get(key)
        if existing is not None and api.store.get(("", "nodes", "", name)) is None:
            # K3s removes a node's password secret with the node: a deleted node may rejoin.
            api.store.delete(key)
            existing = None
        if existing is not None and base64.b64decode(existing["data"]["hash"]).decode() != digest:
            return status_error(
                403,
                "Forbidden",
                "Node password rejected, duplicate hostname or "
                "contents of '/etc/rancher/node/password' may not match server "
                "node-passwd entry",
            )
        if existing is None:
            api.store.create(
                key,
                {
                    "apiVersion": "v1",
                    "kind": "Secret",
                    "type": "k3s.cattle.io/node-password",
                    "metadata": {"name": key[3], "namespace": "kube-system"},
                    "immutable": True,
                    "data": {"hash": base64.b64encode(digest.encode()).decode()},
                },
            )
        return Response(200, {"token": f"node:{name}:{password}"})

    # ---- kubelets and metrics ---------------------------------------------------------

    def _kubelet(self, node: dict[str, Any], path: str) -> Response:
        address = next(
            (
                a["address"]
                for a in (node.get("status") or {}).get("addresses") or []
                if a.get("type") == "InternalIP"
            ),
            None,
        )
        if address is None:
            return status_error(503, "ServiceUnavailable", "node has no InternalIP")
        client = Client(f"https://{address}:10250", timeout=3)
        try:
            data = client.request("GET", "/" + path, raw=True)
        except (ApiError, OSError) as exc:
            return status_error(
                503,
                "ServiceUnavailable",
                f"error trying to reach service: dial tcp {address}:10250: {exc}",
            )
        return Response(200, data)

    def _metrics(self, api: ApiServer) -> Any:
        def provide(plural: str, namespace: str | None) -> list[dict[str, Any]]:
            stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            if plural == "pods":
                pods = api.store.list("", "pods", namespace)[0]
                return [
                    {
                        "metadata": {
                            "name": p["metadata"]["name"],
                            "namespace": p["metadata"]["namespace"],
                            "creationTimestamp": stamp,
                            "labels": p["metadata"].get("labels", {}),
                        },
                        "timestamp": stamp,
                        "window": "10s",
                        "containers": [
                            {"name": c.get("name"), "usage": {"cpu": "0", "memory": "0Ki"}}
                            for c in (p.get("spec") or {}).get("containers") or []
                        ],
                    }
                    for p in pods
                    if (p.get("status") or {}).get("phase") == "Running"
                ]
            nodes = [
                n
                for n in api.store.list("", "nodes")[0]
                if any(
                    c.get("type") == "Ready" and c.get("status") == "True"
                    for c in (n.get("status") or {}).get("conditions") or []
                )
            ]

            def one(node: dict[str, Any]) -> dict[str, Any] | None:
                response = self._kubelet(node, "stats/summary")
                if response.status != 200:
                    return None
                summary = json.loads(response.encode())["node"]
                return {
                    "metadata": {
                        "name": node["metadata"]["name"],
                        "creationTimestamp": stamp,
                        "labels": node["metadata"].get("labels", {}),
                    },
                    "timestamp": summary["cpu"]["time"],
                    "window": "10s",
                    "usage": {
                        "cpu": f"{summary['cpu']['usageNanoCores']}n",
                        "memory": f"{summary['memory']['workingSetBytes'] // 1024}Ki",
                    },
                }

            with ThreadPoolExecutor(max_workers=8) as pool:
                return [m for m in pool.map(one, nodes) if m is not None]

        return provide

    # ---- snapshots ------------------------------------------------------------------

    def save_snapshot(self, api: ApiServer, request: dict[str, Any]) -> dict[str, Any]:
        if not self.etcd:
            raise FatalError("etcd datastore disabled")
        folder = Path(str(self.config.get("etcd-snapshot-dir") or self.paths.snapshots))
        folder.mkdir(parents=True, exist_ok=True)
        name = f"{request.get('name') or 'on-demand'}-{self.node_name}-{int(time.time())}"
        target = folder / name
        data = json.dumps(api.store.dump()).encode()
        target.write_bytes(data)
        target.chmod(0o600)
        retention = int(self.config.get("etcd-snapshot-retention") or 5)
        prefix = str(request.get("name") or "on-demand") + "-"
        kept = sorted(
            (p for p in folder.iterdir() if p.name.startswith(prefix)),
            key=lambda p: p.stat().st_mtime,
        )
        for old in kept[:-retention]:
            old.unlink()
        return {"name": name, "location": f"file://{target}", "size": len(data)}

    # ---- running ----------------------------------------------------------------------

    def run(self) -> int:
        if self.config.get("server"):
            from kubani.lab.k3s.joining import run_joining_server

            return run_joining_server(self, self.version)
        self.prepare_pki()
        token = self.prepare_token()
        datastore = self.paths.datastore(self.etcd)
        datastore.parent.mkdir(parents=True, exist_ok=True)
        store = Store(datastore)
        api = ApiServer(store, version=self.version, advertise=f"{self.advertise}:{API_PORT}")
        api.node_proxy = self._kubelet
        disabled = {str(d) for d in self.config.get("disable") or []}
        if "metrics-server" not in disabled:
            api.metrics = self._metrics(api)
        tls = self.paths.tls
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(
            str(tls / "serving-kube-apiserver.crt"), str(tls / "serving-kube-apiserver.key")
        )
        context.load_verify_locations(str(tls / "client-ca.crt"))
        context.verify_mode = ssl.CERT_OPTIONAL
        bind = str(self.config.get("bind-address") or "0.0.0.0")
        http = KubeHTTPServer(
            (bind, API_PORT),
            api,
            context,
            lambda h, c: self._authenticate(api, h, c),
            self._extra(api, token),
        )
        http.serve_in_thread()
        write_packaged(self.paths.manifests, disabled)
        grace = duration_seconds(
            controller_args(self.config).get("node-monitor-grace-period", "40s"), 40.0
        )
        controllers = Controllers(
            api, grace_s=grace, manifests=self.paths.manifests, disabled=disabled
        )
        threading.Thread(target=controllers.run_forever, daemon=True, name="controllers").start()
        flux = FluxSimulation(store, self.paths.server / "flux-artifacts", self.stop)
        threading.Thread(target=flux.run_forever, daemon=True, name="flux").start()
        self.write_kubeconfig()
        agent = Agent(
            self.config,
            f"https://127.0.0.1:{API_PORT}",
            self.node_name,
            is_server=True,
            etcd=self.etcd,
            version=self.version,
            data_dir=self.paths.data_dir,
            heartbeat_s=_heartbeat(self.config),
            stop=self.stop,
        )
        agent.join(token.secret)
        agent.write_containerd_config()
        self._kubelet_cert(agent)
        agent.register()
        threading.Thread(target=agent.heartbeat_forever, daemon=True, name="heartbeat").start()
        notify("READY=1")
        _log("info", f"k3s is up and running; node {self.node_name} registered")
        saved = store.revision
        while not self.stop.wait(2.0):
            if store.revision != saved:
                store.save()
                saved = store.revision
        store.save()
        http.shutdown()
        return 0

    def _kubelet_cert(self, agent: Agent) -> None:
        kubelet_cert_for(self.paths.data_dir, self.paths.tls, agent)


def kubelet_cert_for(data_dir: Path, tls: Path, agent: Agent) -> None:
    """Serving certificate for the node's kubelet endpoint, from the server CA when local."""
    cert = data_dir / "agent" / "serving-kubelet.crt"
    key = data_dir / "agent" / "serving-kubelet.key"
    if not cert.exists():
        if (tls / "server-ca.key").exists():
            pki.issue(
                tls / "server-ca.crt",
                tls / "server-ca.key",
                cert,
                key,
                agent.node_name,
                sans=[agent.node_name, agent.node_ip],
                server=True,
            )
        else:
            pki.make_ca(cert, key, agent.node_name)
    agent.serve_kubelet(cert, key)


def _heartbeat(config: dict[str, Any]) -> float:
    from kubani.lab.k3s.config import kubelet_args

    return duration_seconds(kubelet_args(config).get("node-status-update-frequency", "10s"), 10.0)


def _log(level: str, message: str) -> None:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    print(f'time="{stamp}" level={level} msg="{message}"', flush=True)


def install_signal_handlers(stop: threading.Event) -> None:
    def handler(signum: int, _frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def cluster_reset(config: dict[str, Any], data_dir: Path) -> int:
    """``k3s server --cluster-reset [--cluster-reset-restore-path=FILE]`` with K3s stopped."""
    paths = ServerPaths(Path(config.get("data-dir") or data_dir))
    target = paths.datastore(True)
    restore = config.get("cluster-reset-restore-path")
    if restore:
        source = Path(str(restore))
        if not source.exists():
            raise FatalError(f"failed to restore snapshot: {source}: no such file")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        target.chmod(0o600)
    with contextlib.suppress(FileNotFoundError):
        os.utime(target)
    _log(
        "info",
        "Managed etcd cluster membership has been reset, restart without --cluster-reset "
        "flag now. Backup and delete ${datadir}/server/db on each peer etcd server and "
        "rejoin the nodes",
    )
    return 0
