"""The lab's real control plane on a throwaway datastore, for the component tests."""

from __future__ import annotations

import ipaddress
import json
import re
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from kubani_lab.components import KUBERNETES, KWOK, ensure_built
from kubani_lab.k3s import kubelet, pki
from kubani_lab.k3s.control import ControlPlane, ControlPlaneFiles, ensure_pki
from kubani_lab.k3s.ports import unused_port
from kubani_lab.lab import DEFAULT_HOME
from kubani_lab.network import UNDERLAY

# Addresses the API servers advertise (in Endpoints) but never bind: the last hosts of the
# lab's underlay range, beyond any lab's own /24.
_UNDERLAY = ipaddress.ip_network(UNDERLAY)


def advertised(index: int = 1) -> str:
    return str(_UNDERLAY[-1 - index])


def free_port() -> int:
    return unused_port("127.0.0.1")


@pytest.fixture(scope="module")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    binaries, _ = ensure_built(KUBERNETES, DEFAULT_HOME / "cache")
    files = ControlPlaneFiles(tmp_path_factory.mktemp("server"))
    port = free_port()
    ensure_pki(files, ["127.0.0.1", "localhost"], api_port=port)
    plane = ControlPlane(
        binaries / "kube-components",
        files,
        advertise_address=advertised(),
        api_port=port,
        component_ports=(free_port(), free_port()),
        controller_manager_args=["node-monitor-grace-period=12s"],
    )
    try:
        plane.start()
        yield plane
    finally:
        plane.stop()


def kubectl(
    plane: ControlPlane, *args: str, stdin: str | None = None, kubeconfig: Path | None = None
) -> subprocess.CompletedProcess[str]:
    config = kubeconfig or plane.files.kubeconfig("admin")
    return subprocess.run(
        [str(plane.binary), "kubectl", f"--kubeconfig={config}", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def get(plane: ControlPlane, *args: str) -> Any:
    done = kubectl(plane, "get", "-o", "json", *args)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def wait_for(what: str, check: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


def node_ready(node: dict[str, Any]) -> str:
    conditions = (node.get("status") or {}).get("conditions") or []
    return next((c["status"] for c in conditions if c["type"] == "Ready"), "")


def start_kwok(plane: ControlPlane, name: str, address: str) -> subprocess.Popen[bytes]:
    """Register a node with its own credentials and start KWOK as its kubelet."""
    binaries, _ = ensure_built(KWOK, DEFAULT_HOME / "cache")
    tls, agent = plane.files.tls, plane.files.server / "agent" / name
    user, groups = kubelet.kubelet_identity(name)
    pki.issue(
        tls / "client-ca.crt",
        tls / "client-ca.key",
        agent / "client-kubelet.crt",
        agent / "client-kubelet.key",
        user,
        organizations=groups,
    )
    kubeconfig = agent / "kubelet.kubeconfig"
    kubeconfig.write_text(
        pki.kubeconfig(
            f"https://127.0.0.1:{plane.api_port}",
            tls / "server-ca.crt",
            agent / "client-kubelet.crt",
            agent / "client-kubelet.key",
        )
    )
    node = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
        "status": {
            "capacity": {"cpu": "4", "memory": "8Gi", "pods": "110"},
            "allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"},
            "addresses": [{"type": "InternalIP", "address": address}],
        },
    }
    made = kubectl(plane, "create", "-f", "-", stdin=json.dumps(node), kubeconfig=kubeconfig)
    assert made.returncode == 0, made.stderr
    config = kubelet.write_config(agent / "kwok.yaml", binaries / "assets", lease_duration_s=4)
    return subprocess.Popen(
        kubelet.kwok_command(binaries / "kwok", kubeconfig, config, name, address),
        stdout=subprocess.DEVNULL,
        stderr=(agent / "kwok.log").open("wb"),
    )


def own_address() -> str:
    """A non-loopback address of this machine (endpoints may not be loopback)."""
    shown = subprocess.run(
        ["ip", "-4", "-o", "addr", "show", "scope", "global"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    found = re.search(r"inet (\d+\.\d+\.\d+\.\d+)/", shown)
    assert found is not None, "this test needs a non-loopback IPv4 address"
    return found.group(1)
