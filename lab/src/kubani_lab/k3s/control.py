"""The real Kubernetes control plane that ``k3s server`` runs: a datastore (kine on SQLite, as
K3s by default), kube-apiserver, kube-controller-manager and kube-scheduler, started from the
``kube-components`` binary with K3s's flags, file names and certificates.

The processes are K3s's children, as K3s's goroutines are: they stop with it, and when one
of them dies the server reports which and stops too (K3s exits fatally then).
"""

from __future__ import annotations

import base64
import contextlib
import json
import shutil
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from kubani_lab.k3s import deploy, kubelet, pki
from kubani_lab.k3s.client import ApiError, Client
from kubani_lab.k3s.config import arg_pairs
from kubani_lab.k3s.processes import dying_with_parent, terminate

# Behind the supervisor on 6443, as in K3s.
INTERNAL_PORT = 6444
CLUSTER_CIDR = "10.42.0.0/16"
SERVICE_CIDR = "10.43.0.0/16"
CLUSTER_DOMAIN = "cluster.local"
SERVICE_ACCOUNT_ISSUER = f"https://kubernetes.default.svc.{CLUSTER_DOMAIN}"
READY_TIMEOUT_S = 90.0

# (file stem under server/tls, issuing CA stem, common name, organisation)
CLIENT_CERTIFICATES = (
    ("client-admin", "client-ca", "system:admin", "system:masters"),
    ("client-supervisor", "client-ca", "system:k3s-supervisor", "system:masters"),
    ("client-controller", "client-ca", "system:kube-controller-manager", None),
    ("client-scheduler", "client-ca", "system:kube-scheduler", None),
    ("client-kube-apiserver", "client-ca", "system:kube-apiserver", "system:masters"),
    ("client-auth-proxy", "request-header-ca", "system:auth-proxy", None),
)
# (kubeconfig under server/cred, client certificate stem)
KUBECONFIGS = (
    ("admin", "client-admin"),
    ("supervisor", "client-supervisor"),
    ("controller", "client-controller"),
    ("scheduler", "client-scheduler"),
)


class ControlPlaneError(RuntimeError):
    """The control plane cannot start or one of its processes died."""


@dataclass(frozen=True)
class ControlPlaneFiles:
    """K3s's server folder layout (``/var/lib/rancher/k3s/server``)."""

    server: Path

    @property
    def tls(self) -> Path:
        return self.server / "tls"

    @property
    def cred(self) -> Path:
        return self.server / "cred"

    @property
    def db(self) -> Path:
        return self.server / "db"

    @property
    def kine_socket(self) -> Path:
        return self.server / "kine.sock"

    @property
    def etcd_tls(self) -> Path:
        return self.tls / "etcd"

    @property
    def etcd_data(self) -> Path:
        return self.db / "etcd"

    def kubeconfig(self, name: str) -> Path:
        return self.cred / f"{name}.kubeconfig"

    def tls_file(self, stem: str, suffix: str) -> Path:
        return self.tls / f"{stem}.{suffix}"


def ensure_pki(
    files: ControlPlaneFiles, sans: Sequence[str], api_port: int = INTERNAL_PORT
) -> None:
    """Every CA, key and certificate the components need; existing ones are kept (a
    serving certificate is re-issued when a name is missing from it)."""
    tls = files.tls
    for ca in ("server-ca", "client-ca", "request-header-ca"):
        pki.make_ca(tls / f"{ca}.crt", tls / f"{ca}.key", f"k3s-{ca}")
    pki.make_signing_key(tls / "service.key")
    serving = tls / "serving-kube-apiserver.crt"
    if not serving.exists() or not set(sans) <= set(pki.certificate_sans(serving)):
        pki.issue(
            tls / "server-ca.crt",
            tls / "server-ca.key",
            serving,
            tls / "serving-kube-apiserver.key",
            "kube-apiserver",
            sans=list(sans),
            server=True,
        )
    for stem, ca, name, organization in CLIENT_CERTIFICATES:
        if not (tls / f"{stem}.crt").exists():
            pki.issue(
                tls / f"{ca}.crt",
                tls / f"{ca}.key",
                tls / f"{stem}.crt",
                tls / f"{stem}.key",
                name,
                organization=organization,
            )
    for name, stem in KUBECONFIGS:
        text = pki.kubeconfig(
            f"https://127.0.0.1:{api_port}",
            tls / "server-ca.crt",
            tls / f"{stem}.crt",
            tls / f"{stem}.key",
        )
        pki.write_file(files.kubeconfig(name), text.encode())


@dataclass(frozen=True)
class EtcdMember:
    """One server's etcd: its name and where the others reach it."""

    name: str
    address: str
    client_port: int = 2379
    peer_port: int = 2380

    @property
    def client_url(self) -> str:
        return f"https://{self.address}:{self.client_port}"

    @property
    def peer_url(self) -> str:
        return f"https://{self.address}:{self.peer_port}"


@dataclass(frozen=True)
class Etcd:
    """Embedded etcd (``cluster-init``): this server's member and the cluster it starts in
    (``new`` for the first server, ``existing`` for one that was added to it)."""

    member: EtcdMember
    initial_cluster: tuple[EtcdMember, ...]
    state: str = "new"
    metrics_port: int = 2381


def ensure_etcd_pki(files: ControlPlaneFiles, member: EtcdMember) -> None:
    """etcd's CAs (shared by the servers, as K3s shares them) and this member's certificates
    (made here, for its own address)."""
    tls = files.etcd_tls
    for ca in ("server-ca", "peer-ca"):
        pki.make_ca(tls / f"{ca}.crt", tls / f"{ca}.key", f"etcd-{ca}")
    names = ["localhost", "127.0.0.1", member.address, member.name]
    for stem, ca in (("server-client", "server-ca"), ("peer-server-client", "peer-ca")):
        cert = tls / f"{stem}.crt"
        if not cert.exists() or not set(names) <= set(pki.certificate_sans(cert)):
            pki.issue(
                tls / f"{ca}.crt",
                tls / f"{ca}.key",
                cert,
                tls / f"{stem}.key",
                "etcd-" + stem,
                sans=names,
                server=True,
                client_too=True,
            )
    if not (tls / "client.crt").exists():
        pki.issue(tls / "server-ca.crt", tls / "server-ca.key", tls / "client.crt",
                  tls / "client.key", "etcd-client")  # fmt: skip


def etcd_client(files: ControlPlaneFiles, url: str, timeout: float = 10.0) -> Client:
    """etcd's JSON gateway (``/v3/...``) with the servers' etcd client certificate."""
    tls = files.etcd_tls
    return Client(
        url,
        ca_pem=(tls / "server-ca.crt").read_text(),
        cert_file=str(tls / "client.crt"),
        key_file=str(tls / "client.key"),
        timeout=timeout,
    )


def add_etcd_member(
    files: ControlPlaneFiles, existing: EtcdMember, joining: EtcdMember
) -> tuple[EtcdMember, ...]:
    """Add ``joining`` to the cluster ``existing`` belongs to (what a K3s server joining
    with ``--server`` does) and return the cluster it must start in."""
    client = etcd_client(files, existing.client_url)
    listed = client.request("POST", "/v3/cluster/member/list", {})
    for member in listed.get("members") or []:
        if joining.peer_url in (member.get("peerURLs") or []):
            break  # added before (a restart half-way through joining)
    else:
        client.request("POST", "/v3/cluster/member/add", {"peerURLs": [joining.peer_url]})
        listed = client.request("POST", "/v3/cluster/member/list", {})
    cluster = []
    for member in listed.get("members") or []:
        peer = (member.get("peerURLs") or [""])[0]
        name = member.get("name") or (joining.name if peer == joining.peer_url else "")
        if not name or not peer:
            continue
        host, _, port = peer.removeprefix("https://").rpartition(":")
        cluster.append(EtcdMember(name, host, peer_port=int(port)))
    return tuple(cluster)


def save_snapshot(files: ControlPlaneFiles, member: EtcdMember, target: Path) -> int:
    """Stream a snapshot of etcd's keyspace into ``target`` (0600); its size in bytes."""
    url = f"https://127.0.0.1:{member.client_port}"
    payload: bytes = etcd_client(files, url, timeout=120).request(
        "POST", "/v3/maintenance/snapshot", {}, raw=True
    )
    # The gateway streams one JSON document per chunk: {"result": {"blob": base64, ...}}.
    decoder, text, index, data = json.JSONDecoder(), payload.decode(), 0, bytearray()
    while index < len(text):
        if text[index].isspace():
            index += 1
            continue
        chunk, index = decoder.raw_decode(text, index)
        if "error" in chunk:
            raise ControlPlaneError(f"etcd snapshot failed: {chunk['error'].get('message')}")
        data += base64.b64decode(chunk.get("result", {}).get("blob") or "")
    if not data:
        raise ControlPlaneError("etcd returned an empty snapshot")
    pki.write_file(target, bytes(data))
    return len(data)


def restore_snapshot(
    binary: Path, files: ControlPlaneFiles, member: EtcdMember, snapshot: Path
) -> Path:
    """``--cluster-reset-restore-path``: the snapshot becomes this server's etcd, a cluster
    of this member alone; the previous data is kept aside. Returns where it was kept."""
    restored = files.db / "etcd-restore"
    shutil.rmtree(restored, ignore_errors=True)
    done = subprocess.run(
        [
            str(binary), "etcdutl", "snapshot", "restore", str(snapshot),
            f"--data-dir={restored}", f"--name={member.name}",
            f"--initial-cluster={member.name}={member.peer_url}",
            f"--initial-advertise-peer-urls={member.peer_url}",
        ],
        capture_output=True, text=True, check=False, timeout=300,
    )  # fmt: skip
    if done.returncode != 0:
        raise ControlPlaneError(f"cannot restore {snapshot}: {done.stderr.strip()[-500:]}")
    kept = files.db / f"etcd-old-{int(time.time())}"
    if files.etcd_data.exists():
        files.etcd_data.rename(kept)
    restored.rename(files.etcd_data)
    return kept


def _flags(values: dict[str, str], extra: Sequence[str]) -> list[str]:
    """``--name=value`` flags; ``extra`` (``name=value`` as in K3s's ``*-arg`` lists)
    overrides a default of the same name."""
    merged = {**values, **arg_pairs(extra)}
    return [f"--{name}={value}" for name, value in merged.items()]


@dataclass
class ControlPlane:
    binary: Path  # kube-components
    files: ControlPlaneFiles
    advertise_address: str
    apiserver_args: Sequence[str] = ()
    controller_manager_args: Sequence[str] = ()
    scheduler_args: Sequence[str] = ()
    leader_elect: bool = False
    # The API behind the supervisor, and the controller manager's and scheduler's own
    # HTTPS ports (health, metrics); K3s's defaults.
    api_port: int = INTERNAL_PORT
    component_ports: tuple[int, int] = (10257, 10259)
    etcd: Etcd | None = None  # None: kine on SQLite
    etcd_args: Sequence[str] = ()
    controllers: bool = True  # the controller manager and the scheduler
    output: Path | None = None  # the programs' logs; None: this process's own (K3s's journal)
    log: Callable[[str], None] = lambda _m: None
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    # ---- the programs' command lines ------------------------------------------------

    def kine_command(self) -> list[str]:
        self.files.db.mkdir(parents=True, exist_ok=True)
        database = self.files.db / "state.db"
        return [
            str(self.binary),
            "kine",
            "--endpoint",
            f"sqlite://{database}?_journal=WAL&cache=shared&_busy_timeout=30000",
            "--listen-address",
            f"unix://{self.files.kine_socket}",
            # Its metrics would listen on every address (:8080) otherwise; K3s turns them off.
            "--metrics-bind-address=0",
        ]

    def etcd_command(self) -> list[str]:
        assert self.etcd is not None
        member, tls = self.etcd.member, self.files.etcd_tls
        self.files.etcd_data.parent.mkdir(parents=True, exist_ok=True)
        values = {
            "name": member.name,
            "data-dir": str(self.files.etcd_data),
            "listen-client-urls": f"https://127.0.0.1:{member.client_port},{member.client_url}"
            if member.address != "127.0.0.1"
            else member.client_url,
            "advertise-client-urls": member.client_url,
            "listen-peer-urls": member.peer_url,
            "initial-advertise-peer-urls": member.peer_url,
            "initial-cluster": ",".join(
                f"{m.name}={m.peer_url}" for m in self.etcd.initial_cluster
            ),
            "initial-cluster-state": self.etcd.state,
            "listen-metrics-urls": f"http://127.0.0.1:{self.etcd.metrics_port}",
            "client-cert-auth": "true",
            "trusted-ca-file": str(tls / "server-ca.crt"),
            "cert-file": str(tls / "server-client.crt"),
            "key-file": str(tls / "server-client.key"),
            "peer-client-cert-auth": "true",
            "peer-trusted-ca-file": str(tls / "peer-ca.crt"),
            "peer-cert-file": str(tls / "peer-server-client.crt"),
            "peer-key-file": str(tls / "peer-server-client.key"),
            "heartbeat-interval": "500",
            "election-timeout": "5000",
            "snapshot-count": "10000",
            "log-level": "warn",
        }
        return [str(self.binary), "etcd", *_flags(values, self.etcd_args)]

    def _etcd_healthy(self) -> bool:
        assert self.etcd is not None
        url = f"https://127.0.0.1:{self.etcd.member.client_port}"
        try:
            answer = etcd_client(self.files, url, timeout=3).request("GET", "/health")
        except (ApiError, OSError, ValueError):
            return False
        return isinstance(answer, dict) and answer.get("health") == "true"

    def apiserver_command(self) -> list[str]:
        tls = self.files.tls
        values = {
            "advertise-address": self.advertise_address,
            "allow-privileged": "true",
            "anonymous-auth": "false",
            "api-audiences": f"{SERVICE_ACCOUNT_ISSUER},k3s",
            "authorization-mode": "Node,RBAC",
            "bind-address": "127.0.0.1",
            "client-ca-file": str(tls / "client-ca.crt"),
            "enable-admission-plugins": "NodeRestriction",
            "enable-aggregator-routing": "true",
            **self._datastore_flags(),
            "kubelet-certificate-authority": str(tls / "server-ca.crt"),
            "kubelet-client-certificate": str(tls / "client-kube-apiserver.crt"),
            "kubelet-client-key": str(tls / "client-kube-apiserver.key"),
            "profiling": "false",
            "proxy-client-cert-file": str(tls / "client-auth-proxy.crt"),
            "proxy-client-key-file": str(tls / "client-auth-proxy.key"),
            "requestheader-allowed-names": "system:auth-proxy",
            "requestheader-client-ca-file": str(tls / "request-header-ca.crt"),
            "requestheader-extra-headers-prefix": "X-Remote-Extra-",
            "requestheader-group-headers": "X-Remote-Group",
            "requestheader-username-headers": "X-Remote-User",
            "secure-port": str(self.api_port),
            "service-account-issuer": SERVICE_ACCOUNT_ISSUER,
            "service-account-key-file": str(tls / "service.key"),
            "service-account-signing-key-file": str(tls / "service.key"),
            "service-cluster-ip-range": SERVICE_CIDR,
            "service-node-port-range": "30000-32767",
            "storage-backend": "etcd3",
            "tls-cert-file": str(tls / "serving-kube-apiserver.crt"),
            "tls-private-key-file": str(tls / "serving-kube-apiserver.key"),
        }
        return [str(self.binary), "kube-apiserver", *_flags(values, self.apiserver_args)]

    def _datastore_flags(self) -> dict[str, str]:
        if self.etcd is None:
            return {"etcd-servers": f"unix://{self.files.kine_socket}"}
        tls = self.files.etcd_tls
        return {
            "etcd-servers": f"https://127.0.0.1:{self.etcd.member.client_port}",
            "etcd-cafile": str(tls / "server-ca.crt"),
            "etcd-certfile": str(tls / "client.crt"),
            "etcd-keyfile": str(tls / "client.key"),
        }

    def controller_manager_command(self) -> list[str]:
        tls, kubeconfig = self.files.tls, str(self.files.kubeconfig("controller"))
        values = {
            "allocate-node-cidrs": "true",
            "authentication-kubeconfig": kubeconfig,
            "authorization-kubeconfig": kubeconfig,
            "bind-address": "127.0.0.1",
            "cluster-cidr": CLUSTER_CIDR,
            "cluster-signing-cert-file": str(tls / "client-ca.crt"),
            "cluster-signing-key-file": str(tls / "client-ca.key"),
            "configure-cloud-routes": "false",
            "controllers": "*,tokencleaner,-service,-route,-cloud-node-lifecycle",
            "kubeconfig": kubeconfig,
            "leader-elect": str(self.leader_elect).lower(),
            "profiling": "false",
            "root-ca-file": str(tls / "server-ca.crt"),
            "secure-port": str(self.component_ports[0]),
            "service-account-private-key-file": str(tls / "service.key"),
            "service-cluster-ip-range": SERVICE_CIDR,
            "use-service-account-credentials": "true",
        }
        return [
            str(self.binary),
            "kube-controller-manager",
            *_flags(values, self.controller_manager_args),
        ]

    def scheduler_command(self) -> list[str]:
        kubeconfig = str(self.files.kubeconfig("scheduler"))
        values = {
            "authentication-kubeconfig": kubeconfig,
            "authorization-kubeconfig": kubeconfig,
            "bind-address": "127.0.0.1",
            "kubeconfig": kubeconfig,
            "leader-elect": str(self.leader_elect).lower(),
            "profiling": "false",
            "secure-port": str(self.component_ports[1]),
        }
        return [str(self.binary), "kube-scheduler", *_flags(values, self.scheduler_args)]

    # ---- running ----------------------------------------------------------------------

    def admin_client(self, timeout: float = 10.0) -> Client:
        tls = self.files.tls
        return Client(
            f"https://127.0.0.1:{self.api_port}",
            ca_pem=(tls / "server-ca.crt").read_text(),
            cert_file=str(tls / "client-supervisor.crt"),
            key_file=str(tls / "client-supervisor.key"),
            timeout=timeout,
        )

    def _start(self, name: str, command: list[str]) -> None:
        self.log(f"starting {name}")
        log = None
        if self.output is not None:
            self.output.mkdir(parents=True, exist_ok=True)
            log = (self.output / f"{name}.log").open("ab")
        self.processes[name] = subprocess.Popen(
            dying_with_parent(command), stdin=subprocess.DEVNULL, stdout=log, stderr=log
        )
        if log is not None:
            log.close()  # the child holds its own descriptor

    def start(self) -> None:
        """Start every program and return once the API answers ``/readyz``."""
        if self.etcd is None:
            self._start("kine", self.kine_command())
            self._wait_for(self.files.kine_socket.exists, "kine's socket")
        else:
            self.start_etcd()
        self._start("kube-apiserver", self.apiserver_command())
        self._wait_for(self._api_ready, "kube-apiserver to be ready")
        self.ensure_objects()
        if self.controllers:
            self._start("kube-controller-manager", self.controller_manager_command())
            self._start("kube-scheduler", self.scheduler_command())

    def start_etcd(self) -> None:
        assert self.etcd is not None
        ensure_etcd_pki(self.files, self.etcd.member)
        self._start("etcd", self.etcd_command())
        self._wait_for(self._etcd_healthy, "etcd to be healthy")

    def ensure_objects(self) -> None:
        """The objects K3s's own parts rely on, made when missing (as K3s makes its RBAC)."""
        client = self.admin_client()
        for path, obj in (
            ("/apis/rbac.authorization.k8s.io/v1/clusterroles", kubelet.SIMULATOR_ROLE),
            ("/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", kubelet.SIMULATOR_BINDING),
            ("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", deploy.ADDON_CRD),
            *(
                ("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)
                for crd in deploy.HELM_CRDS
            ),
        ):
            try:
                client.request("POST", path, obj)
            except ApiError as exc:
                if exc.status != 409:  # already there
                    raise ControlPlaneError(f"cannot create {path}: {exc}") from exc

    def _api_ready(self) -> bool:
        try:
            answer: bytes = self.admin_client(timeout=3).request("GET", "/readyz", raw=True)
        except (ApiError, OSError):
            return False
        return answer == b"ok"

    def _wait_for(self, ready: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not ready():
            died = self.died()
            if died:
                raise ControlPlaneError(f"{died} exited while waiting for {what}")
            if time.monotonic() > deadline:
                raise ControlPlaneError(
                    f"timed out after {READY_TIMEOUT_S:.0f} s waiting for {what}"
                )
            time.sleep(0.2)

    def died(self) -> str | None:
        """The name (and exit status) of a program that is no longer running."""
        for name, process in self.processes.items():
            code = process.poll()
            if code is not None:
                return f"{name} (exit status {code})"
        return None

    def stop(self, grace_s: float = 10.0) -> None:
        for name in reversed(list(self.processes)):
            terminate(self.processes[name], grace_s)
        self.processes.clear()
        with contextlib.suppress(FileNotFoundError):
            self.files.kine_socket.unlink()
