"""``k3s server``: K3s's files, token, join and supervisor around the real control plane.

The real kube-apiserver, kube-controller-manager and kube-scheduler run from the programs the
``k3s`` file carries (``control.py``), on kine/SQLite or, with ``cluster-init`` or when
joining another server, on real embedded etcd. What stays K3s's own glue is here: the
certificates and token, the supervisor's endpoints on 6443 (``/cacerts``, node join,
server bootstrap, snapshots), the packaged manifests and their deploy controller, the
metrics server's stand-in, and the server's own node (its kubelet is KWOK, as on agents).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import signal
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from kubani_lab.k3s import deploy, kubelet, metrics, pki
from kubani_lab.k3s.addons import write_packaged
from kubani_lab.k3s.agent import Agent, JoinError
from kubani_lab.k3s.client import ApiError, Client
from kubani_lab.k3s.control import (
    ControlPlane,
    ControlPlaneError,
    ControlPlaneFiles,
    Etcd,
    EtcdMember,
    add_etcd_member,
    ensure_etcd_pki,
    ensure_pki,
    save_snapshot,
)
from kubani_lab.k3s.logs import log
from kubani_lab.k3s.notify import notify
from kubani_lab.k3s.payload import program
from kubani_lab.k3s.storage import LocalPathProvisioner
from kubani_lab.k3s.supervisor import Reply, Request, Supervisor

API_PORT = 6443
METRICS_PORT = 10251
DEPLOY_PERIOD_S = 5.0
STORAGE_PERIOD_S = 3.0
FIELD_MANAGER = "k3s"
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
# What a joining server receives from the first one (paths under server/tls), as K3s's
# bootstrap data: the cluster's CAs and the service-account key.
BOOTSTRAP_FILES = (
    "server-ca.crt", "server-ca.key", "client-ca.crt", "client-ca.key",
    "request-header-ca.crt", "request-header-ca.key", "service.key",
    "etcd/server-ca.crt", "etcd/server-ca.key", "etcd/peer-ca.crt", "etcd/peer-ca.key",
)  # fmt: skip
NODE_PASSWORD_REJECTED = (
    "Node password rejected, duplicate hostname or contents of '/etc/rancher/node/password' "
    "may not match server node-passwd entry"
)
SERVER_ROLE_LABELS = ("node-role.kubernetes.io/control-plane", "node-role.kubernetes.io/master")
ETCD_ROLE_LABEL = "node-role.kubernetes.io/etcd"


class FatalError(RuntimeError):
    """K3s would log ``level=fatal`` and exit."""


def _mode(value: Any, default: int = 0o600) -> int:
    return default if value in (None, "") else int(str(value), 8)


def _json(status: int, body: Any) -> Reply:
    return Reply(status, json.dumps(body).encode())


def _unauthorized() -> Reply:
    return _json(401, {"kind": "Status", "status": "Failure", "code": 401,
                       "reason": "Unauthorized", "message": "Unauthorized"})  # fmt: skip


def _basic(request: Request) -> tuple[str, str]:
    auth = request.headers.get("authorization", "")
    if not auth.startswith("Basic "):
        return "", ""
    try:
        user, _, secret = base64.b64decode(auth.removeprefix("Basic ")).decode().partition(":")
    except ValueError:
        return "", ""
    return user, secret


def install_signal_handlers(stop: threading.Event) -> None:
    def handler(signum: int, _frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


@dataclass
class K3sServer:
    config: dict[str, Any]
    version: str
    bin_dir: Path | None
    data_dir: Path = Path("/var/lib/rancher/k3s")
    node_name: str = field(default_factory=socket.gethostname)
    stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.data_dir = Path(self.config.get("data-dir") or self.data_dir)
        self.files = ControlPlaneFiles(self.data_dir / "server")
        self.joining = bool(self.config.get("server"))
        self.etcd = (
            bool(self.config.get("cluster-init")) or self.joining or self.files.etcd_data.exists()
        )
        self.plane: ControlPlane | None = None
        self.member = EtcdMember(self.node_name, self.node_ip)
        self.token: pki.Token | None = None

    # ---- set-up ---------------------------------------------------------------

    @property
    def node_ip(self) -> str:
        ips = self.config.get("node-ip") or []
        if ips:
            return str(ips[0])
        with contextlib.suppress(OSError):
            return socket.gethostbyname(socket.gethostname())
        return "127.0.0.1"

    @property
    def advertise(self) -> str:
        return str(self.config.get("advertise-address") or self.node_ip)

    @property
    def binary(self) -> Path:
        binary = program(self.bin_dir, "kube-components")
        if binary is None:
            raise FatalError("this k3s carries no control plane (no kube-components payload)")
        return binary

    @property
    def disabled(self) -> set[str]:
        return {str(d) for d in self.config.get("disable") or []}

    def _sans(self) -> list[str]:
        sans = [*DEFAULT_SANS, self.node_name, self.node_ip, self.advertise]
        sans += [str(s) for s in self.config.get("node-external-ip") or []]
        sans += [str(s) for s in self.config.get("tls-san") or []]
        return list(dict.fromkeys(sans))

    def _configured_token(self) -> str | None:
        configured = self.config.get("token")
        token_file = self.config.get("token-file")
        if not configured and token_file:
            configured = Path(str(token_file)).read_text().strip()
        return str(configured) if configured else None

    def prepare_token(self) -> pki.Token:
        """The cluster token: given once (or generated), never changed afterwards."""
        configured = self._configured_token()
        token_path = self.files.server / "token"
        fingerprint = self.files.db / ".bootstrap-token-hash"
        ca = self.files.tls / "server-ca.crt"
        if configured:
            token = pki.Token.parse(configured)
            if token.ca_hash and token.ca_hash != pki.ca_hash(ca):
                raise FatalError("token CA hash does not match the Cluster CA certificate hash")
        elif token_path.exists():
            token = pki.Token.parse(token_path.read_text())
        else:
            token = pki.Token(pki.new_secret())
        digest = hashlib.sha256(token.secret.encode()).hexdigest()
        if fingerprint.exists() and fingerprint.read_text().strip() != digest:
            raise FatalError("bootstrap data already found and encrypted with different token")
        pki.write_file(fingerprint, (digest + "\n").encode())
        pki.write_file(token_path, (token.full(ca) + "\n").encode())
        node_token = self.files.server / "node-token"
        if not node_token.is_symlink():
            node_token.unlink(missing_ok=True)
            node_token.symlink_to(token_path)
        agent_token = self.config.get("agent-token")
        if agent_token:
            text = pki.Token(str(agent_token), username="node").full(ca) + "\n"
            pki.write_file(self.files.server / "agent-token", text.encode())
        return token

    def bootstrap_from(self, upstream: str) -> None:
        """A joining server: the cluster's CAs and keys from the first server, fetched with
        the server token after checking the CA against the token's hash."""
        token = pki.Token.parse(self._configured_token() or "")
        if not token.secret:
            raise FatalError("a joining server needs the cluster token")
        try:
            ca_pem = Client(upstream).request("GET", "/cacerts", raw=True).decode()
        except (ApiError, OSError) as exc:
            raise FatalError(f"failed to get CA certs from {upstream}/cacerts: {exc}") from exc
        if token.ca_hash and hashlib.sha256(ca_pem.encode()).hexdigest() != token.ca_hash:
            raise FatalError("token CA hash does not match the Cluster CA certificate hash")
        bootstrap = Client(
            upstream,
            ca_pem=ca_pem,
            headers={"Authorization": pki.basic_auth("server", token.secret)},
            timeout=30,
        )
        try:
            reply = bootstrap.request("POST", "/v1-k3s/server-bootstrap", {})
        except (ApiError, OSError) as exc:
            raise FatalError(f"{upstream}/v1-k3s/server-bootstrap: {exc}") from exc
        if reply.get("datastore") != "etcd":
            raise FatalError(
                f"{upstream} does not use embedded etcd; servers can only join a cluster "
                "started with --cluster-init"
            )
        for name in BOOTSTRAP_FILES:
            mode = 0o600 if name.endswith(".key") else 0o644
            pki.write_file(self.files.tls / name, str(reply["files"][name]).encode(), mode)

    def write_kubeconfig(self) -> Path:
        target = Path(str(self.config.get("write-kubeconfig") or "/etc/rancher/k3s/k3s.yaml"))
        tls = self.files.tls
        text = pki.kubeconfig(
            f"https://127.0.0.1:{API_PORT}",
            tls / "server-ca.crt",
            tls / "client-admin.crt",
            tls / "client-admin.key",
        )
        pki.write_file(target, text.encode(), _mode(self.config.get("write-kubeconfig-mode")))
        return target

    def _etcd(self) -> Etcd | None:
        if not self.etcd:
            return None
        ensure_etcd_pki(self.files, self.member)
        if not self.joining or self.files.etcd_data.exists():
            return Etcd(self.member, (self.member,), "new")
        upstream = urlsplit(str(self.config["server"]))
        first = EtcdMember("", upstream.hostname or "127.0.0.1")
        try:
            cluster = add_etcd_member(self.files, first, self.member)
        except (ApiError, OSError) as exc:
            raise FatalError(f"cannot join etcd at {first.client_url}: {exc}") from exc
        return Etcd(self.member, cluster, "existing")

    def control_plane(self) -> ControlPlane:
        return ControlPlane(
            self.binary,
            self.files,
            advertise_address=self.advertise,
            apiserver_args=[str(a) for a in self.config.get("kube-apiserver-arg") or []],
            controller_manager_args=[
                str(a) for a in self.config.get("kube-controller-manager-arg") or []
            ],
            scheduler_args=[str(a) for a in self.config.get("kube-scheduler-arg") or []],
            etcd_args=[str(a) for a in self.config.get("etcd-arg") or []],
            leader_elect=self.etcd,
            etcd=self._etcd(),
            output=self.data_dir / "server" / "logs",
            log=lambda message: log("info", message),
        )

    # ---- the supervisor's own endpoints -------------------------------------------

    def route(self, request: Request) -> Reply | None:
        tls = self.files.tls
        if request.path == "/cacerts":
            return Reply(200, (tls / "server-ca.crt").read_bytes(), "text/plain")
        if request.path == "/ping":
            return Reply(200, b"pong", "text/plain")
        if request.method != "POST":
            return None
        if request.path == "/v1-k3s/join":
            return self._join(request)
        if request.path == "/v1-k3s/server-bootstrap":
            user, secret = _basic(request)
            if self.token is None or user != "server" or secret != self.token.secret:
                return _unauthorized()
            files = {name: (tls / name).read_text() for name in BOOTSTRAP_FILES if self.etcd}
            return _json(200, {"datastore": "etcd" if self.etcd else "kine", "files": files})
        if request.path == "/v1-k3s/snapshot":
            if request.identity is None or "system:masters" not in request.identity.groups:
                return _unauthorized()
            try:
                return _json(200, self.save_snapshot(json.loads(request.body or b"{}")))
            except (ControlPlaneError, ApiError, OSError, ValueError) as exc:
                return _json(500, {"message": f"failed to save snapshot: {exc}"})
        return None

    def _join(self, request: Request) -> Reply:
        """A node presents the token and its password; it gets its kubelet's certificates."""
        user, secret = _basic(request)
        agent_token = str(self.config.get("agent-token") or "")
        try:
            asked = json.loads(request.body or b"{}")
        except ValueError:
            return _json(400, {"message": "the join request is not JSON"})
        valid = self.token is not None and secret == self.token.secret
        if not valid and user == "node" and agent_token and secret == agent_token:
            valid = asked.get("role") != "server"
        if not valid:
            return _unauthorized()
        name, address = str(asked.get("name") or ""), str(asked.get("address") or "")
        if not name or not address:
            return _json(400, {"message": "a join request names the node and its address"})
        try:
            accepted = self._check_node_password(name, str(asked.get("password") or ""))
        except (ApiError, OSError) as exc:
            return _json(503, {"message": f"cannot check the node password: {exc}"})
        if not accepted:
            return _json(403, {"kind": "Status", "code": 403, "message": NODE_PASSWORD_REJECTED})
        return _json(200, self._kubelet_credentials(name, address))

    def _check_node_password(self, name: str, password: str) -> bool:
        """K3s keeps a hash of each node's password in a Secret; another machine claiming the
        same name is refused. A node deleted from the cluster may join again."""
        assert self.plane is not None
        client = self.plane.admin_client()
        path = f"/api/v1/namespaces/kube-system/secrets/{name}.node-password.k3s"
        digest = hashlib.sha256(password.encode()).hexdigest()
        try:
            secret = client.request("GET", path)
        except ApiError as exc:
            if exc.status != 404:
                raise
            secret = None
        if secret is not None:
            try:
                client.request("GET", f"/api/v1/nodes/{name}")
            except ApiError as exc:
                if exc.status != 404:
                    raise
                client.request("DELETE", path)
                secret = None
        if secret is not None:
            stored = base64.b64decode((secret.get("data") or {}).get("hash") or "").decode()
            return stored == digest
        client.request(
            "POST",
            "/api/v1/namespaces/kube-system/secrets",
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "type": "k3s.cattle.io/node-password",
                "metadata": {"name": f"{name}.node-password.k3s", "namespace": "kube-system"},
                "immutable": True,
                "data": {"hash": base64.b64encode(digest.encode()).decode()},
            },
        )
        return True

    def _kubelet_credentials(self, name: str, address: str) -> dict[str, str]:
        tls = self.files.tls
        folder = self.files.server / "agents" / name
        user, groups = kubelet.kubelet_identity(name)
        pki.issue(tls / "client-ca.crt", tls / "client-ca.key", folder / "client-kubelet.crt",
                  folder / "client-kubelet.key", user, organizations=groups)  # fmt: skip
        pki.issue(tls / "server-ca.crt", tls / "server-ca.key", folder / "serving-kubelet.crt",
                  folder / "serving-kubelet.key", name, sans=[name, address],
                  server=True)  # fmt: skip
        reply = {"server-ca.crt": (tls / "server-ca.crt").read_text()}
        for stem in ("client-kubelet", "serving-kubelet"):
            for suffix in ("crt", "key"):
                reply[f"{stem}.{suffix}"] = (folder / f"{stem}.{suffix}").read_text()
        return reply

    # ---- snapshots ------------------------------------------------------------------

    @property
    def snapshot_dir(self) -> Path:
        return Path(str(self.config.get("etcd-snapshot-dir") or self.files.db / "snapshots"))

    def save_snapshot(self, request: dict[str, Any]) -> dict[str, Any]:
        if not self.etcd:
            raise ControlPlaneError("etcd datastore disabled")
        prefix = str(request.get("name") or "on-demand")
        name = f"{prefix}-{self.node_name}-{int(time.time())}"
        target = self.snapshot_dir / name
        size = save_snapshot(self.files, self.member, target)
        retention = int(self.config.get("etcd-snapshot-retention") or 5)
        kept = sorted(
            (p for p in self.snapshot_dir.iterdir() if p.name.startswith(prefix + "-")),
            key=lambda p: p.stat().st_mtime,
        )
        for old in kept[:-retention]:
            old.unlink()
        return {"name": name, "location": f"file://{target}", "size": size}

    # ---- K3s's own controllers ------------------------------------------------------

    def _kubectl(self, args: list[str]) -> Any:
        import subprocess

        return subprocess.run(
            [str(self.binary), "kubectl", f"--kubeconfig={self.files.kubeconfig('supervisor')}",
             *args],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip

    def _deploy_forever(self) -> None:
        assert self.plane is not None
        controller = deploy.DeployController(
            self.files.server / "manifests",
            self.plane.admin_client(),
            self._kubectl,
            frozenset(self.disabled),
        )
        while True:
            with contextlib.suppress(ApiError, OSError):
                controller.tick()
            if self.stop.wait(DEPLOY_PERIOD_S):
                return

    def _provision_forever(self) -> None:
        assert self.plane is not None
        provisioner = LocalPathProvisioner(self.plane.admin_client())
        while not self.stop.wait(STORAGE_PERIOD_S):
            with contextlib.suppress(ApiError, OSError, KeyError, TypeError):
                provisioner.tick()

    def _serve_metrics(self) -> metrics.MetricsServer:
        """The packaged metrics-server's part: this server answers metrics.k8s.io for the
        aggregator, from each Ready node's stats/summary."""
        assert self.plane is not None
        tls, admin = self.files.tls, self.plane.admin_client()
        pki.issue(tls / "server-ca.crt", tls / "server-ca.key", tls / "serving-metrics.crt",
                  tls / "serving-metrics.key", "metrics-server",
                  sans=[self.node_ip, "metrics-server.kube-system.svc"],
                  server=True)  # fmt: skip

        def summary(node: dict[str, Any]) -> dict[str, Any] | None:
            addresses = (node.get("status") or {}).get("addresses") or []
            address = next((a["address"] for a in addresses if a["type"] == "InternalIP"), None)
            if address is None:
                return None
            try:
                data = Client(f"https://{address}:10250", timeout=3).request(
                    "GET", "/stats/summary"
                )
            except (ApiError, OSError, ValueError):
                return None
            return data if isinstance(data, dict) else None

        source = metrics.MetricsSource(lambda path: admin.request("GET", path)["items"], summary)
        server = metrics.MetricsServer(
            (self.node_ip, METRICS_PORT),
            source,
            tls / "serving-metrics.crt",
            tls / "serving-metrics.key",
            tls / "request-header-ca.crt",
        )
        server.serve_in_thread()
        ca = (tls / "server-ca.crt").read_bytes()
        for path, body in metrics.registration(self.node_ip, METRICS_PORT, ca):
            name = body["metadata"]["name"]
            admin.request(
                "PATCH",
                f"{path}/{name}?fieldManager={FIELD_MANAGER}&force=true",
                body,
                content_type="application/apply-patch+yaml",
            )
        return server

    def label_own_node(self) -> None:
        """K3s marks its servers' nodes with their roles (a kubelet may not)."""
        assert self.plane is not None
        labels = dict.fromkeys(SERVER_ROLE_LABELS, "true")
        if self.etcd:
            labels[ETCD_ROLE_LABEL] = "true"
        self.plane.admin_client().request(
            "PATCH",
            f"/api/v1/nodes/{self.node_name}",
            {"metadata": {"labels": labels}},
            "application/merge-patch+json",
        )

    # ---- running ----------------------------------------------------------------------

    def start_control_plane(self) -> ControlPlane:
        if self.joining:
            self.bootstrap_from(str(self.config["server"]).rstrip("/"))
        ensure_pki(self.files, self._sans())
        self.token = self.prepare_token()
        self.plane = self.control_plane()
        try:
            self.plane.start()
        except ControlPlaneError:
            self.plane.stop()
            raise
        return self.plane

    def run(self) -> int:
        plane = self.start_control_plane()
        bind = str(self.config.get("bind-address") or "0.0.0.0")
        supervisor = Supervisor((bind, API_PORT), self.files.tls, plane.api_port, self.route)
        agent = Agent(
            self.config,
            f"https://127.0.0.1:{API_PORT}",
            self.node_name,
            bin_dir=self.bin_dir,
            is_server=True,
            version=self.version,
            data_dir=self.data_dir,
            stop=self.stop,
        )
        metrics_server = None
        try:
            supervisor.start()
            write_packaged(self.files.server / "manifests", self.disabled)
            threading.Thread(target=self._deploy_forever, daemon=True, name="deploy").start()
            if "local-storage" not in self.disabled:
                threading.Thread(
                    target=self._provision_forever, daemon=True, name="local-path"
                ).start()
            if "metrics-server" not in self.disabled:
                metrics_server = self._serve_metrics()
            self.write_kubeconfig()
            assert self.token is not None
            agent.join(self.token.secret)
            agent.write_containerd_config()
            agent.register()
            self.label_own_node()
            agent.start_kubelet()
            notify("READY=1")
            log("info", f"k3s is up and running; node {self.node_name} registered")
            while not self.stop.wait(1.0):
                died = plane.died() or agent.died()
                if died:
                    raise FatalError(f"{died} stopped unexpectedly")
        except (JoinError, ApiError) as exc:
            raise FatalError(f"cannot register node {self.node_name}: {exc}") from exc
        finally:
            agent.stop_kubelet()
            if metrics_server is not None:
                metrics_server.shutdown()
            supervisor.stop()
            plane.stop()
        return 0
