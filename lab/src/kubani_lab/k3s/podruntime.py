"""The node's container runtime, for the images it can really run: Flux's source-controller
and kustomize-controller (the programs the ``k3s`` stand-in carries, built from their pinned
modules). Every other container stays simulated by KWOK.

A pod of such an image that KWOK reports Running on this node gets its program started as a
real kubelet would start the container: with the pod's service account (a token requested
by this node's kubelet, bound to the pod, as projected tokens are), the container's
arguments and environment (``$(VAR)`` expanded, ``fieldRef`` resolved), and a folder of its
own for its volumes. Addresses that only make sense inside a pod network are the node's
instead: the storage server listens and is advertised on the node's address, metrics and
health on loopback ports, the events address (no notification-controller in the lab's
install) is left out, and leader election is off (one replica; it would look for the
in-cluster namespace file). The program stops when its pod leaves the node. It runs under a
shim (``shim.py``), so that, as a real container, it keeps running while k3s restarts; the
agent takes it back when it starts again.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kubani_lab.k3s import pki
from kubani_lab.k3s.client import ApiError
from kubani_lab.k3s.payload import program as carried
from kubani_lab.k3s.ports import unused_port
from kubani_lab.k3s.shim import SHIM, Shim, running_shim, start_shim

if TYPE_CHECKING:
    from kubani_lab.k3s.agent import Agent

FLUX_CONTROLLER_TAG = "v1.9.6"
# Image repository -> the carried program that is that image's entry point.
FLUX_IMAGES = {
    "ghcr.io/fluxcd/source-controller": "source-controller",
    "ghcr.io/fluxcd/kustomize-controller": "kustomize-controller",
}
PERIOD_S = 3.0
TOKEN_SECONDS = 24 * 3600
_VARIABLE = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


def program_for(image: str) -> str | None:
    """The carried program for an image reference (tag or digest ignored)."""
    repository = image.split("@", 1)[0]
    name, _, tag = repository.rpartition(":")
    if name and "/" not in tag:
        repository = name
    return FLUX_IMAGES.get(repository)


def _field(pod: dict[str, Any], path: str) -> str:
    value: Any = pod
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return "" if value is None else str(value)


@dataclass
class Container:
    key: str  # pod uid / container name
    shim: Shim

    def stale(self) -> bool:
        """Its token nears its end (a kubelet refreshes projected tokens; this restarts)."""
        return time.time() - self.shim.started_at > TOKEN_SECONDS * 0.8


def _taken_back(pods_dir: Path) -> dict[str, Container]:
    """The containers an earlier start of the agent left running, by key."""
    found: dict[str, Container] = {}
    for folder in sorted(pods_dir.glob("*/*")):
        shim = running_shim(folder)
        if shim is not None:
            key = f"{folder.parent.name}/{folder.name}"
            found[key] = Container(key, shim)
    return found


class PodRuntime:
    def __init__(self, agent: Agent, bin_dir: Path) -> None:
        self.agent = agent
        self.bin_dir = bin_dir
        self.pods_dir = agent.agent_dir / "pods"
        self.shim = carried(bin_dir, SHIM)
        self.running: dict[str, Container] = _taken_back(self.pods_dir)
        self.lock = threading.Lock()

    def run_forever(self) -> None:
        """Until the agent stops; the containers keep running then (see ``shim``)."""
        while not self.agent.stop.wait(PERIOD_S):
            with contextlib.suppress(ApiError, OSError, ValueError, KeyError, TypeError):
                self.tick()

    def tick(self) -> None:
        client = self.agent.client()
        pods = client.request(
            "GET", f"/api/v1/pods?fieldSelector=spec.nodeName%3D{self.agent.node_name}"
        )["items"]
        wanted: dict[str, tuple[dict[str, Any], dict[str, Any], str]] = {}
        for pod in pods:
            if pod["metadata"].get("deletionTimestamp"):
                continue
            if (pod.get("status") or {}).get("phase") != "Running":
                continue
            for container in (pod.get("spec") or {}).get("containers") or []:
                program = program_for(str(container.get("image") or ""))
                # Unpacked on first use, as a node pulls an image when a pod needs it.
                if program and carried(self.bin_dir, program) is not None and self.shim:
                    key = f"{pod['metadata']['uid']}/{container['name']}"
                    wanted[key] = (pod, container, program)
        with self.lock:
            for key in list(self.running):
                container = self.running[key]
                if key not in wanted or not container.shim.running() or container.stale():
                    self._stop(key)
            for key, (pod, container, program) in wanted.items():
                if key not in self.running:
                    self.running[key] = Container(key, self._start(pod, container, program))

    def _start(self, pod: dict[str, Any], container: dict[str, Any], program: str) -> Shim:
        meta = pod["metadata"]
        folder = self.pods_dir / meta["uid"] / container["name"]
        (folder / "tmp").mkdir(parents=True, exist_ok=True)
        kubeconfig = folder / "kubeconfig"
        pki.write_file(kubeconfig, self._kubeconfig(pod).encode())
        environment = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(folder / "tmp"),
                       "TMPDIR": str(folder / "tmp"), "KUBECONFIG": str(kubeconfig)}  # fmt: skip
        for variable in container.get("env") or []:
            source = ((variable.get("valueFrom") or {}).get("fieldRef") or {}).get("fieldPath")
            value = _field(pod, source) if source else str(variable.get("value") or "")
            environment[variable["name"]] = _VARIABLE.sub(
                lambda m: environment.get(m.group(1), m.group(0)), value
            )
        args = [
            _VARIABLE.sub(lambda m: environment.get(m.group(1), m.group(0)), str(a))
            for a in [*(container.get("command") or [])[1:], *(container.get("args") or [])]
        ]
        command = [str(self.bin_dir / program), *self._node_local(args, folder, program)]
        assert self.shim is not None  # containers are wanted only with a shim (tick)
        container_id = hashlib.sha256(f"{meta['uid']}/{container['name']}".encode()).hexdigest()
        return start_shim(self.shim, container_id, command, folder, environment)

    def _node_local(self, args: list[str], folder: Path, program: str) -> list[str]:
        """The container's arguments with pod-network addresses and paths made the node's."""
        address = self.agent.node_ip
        kept = [
            a
            for a in args
            if not a.startswith(("--events-addr", "--metrics-addr", "--health-addr",
                                 "--storage-path", "--storage-addr", "--storage-adv-addr",
                                 "--enable-leader-election"))
        ]  # fmt: skip
        # Leader election finds its namespace in the pod's service-account folder, which a
        # process on the node does not have; there is one replica.
        kept += ["--enable-leader-election=false",
                 f"--metrics-addr=127.0.0.1:{unused_port('127.0.0.1')}",
                 f"--health-addr=127.0.0.1:{unused_port('127.0.0.1')}"]  # fmt: skip
        if program == "source-controller":
            storage = f"{address}:{unused_port(address)}"
            (folder / "data").mkdir(exist_ok=True)
            kept += [f"--storage-path={folder / 'data'}", f"--storage-addr={storage}",
                     f"--storage-adv-addr={storage}"]  # fmt: skip
        return kept

    def _kubeconfig(self, pod: dict[str, Any]) -> str:
        """The pod's service account credentials: a token bound to the pod."""
        meta = pod["metadata"]
        account = (pod.get("spec") or {}).get("serviceAccountName") or "default"
        reply = self.agent.client().request(
            "POST",
            f"/api/v1/namespaces/{meta['namespace']}/serviceaccounts/{account}/token",
            {
                "apiVersion": "authentication.k8s.io/v1",
                "kind": "TokenRequest",
                "spec": {
                    "expirationSeconds": TOKEN_SECONDS,
                    "boundObjectRef": {
                        "apiVersion": "v1",
                        "kind": "Pod",
                        "name": meta["name"],
                        "uid": meta["uid"],
                    },
                },
            },
        )
        import base64

        ca = base64.b64encode((self.agent.agent_dir / "server-ca.crt").read_bytes()).decode()
        return (
            "apiVersion: v1\nkind: Config\n"
            f"clusters:\n- name: pod\n  cluster:\n    server: {self.agent.server_url}\n"
            f"    certificate-authority-data: {ca}\n"
            f"users:\n- name: pod\n  user:\n    token: {reply['status']['token']}\n"
            "contexts:\n- name: pod\n  context: {cluster: pod, user: pod}\n"
            "current-context: pod\n"
        )

    def _stop(self, key: str) -> None:
        self.running.pop(key).shim.stop(grace_s=15)
