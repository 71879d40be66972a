"""The node side of the K3s stand-in: join, register, heartbeat, serve kubelet stats.

Joining follows K3s: fetch ``/cacerts``, check it against the CA hash in a full token, then
present the token (HTTP basic auth) to obtain node credentials. Labels and taints from the
configuration are applied when the node first registers, as in K3s; later changes in the
configuration do not touch an existing node.
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

from kubani.lab.k3s import hoststats
from kubani.lab.k3s.client import ApiError, Client
from kubani.lab.k3s.config import kubelet_args
from kubani.lab.k3s.pki import Token, basic_auth
from kubani.quantity import parse_quantity

KUBELET_PORT = 10250
CONTAINER_RUNTIME = "containerd://1.7.23-k3s2"


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


@dataclass
class Agent:
    config: dict[str, Any]
    server_url: str
    node_name: str = field(default_factory=socket.gethostname)
    is_server: bool = False
    etcd: bool = False
    version: str = "v1.31.4+k3s1"
    data_dir: Path = Path("/var/lib/rancher/k3s")
    password_file: Path = Path("/etc/rancher/node/password")
    heartbeat_s: float = 10.0
    stop: threading.Event = field(default_factory=threading.Event)
    client: Client | None = None
    started: str = field(default_factory=_stamp)

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
        agent_dir = self.data_dir / "agent"
        agent_dir.mkdir(parents=True, exist_ok=True)
        (agent_dir / "server-ca.crt").write_text(ca_pem)
        password = self._node_password()
        user = "server" if self.is_server else "node"
        joiner = Client(
            self.server_url,
            ca_pem=ca_pem,
            headers={"Authorization": basic_auth(user, token.secret)},
        )
        try:
            reply = joiner.request(
                "POST",
                "/v1-k3s/join",
                {
                    "name": self.node_name,
                    "password": password,
                    "role": "server" if self.is_server else "agent",
                },
            )
        except ApiError as exc:
            if exc.status == 401:
                raise JoinError(
                    f"{self.server_url}/v1-k3s/join: 401 Unauthorized: the token "
                    "is not valid for this cluster"
                ) from exc
            raise JoinError(f"{self.server_url}/v1-k3s/join: {exc}") from exc
        except OSError as exc:
            raise JoinError(f"cannot reach {self.server_url}: {exc}") from exc
        credentials = {"server": self.server_url, "token": reply["token"]}
        path = agent_dir / "kubelet.kubeconfig.json"
        path.write_text(json.dumps(credentials))
        path.chmod(0o600)
        self.client = Client(
            self.server_url, ca_pem=ca_pem, headers={"Authorization": f"Bearer {reply['token']}"}
        )

    def _node_password(self) -> str:
        if self.password_file.exists():
            return self.password_file.read_text().strip()
        self.password_file.parent.mkdir(parents=True, exist_ok=True)
        password = secrets.token_hex(16)
        self.password_file.write_text(password + "\n")
        self.password_file.chmod(0o600)
        return password

    # ---- the node object -------------------------------------------------------

    @property
    def node_ip(self) -> str:
        ips = self.config.get("node-ip") or []
        return str(ips[0]) if ips else _first_address()

    def write_containerd_config(self) -> Path:
        """K3s writes containerd's config at start, adding runtimes it finds (nvidia)."""
        path = self.data_dir / "agent" / "etc" / "containerd" / "config.toml"
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

    def _gpu_capacity(self, pods: list[dict[str, Any]]) -> dict[str, str]:
        """What the NVIDIA device plugin would advertise: GPUs x time-slicing replicas, once
        one of its pods runs on this node."""
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
        smi = shutil.which("nvidia-smi")
        if plugin is None or smi is None or self.client is None:
            return {}
        listed = subprocess.run([smi, "-L"], capture_output=True, text=True, check=False)
        gpus = len([line for line in listed.stdout.splitlines() if line.startswith("GPU ")])
        replicas = 1
        namespace = plugin["metadata"]["namespace"]
        with contextlib.suppress(ApiError, OSError, ValueError, KeyError, TypeError):
            configmap = self.client.request(
                "GET", f"/api/v1/namespaces/{namespace}/configmaps/nvidia-device-plugin-configs"
            )
            node = self.client.request("GET", f"/api/v1/nodes/{self.node_name}")
            key = (node["metadata"].get("labels") or {}).get(
                "nvidia.com/device-plugin.config", "any"
            )
            import yaml

            config = yaml.safe_load(configmap["data"][key])
            for resource in config["sharing"]["timeSlicing"]["resources"]:
                if resource["name"] == "nvidia.com/gpu":
                    replicas = int(resource["replicas"])
        return {"nvidia.com/gpu": str(gpus * replicas)} if gpus else {}

    def _labels(self) -> dict[str, str]:
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
        if self.is_server:
            labels["node-role.kubernetes.io/control-plane"] = "true"
            labels["node-role.kubernetes.io/master"] = "true"
            if self.etcd:
                labels["node-role.kubernetes.io/etcd"] = "true"
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
        stamp = _stamp()
        addresses = [
            {"type": "InternalIP", "address": self.node_ip},
            {"type": "Hostname", "address": self.node_name},
        ]
        external = self.config.get("node-external-ip") or []
        if external:
            addresses.insert(1, {"type": "ExternalIP", "address": str(external[0])})
        conditions = [
            {
                "type": kind,
                "status": "False",
                "reason": reason,
                "message": message,
                "lastHeartbeatTime": stamp,
                "lastTransitionTime": self.started,
            }
            for kind, reason, message in (
                (
                    "MemoryPressure",
                    "KubeletHasSufficientMemory",
                    "kubelet has sufficient memory available",
                ),
                ("DiskPressure", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                ("PIDPressure", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
            )
        ]
        conditions.append(
            {
                "type": "Ready",
                "status": "True",
                "reason": "KubeletReady",
                "message": "kubelet is posting ready status",
                "lastHeartbeatTime": stamp,
                "lastTransitionTime": stamp,
            }
        )
        uname = os.uname()
        return {
            "capacity": capacity,
            "allocatable": allocatable,
            "conditions": conditions,
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
                "architecture": self._labels()["kubernetes.io/arch"],
            },
        }

    def register(self) -> None:
        assert self.client is not None
        path = f"/api/v1/nodes/{self.node_name}"
        annotations = {
            "k3s.io/node-args": json.dumps(["server" if self.is_server else "agent"]),
            "k3s.io/internal-ip": self.node_ip,
            "node.alpha.kubernetes.io/ttl": "0",
            "flannel.alpha.coreos.com/public-ip": self.node_ip,
        }
        iface = self.config.get("flannel-iface")
        if iface:
            annotations["flannel.alpha.coreos.com/public-ip-overwrite"] = self.node_ip
            annotations["kubani.io/flannel-iface"] = str(iface)
        try:
            self.client.request("GET", path)
        except ApiError as exc:
            if exc.status != 404:
                raise
            node = {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {
                    "name": self.node_name,
                    "labels": self._labels(),
                    "annotations": annotations,
                },
                "spec": {
                    "podCIDR": "10.42.0.0/24",
                    "podCIDRs": ["10.42.0.0/24"],
                    **({"taints": self._taints()} if self._taints() else {}),
                },
            }
            self.client.request("POST", "/api/v1/nodes", node)
        self.heartbeat()

    def heartbeat(self) -> None:
        assert self.client is not None
        pods = self._my_pods()
        status = self._status()
        for resource, amount in self._gpu_capacity(pods).items():
            status["capacity"][resource] = status["allocatable"][resource] = amount
        self.client.request(
            "PATCH",
            f"/api/v1/nodes/{self.node_name}/status",
            {"status": status},
            "application/merge-patch+json",
        )
        lease_path = (
            f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{self.node_name}"
        )
        lease = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": self.node_name, "namespace": "kube-node-lease"},
            "spec": {
                "holderIdentity": self.node_name,
                "leaseDurationSeconds": 40,
                "renewTime": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            },
        }
        try:
            self.client.request("PATCH", lease_path, lease, "application/merge-patch+json")
        except ApiError as exc:
            if exc.status != 404:
                raise
            self.client.request(
                "POST", "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases", lease
            )
        self._run_pods(pods)

    def _my_pods(self) -> list[dict[str, Any]]:
        assert self.client is not None
        pods = self.client.request(
            "GET", f"/api/v1/pods?fieldSelector=spec.nodeName%3D{self.node_name}"
        )
        items: list[dict[str, Any]] = pods["items"]
        return items

    def _run_pods(self, pods: list[dict[str, Any]]) -> None:
        """The kubelet's part, simulated: pods bound here are reported Running."""
        assert self.client is not None
        for index, pod in enumerate(pods):
            status = pod.get("status") or {}
            if status.get("phase") not in (None, "Pending"):
                continue
            containers = (pod.get("spec") or {}).get("containers") or []
            stamp = _stamp()
            running = {
                "phase": "Running",
                "hostIP": self.node_ip,
                "startTime": stamp,
                "podIP": f"10.42.{abs(hash(self.node_name)) % 250}.{(index % 250) + 2}",
                "conditions": [
                    {"type": t, "status": "True", "lastTransitionTime": stamp}
                    for t in ("Initialized", "Ready", "ContainersReady", "PodScheduled")
                ],
                "containerStatuses": [
                    {
                        "name": c.get("name"),
                        "image": c.get("image"),
                        "ready": True,
                        "restartCount": 0,
                        "started": True,
                        "imageID": "",
                        "containerID": "containerd://" + secrets.token_hex(32),
                        "state": {"running": {"startedAt": stamp}},
                    }
                    for c in containers
                ],
            }
            meta = pod["metadata"]
            with contextlib.suppress(ApiError):
                self.client.request(
                    "PATCH",
                    f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}/status",
                    {"status": running},
                    "application/merge-patch+json",
                )

    def heartbeat_forever(self) -> None:
        while not self.stop.wait(self.heartbeat_s):
            with contextlib.suppress(ApiError, OSError):
                self.heartbeat()

    # ---- kubelet endpoint -------------------------------------------------------

    def serve_kubelet(self, cert: Path, key: Path) -> ThreadingHTTPServer:
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
