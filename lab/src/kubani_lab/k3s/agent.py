"""The node side of the K3s stand-in: join, register the Node, run its kubelet (KWOK), serve
the kubelet's stats.

Joining follows K3s: fetch ``/cacerts``, check it against the CA hash in a full token, then
present the token (HTTP basic auth) with the node's password to obtain the kubelet's client
certificate (``system:node:NAME``) and serving certificate. The kubelet registers its Node
with those credentials, so the API server's Node authorizer and NodeRestriction apply to it as
to a real kubelet. Labels and taints from the configuration are set when the node first
registers, as in K3s; later changes in the configuration do not touch an existing node.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import secrets
import shutil
import socket
import ssl
import subprocess
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from kubani.quantity import parse_quantity
from kubani_lab.k3s import hoststats, kubelet, pki
from kubani_lab.k3s.client import ApiError, Client
from kubani_lab.k3s.config import duration_seconds, kubelet_args
from kubani_lab.k3s.logs import log
from kubani_lab.k3s.pki import Token, basic_auth
from kubani_lab.k3s.podruntime import PodRuntime
from kubani_lab.k3s.processes import dying_with_parent, terminate
from kubani_lab.k3s.traces import TraceError, leave_runtime_traces

KUBELET_PORT = 10250
CONTAINER_RUNTIME = "containerd://2.1.5-k3s1"
GPU_RESOURCE = "nvidia.com/gpu"
LEASES_PATH = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases"
GPU_CHECK_S = 3.0
# Label prefixes a kubelet may set on its own Node (kubelet's --node-labels rule).
KUBELET_LABEL_NAMESPACES = ("kubernetes.io", "k8s.io")
KUBELET_ALLOWED_LABELS = frozenset(
    {
        "kubernetes.io/hostname",
        "kubernetes.io/arch",
        "kubernetes.io/os",
        "beta.kubernetes.io/arch",
        "beta.kubernetes.io/os",
        "beta.kubernetes.io/instance-type",
        "node.kubernetes.io/instance-type",
        "topology.kubernetes.io/region",
        "topology.kubernetes.io/zone",
        "failure-domain.beta.kubernetes.io/region",
        "failure-domain.beta.kubernetes.io/zone",
    }
)
KUBELET_ALLOWED_PREFIXES = ("kubelet.kubernetes.io/", "node.kubernetes.io/")
# What a joining node receives (file names under agent/).
JOIN_FILES = (
    "server-ca.crt",
    "client-kubelet.crt",
    "client-kubelet.key",
    "serving-kubelet.crt",
    "serving-kubelet.key",
)


class JoinError(RuntimeError):
    pass


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _reservations(config: dict[str, Any]) -> dict[str, Decimal]:
    """CPU and memory kept back by system-reserved, kube-reserved and eviction-hard."""
    args = kubelet_args(config)
    kept = {"cpu": Decimal(0), "memory": Decimal(0)}
    for flag in ("system-reserved", "kube-reserved"):
        for item in filter(None, args.get(flag, "").split(",")):
            resource, _, amount = item.partition("=")
            if resource in kept:
                kept[resource] += parse_quantity(amount)
    for item in filter(None, args.get("eviction-hard", "").split(",")):
        signal, _, threshold = item.partition("<")
        if signal == "memory.available" and not threshold.endswith("%"):
            kept["memory"] += parse_quantity(threshold)
    return kept


def _format_memory(value: Decimal) -> str:
    return f"{int(value // 1024)}Ki"


def _format_cpu(value: Decimal) -> str:
    millis = int(value * 1000)
    return str(millis // 1000) if millis % 1000 == 0 else f"{millis}m"


def forbidden_labels(labels: dict[str, str]) -> list[str]:
    """Labels a kubelet refuses to set on its own Node (in the kubernetes.io and k8s.io
    namespaces, other than the kubelet's own ones)."""
    refused = []
    for key in labels:
        prefix = key.partition("/")[0] if "/" in key else ""
        in_namespace = any(
            prefix == ns or prefix.endswith("." + ns) for ns in KUBELET_LABEL_NAMESPACES
        )
        if (
            in_namespace
            and key not in KUBELET_ALLOWED_LABELS
            and not key.startswith(KUBELET_ALLOWED_PREFIXES)
        ):
            refused.append(key)
    return sorted(refused)


@dataclass
class Agent:
    config: dict[str, Any]
    server_url: str
    node_name: str = field(default_factory=socket.gethostname)
    bin_dir: Path | None = None  # the unpacked programs (kwok) and, beside, their data
    is_server: bool = False
    version: str = "v1.35.4+k3s1"
    data_dir: Path = Path("/var/lib/rancher/k3s")
    password_file: Path = Path("/etc/rancher/node/password")
    stop: threading.Event = field(default_factory=threading.Event)
    started: str = field(default_factory=_stamp)
    kwok: subprocess.Popen[bytes] | None = None
    stats_server: ThreadingHTTPServer | None = None
    runtime: PodRuntime | None = None

    @property
    def agent_dir(self) -> Path:
        return self.data_dir / "agent"

    @property
    def kubeconfig(self) -> Path:
        return self.agent_dir / "kubelet.kubeconfig"

    # ---- joining --------------------------------------------------------------

    def join(self, token_text: str) -> None:
        token = Token.parse(token_text)
        fetch = Client(self.server_url, ca_pem=None, timeout=10)
        try:
            ca_pem = fetch.request("GET", "/cacerts", raw=True).decode()
        except (OSError, ApiError) as exc:
            raise JoinError(
                f"failed to get CA certs from {self.server_url}/cacerts: {exc}"
            ) from exc
        if token.ca_hash and hashlib.sha256(ca_pem.encode()).hexdigest() != token.ca_hash:
            raise JoinError("token CA hash does not match the Cluster CA certificate hash")
        user = "server" if self.is_server else "node"
        joiner = Client(
            self.server_url,
            ca_pem=ca_pem,
            headers={"Authorization": basic_auth(user, token.secret)},
            timeout=30,
        )
        request = {
            "name": self.node_name,
            "password": self._node_password(),
            "role": "server" if self.is_server else "agent",
            "address": self.node_ip,
        }
        try:
            reply = joiner.request("POST", "/v1-k3s/join", request)
        except ApiError as exc:
            if exc.status == 401:
                raise JoinError(
                    f"{self.server_url}/v1-k3s/join: 401 Unauthorized: the token "
                    "is not valid for this cluster"
                ) from exc
            raise JoinError(f"{self.server_url}/v1-k3s/join: {exc}") from exc
        except OSError as exc:
            raise JoinError(f"cannot reach {self.server_url}: {exc}") from exc
        for name in JOIN_FILES:
            mode = 0o600 if name.endswith(".key") else 0o644
            pki.write_file(self.agent_dir / name, str(reply[name]).encode(), mode)
        pki.write_file(
            self.kubeconfig,
            pki.kubeconfig(
                self.server_url,
                self.agent_dir / "server-ca.crt",
                self.agent_dir / "client-kubelet.crt",
                self.agent_dir / "client-kubelet.key",
            ).encode(),
        )

    def client(self, timeout: float = 10.0) -> Client:
        return Client(
            self.server_url,
            ca_pem=(self.agent_dir / "server-ca.crt").read_text(),
            cert_file=str(self.agent_dir / "client-kubelet.crt"),
            key_file=str(self.agent_dir / "client-kubelet.key"),
            timeout=timeout,
        )

    def _node_password(self) -> str:
        if self.password_file.exists():
            return self.password_file.read_text().strip()
        password = secrets.token_hex(16)
        pki.write_file(self.password_file, (password + "\n").encode())
        return password

    # ---- the node object -------------------------------------------------------

    @property
    def node_ip(self) -> str:
        ips = self.config.get("node-ip") or []
        return str(ips[0]) if ips else _first_address()

    def write_containerd_config(self) -> Path:
        """K3s writes containerd's config at start, adding runtimes it finds (nvidia)."""
        path = self.agent_dir / "etc" / "containerd" / "config.toml"
        path.parent.mkdir(parents=True, exist_ok=True)
        text = (
            "# File generated by k3s. DO NOT EDIT.\nversion = 3\n"
            '[plugins."io.containerd.cri.v1.runtime".containerd]\n'
            f'  default_runtime_name = "{self.config.get("default-runtime") or "runc"}"\n'
        )
        runtime = shutil.which("nvidia-container-runtime")
        if runtime:
            text += (
                '[plugins."io.containerd.cri.v1.runtime".containerd.runtimes."nvidia"]\n'
                '  runtime_type = "io.containerd.runc.v2"\n'
                '[plugins."io.containerd.cri.v1.runtime".containerd.runtimes."nvidia".options]\n'
                f'  BinaryName = "{runtime}"\n  SystemdCgroup = true\n'
            )
        path.write_text(text)
        return path

    def labels(self) -> dict[str, str]:
        arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
        labels = {
            "beta.kubernetes.io/arch": arch,
            "beta.kubernetes.io/os": "linux",
            "kubernetes.io/arch": arch,
            "kubernetes.io/os": "linux",
            "kubernetes.io/hostname": self.node_name,
            "node.kubernetes.io/instance-type": "k3s",
            "k3s.io/hostname": self.node_name,
            "k3s.io/internal-ip": self.node_ip,
        }
        for item in self.config.get("node-label") or []:
            key, _, value = str(item).partition("=")
            labels[key] = value
        return labels

    def _taints(self) -> list[dict[str, str]]:
        taints = []
        for item in self.config.get("node-taint") or []:
            body, _, effect = str(item).rpartition(":")
            key, _, value = body.partition("=")
            taint = {"key": key, "effect": effect}
            if value:
                taint["value"] = value
            taints.append(taint)
        return taints

    def _status(self) -> dict[str, Any]:
        memory = Decimal(hoststats.meminfo()["MemTotal"])
        cpus = Decimal(os.cpu_count() or 1)
        storage = Decimal(hoststats.disk("/")[0])
        kept = _reservations(self.config)
        capacity = {
            "cpu": _format_cpu(cpus),
            "memory": _format_memory(memory),
            "ephemeral-storage": _format_memory(storage),
            "pods": "110",
        }
        allocatable = {
            "cpu": _format_cpu(max(cpus - kept["cpu"], Decimal(0))),
            "memory": _format_memory(max(memory - kept["memory"], Decimal(0))),
            "ephemeral-storage": _format_memory(storage * Decimal("0.9")),
            "pods": "110",
        }
        addresses = [
            {"type": "InternalIP", "address": self.node_ip},
            {"type": "Hostname", "address": self.node_name},
        ]
        external = self.config.get("node-external-ip") or []
        if external:
            addresses.insert(1, {"type": "ExternalIP", "address": str(external[0])})
        uname = os.uname()
        return {
            "capacity": capacity,
            "allocatable": allocatable,
            "addresses": addresses,
            "daemonEndpoints": {"kubeletEndpoint": {"Port": KUBELET_PORT}},
            "nodeInfo": {
                "machineID": _machine_id(),
                "systemUUID": _machine_id(),
                "bootID": _boot_id(),
                "kernelVersion": uname.release,
                "osImage": hoststats.os_image(),
                "containerRuntimeVersion": CONTAINER_RUNTIME,
                "kubeletVersion": self.version,
                "kubeProxyVersion": self.version,
                "operatingSystem": "linux",
                "architecture": self.labels()["kubernetes.io/arch"],
            },
        }

    def register(self) -> None:
        """Create the Node (first start) or bring its status up to date (later starts)."""
        labels = self.labels()
        refused = forbidden_labels(labels)
        if refused:
            raise JoinError(
                "unknown 'kubernetes.io' or 'k8s.io' labels specified with --node-labels: "
                f"{refused}; --node-labels in the 'kubernetes.io' namespace must begin with an "
                f"allowed prefix ({', '.join(KUBELET_ALLOWED_PREFIXES)}) or be in the "
                "specifically allowed set"
            )
        client = self.client()
        path = f"/api/v1/nodes/{self.node_name}"
        status = self._status()
        try:
            client.request("GET", path)
        except ApiError as exc:
            if exc.status != 404:
                raise
            annotations = {
                "k3s.io/node-args": json.dumps(["server" if self.is_server else "agent"]),
                "k3s.io/internal-ip": self.node_ip,
                "node.alpha.kubernetes.io/ttl": "0",
                "flannel.alpha.coreos.com/public-ip": self.node_ip,
            }
            iface = self.config.get("flannel-iface")
            if iface:
                annotations["flannel.alpha.coreos.com/public-ip-overwrite"] = self.node_ip
            node = {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {"name": self.node_name, "labels": labels,
                             "annotations": annotations},
                "spec": {"taints": self._taints()} if self._taints() else {},
                "status": status,
            }  # fmt: skip
            client.request("POST", "/api/v1/nodes", node)
            return
        # A restarted (or upgraded) kubelet reports what it runs now.
        client.request(
            "PATCH",
            f"{path}/status",
            {"status": {k: status[k] for k in ("nodeInfo", "addresses", "daemonEndpoints")}},
            "application/merge-patch+json",
        )

    # ---- the kubelet ---------------------------------------------------------------

    def start_kubelet(self) -> None:
        """KWOK for this node, the stats endpoint, and the device plugin's capacity."""
        if self.bin_dir is None:
            raise JoinError("this k3s carries no kubelet (no kwok in its payload)")
        try:
            leave_runtime_traces(self.bin_dir, self.node_ip)
        except (TraceError, OSError) as exc:
            raise JoinError(f"cannot set up the container runtime: {exc}") from exc
        self._hand_over_lease()
        stages = self.bin_dir.parent / "kwok" / "stages"
        config = kubelet.write_config(
            self.agent_dir / "kwok.yaml", stages, lease_duration_s=self.lease_duration_s()
        )
        logs = self.agent_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        with (logs / "kubelet.log").open("ab") as log:
            self.kwok = subprocess.Popen(
                dying_with_parent(
                    kubelet.kwok_command(
                        self.bin_dir / "kwok",
                        self.kubeconfig,
                        config,
                        self.node_name,
                        self.node_ip,
                    )
                ),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
        self.stats_server = self.serve_stats(
            self.agent_dir / "serving-kubelet.crt", self.agent_dir / "serving-kubelet.key"
        )
        threading.Thread(target=self._gpu_forever, daemon=True, name="device-plugin").start()
        self.runtime = PodRuntime(self, self.bin_dir)
        threading.Thread(target=self.runtime.run_forever, daemon=True, name="runtime").start()

    def _hand_over_lease(self) -> None:
        """A real kubelet holds its node's Lease as the node itself, so a restarted one
        renews it at once. KWOK holds it under a new name on every start and waits for the
        last holder's Lease to run out; a pod created on the node meanwhile may then never
        start (KWOK skips a pod on a node it does not manage yet, and its catch-up of the
        node's pods races with taking the node on). The last holder's Lease goes first."""
        try:
            self.client().request("DELETE", f"{LEASES_PATH}/{self.node_name}")
        except (ApiError, OSError) as exc:
            if not (isinstance(exc, ApiError) and exc.status == 404):  # 404: a first start
                log("warning", f"kubelet: the node's lease stays with its last holder: {exc}")

    def lease_duration_s(self) -> int:
        """The node Lease's duration. A kubelet renews it at a quarter of that; here the
        renewals follow ``node-status-update-frequency`` when it is set (the lab sets 2 s with
        a short grace period), else the kubelet's default of 40 s."""
        frequency = kubelet_args(self.config).get("node-status-update-frequency")
        if not frequency:
            return kubelet.LEASE_DURATION_S
        return max(4, round(4 * duration_seconds(frequency, 10.0)))

    def died(self) -> str | None:
        if self.kwok is not None and self.kwok.poll() is not None:
            return f"kubelet (kwok, exit status {self.kwok.returncode})"
        return None

    def stop_kubelet(self) -> None:
        self.stop.set()
        if self.kwok is not None:
            terminate(self.kwok)
        if self.stats_server is not None:
            self.stats_server.shutdown()
        # The containers keep running (their shims outlive k3s): the next start takes them back.

    # ---- the NVIDIA device plugin's part ----------------------------------------------

    def _gpu_forever(self) -> None:
        if shutil.which("nvidia-smi") is None:
            return
        last_error = ""
        while not self.stop.wait(GPU_CHECK_S):
            # The real plugin is a pod the kubelet restarts when it fails: whatever goes
            # wrong here (the API busy or restarting, an odd reply) is said once and tried
            # again, never the end of the GPUs' capacity.
            try:
                self._advertise_gpus()
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"
                if error != last_error:
                    log("error", f"nvidia device plugin: {error}; retrying")
                last_error = error
            else:
                last_error = ""

    def _advertise_gpus(self) -> None:
        """What the NVIDIA device plugin does once its pod runs on this node: advertise the
        GPUs times the time-slicing replicas of its configuration."""
        client = self.client()
        pods = client.request(
            "GET", f"/api/v1/pods?fieldSelector=spec.nodeName%3D{self.node_name}"
        )["items"]
        plugin = next(
            (
                p
                for p in pods
                if (p["metadata"].get("labels") or {}).get("app.kubernetes.io/name")
                == "nvidia-device-plugin"
                and (p.get("status") or {}).get("phase") == "Running"
            ),
            None,
        )
        if plugin is None:
            return
        smi = shutil.which("nvidia-smi") or "nvidia-smi"
        listed = subprocess.run([smi, "-L"], capture_output=True, text=True, check=False)
        gpus = len([line for line in listed.stdout.splitlines() if line.startswith("GPU ")])
        node = client.request("GET", f"/api/v1/nodes/{self.node_name}")
        replicas = self._replicas(client, plugin, node)
        amount = str(gpus * replicas)
        status = node.get("status") or {}
        if gpus and (status.get("capacity") or {}).get(GPU_RESOURCE) != amount:
            log("info", f"nvidia device plugin: advertising {amount} {GPU_RESOURCE}")
            client.request(
                "PATCH",
                f"/api/v1/nodes/{self.node_name}/status",
                {"status": {"capacity": {GPU_RESOURCE: amount},
                            "allocatable": {GPU_RESOURCE: amount}}},
                "application/merge-patch+json",
            )  # fmt: skip

    @staticmethod
    def _replicas(client: Client, plugin: dict[str, Any], node: dict[str, Any]) -> int:
        import yaml

        namespace = plugin["metadata"]["namespace"]
        for volume in (plugin.get("spec") or {}).get("volumes") or []:
            name = (volume.get("configMap") or {}).get("name")
            if not name:
                continue
            configmap = client.request("GET", f"/api/v1/namespaces/{namespace}/configmaps/{name}")
            key = (node["metadata"].get("labels") or {}).get(
                "nvidia.com/device-plugin.config", "any"
            )
            config = yaml.safe_load((configmap.get("data") or {}).get(key) or "{}") or {}
            for resource in ((config.get("sharing") or {}).get("timeSlicing") or {}).get(
                "resources"
            ) or []:
                if resource.get("name") == GPU_RESOURCE:
                    return int(resource.get("replicas") or 1)
        return 1

    # ---- kubelet endpoint -------------------------------------------------------

    def serve_stats(self, cert: Path, key: Path) -> ThreadingHTTPServer:
        """``/stats/summary`` and ``/healthz`` on 10250, from the node's own figures (the
        metrics server reads them, as the real one scrapes kubelets)."""
        sampler = hoststats.Sampler()
        agent = self

        class Kubelet(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                if self.path.startswith("/stats/summary"):
                    body = json.dumps(
                        hoststats.stats_summary(agent.node_name, sampler, agent.started)
                    )
                elif self.path.startswith("/healthz"):
                    body = "ok"
                else:
                    self.send_error(404)
                    return
                data = body.encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        server = ThreadingHTTPServer(("0.0.0.0", KUBELET_PORT), Kubelet)
        server.daemon_threads = True
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(cert), str(key))
        server.socket = context.wrap_socket(server.socket, server_side=True)
        threading.Thread(target=server.serve_forever, daemon=True, name="kubelet").start()
        return server


def _first_address() -> str:
    with contextlib.suppress(OSError):
        return str(socket.gethostbyname(socket.gethostname()))
    return "127.0.0.1"


def _machine_id() -> str:
    with contextlib.suppress(OSError):
        return Path("/etc/machine-id").read_text().strip()
    return "0" * 32


def _boot_id() -> str:
    with contextlib.suppress(OSError):
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    return "0" * 36
