"""The real Kubernetes control plane the K3s stand-in runs, started on a throwaway datastore
(kine on SQLite) from the pinned build, with a node kept by the real KWOK.

These need no nodes or root: the programs run on this machine's loopback.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kubani_lab.components import KUBERNETES, ensure_built, modules_root
from kubani_lab.k3s import deploy, metrics, pki
from kubani_lab.k3s.client import Client
from kubani_lab.k3s.control import (
    ControlPlane,
    ControlPlaneFiles,
    Etcd,
    EtcdMember,
    add_etcd_member,
    ensure_etcd_pki,
    ensure_pki,
    restore_snapshot,
    save_snapshot,
)
from kubani_lab.k3s.supervisor import Reply, Request, Supervisor
from kubani_lab.lab import DEFAULT_HOME
from tests.lab.components_fixtures import (
    advertised,
    control_plane,
    free_port,
    get,
    kubectl,
    node_ready,
    own_address,
    start_kwok,
    wait_for,
)

pytestmark = pytest.mark.components

__all__ = ["control_plane"]  # the module's control plane fixture

NODE = "kwok-1"
NODE_IP = "127.0.0.11"


def test_the_server_reports_the_pinned_build_as_k3s_does(control_plane: ControlPlane) -> None:
    go_mod = (modules_root() / KUBERNETES.name / "go.mod").read_text()
    pinned = re.search(r"^\s*k8s.io/kubernetes (v\S+)", go_mod, re.M)
    assert pinned is not None
    done = kubectl(control_plane, "version", "-o", "json")
    assert done.returncode == 0, done.stderr
    versions = json.loads(done.stdout)
    assert versions["serverVersion"]["gitVersion"] == f"{pinned.group(1)}+k3s1"
    assert versions["clientVersion"]["gitVersion"] == f"{pinned.group(1)}+k3s1"


DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: default}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: "registry.lab.kubani.test/web:1"%s}]
"""


def test_apply_validates_against_the_servers_openapi(control_plane: ControlPlane) -> None:
    wrong = kubectl(control_plane, "apply", "-f", "-", stdin=DEPLOYMENT % ", portz: [80]")
    assert wrong.returncode != 0
    assert 'unknown field "spec.template.spec.containers[0].portz"' in wrong.stderr
    assert kubectl(control_plane, "get", "deployment", "web").returncode != 0  # nothing made
    done = kubectl(control_plane, "apply", "-f", "-", stdin=DEPLOYMENT % "")
    assert done.returncode == 0, done.stderr
    assert "deployment.apps/web created" in done.stdout


@pytest.fixture(scope="module")
def kwok_node(control_plane: ControlPlane) -> Iterator[subprocess.Popen[bytes]]:
    """A node kept by KWOK for the whole module."""
    process = start_kwok(control_plane, NODE, NODE_IP)
    try:
        yield process
    finally:
        process.terminate()
        process.wait(10)


def test_a_kwok_node_goes_ready_and_runs_the_scheduled_pod(
    control_plane: ControlPlane, kwok_node: subprocess.Popen[bytes]
) -> None:
    wait_for("the node to be Ready", lambda: node_ready(get(control_plane, "node", NODE)) == "True")

    def running() -> bool:
        pods = get(control_plane, "pods", "-l", "app=web")["items"]
        return bool(pods) and all(
            p["spec"].get("nodeName") == NODE and p["status"].get("phase") == "Running"
            for p in pods
        )

    wait_for("the deployment's pod to run on the node", running)


def test_a_disruption_budget_blocks_the_real_eviction_api(
    control_plane: ControlPlane, kwok_node: subprocess.Popen[bytes]
) -> None:
    budget = (
        "apiVersion: policy/v1\nkind: PodDisruptionBudget\n"
        "metadata: {name: web, namespace: default}\n"
        "spec: {minAvailable: 1, selector: {matchLabels: {app: web}}}\n"
    )
    assert kubectl(control_plane, "apply", "-f", "-", stdin=budget).returncode == 0
    wait_for(
        "the budget to count the pod",
        lambda: (get(control_plane, "pdb", "web").get("status") or {}).get("currentHealthy") == 1,
    )
    drained = kubectl(control_plane, "drain", NODE, "--ignore-daemonsets", "--timeout=6s")
    assert drained.returncode != 0
    assert "violate the pod's disruption budget" in drained.stderr
    assert get(control_plane, "node", NODE)["spec"].get("unschedulable") is True
    assert kubectl(control_plane, "uncordon", NODE).returncode == 0


def test_a_stopped_kubelet_makes_the_node_not_ready(control_plane: ControlPlane) -> None:
    name = "kwok-2"  # its own node: the module's stays Ready for the tests after this one
    process = start_kwok(control_plane, name, "127.0.0.12")
    try:
        wait_for(
            "the node to be Ready", lambda: node_ready(get(control_plane, "node", name)) == "True"
        )
    finally:
        process.terminate()
        process.wait(10)
    # The node lifecycle controller (grace period 12 s) notices the lease is not renewed.
    wait_for(
        "the node to be NotReady",
        lambda: node_ready(get(control_plane, "node", name)) == "Unknown",
        timeout=60,
    )
    taints = get(control_plane, "node", name)["spec"].get("taints") or []
    assert {"key": "node.kubernetes.io/unreachable", "effect": "NoSchedule"} in [
        {"key": t["key"], "effect": t["effect"]} for t in taints
    ]


@pytest.fixture(scope="module")
def supervisor(control_plane: ControlPlane) -> Iterator[tuple[Supervisor, Path]]:
    """K3s's 6443 in front of the API: its own routes here, the rest relayed."""
    tls = control_plane.files.tls

    def route(request: Request) -> Reply | None:
        if request.path == "/cacerts":
            return Reply(200, (tls / "server-ca.crt").read_bytes(), "text/plain")
        if request.path == "/ping":
            return Reply(200, b"pong", "text/plain")
        return None

    port = free_port()
    front = Supervisor(("127.0.0.1", port), tls, control_plane.api_port, route)
    front.start()
    kubeconfig = control_plane.files.cred / "via-supervisor.kubeconfig"
    kubeconfig.write_text(
        control_plane.files.kubeconfig("admin")
        .read_text()
        .replace(f":{control_plane.api_port}", f":{port}")
    )
    try:
        yield front, kubeconfig
    finally:
        front.stop()


def test_the_supervisor_answers_its_own_paths(supervisor: tuple[Supervisor, Path]) -> None:
    front, _ = supervisor
    client = Client(f"https://127.0.0.1:{front.address[1]}")
    assert client.request("GET", "/ping", raw=True) == b"pong"
    assert b"BEGIN CERTIFICATE" in client.request("GET", "/cacerts", raw=True)


def test_the_supervisor_relays_with_the_callers_identity(
    control_plane: ControlPlane, supervisor: tuple[Supervisor, Path]
) -> None:
    _, kubeconfig = supervisor
    who = kubectl(control_plane, "auth", "whoami", "-o", "json", kubeconfig=kubeconfig)
    assert who.returncode == 0, who.stderr
    user = json.loads(who.stdout)["status"]["userInfo"]
    assert user["username"] == "system:admin"
    assert "system:masters" in user["groups"]
    # A bearer token reaches the API server untouched.
    made = kubectl(control_plane, "create", "serviceaccount", "reader")
    assert made.returncode == 0, made.stderr
    token = kubectl(control_plane, "create", "token", "reader").stdout.strip()
    anonymous = control_plane.files.cred / "token.kubeconfig"
    text = kubeconfig.read_text()
    anonymous.write_text(
        text[: text.index("    client-certificate-data")] + f"    token: {token}\n"
    )
    who = kubectl(control_plane, "auth", "whoami", "-o", "json", kubeconfig=anonymous)
    assert who.returncode == 0, who.stderr
    assert json.loads(who.stdout)["status"]["userInfo"]["username"] == (
        "system:serviceaccount:default:reader"
    )
    denied = kubectl(control_plane, "get", "secrets", kubeconfig=anonymous)
    assert denied.returncode != 0
    assert "forbidden" in denied.stderr


# What a server joining with --server receives from the first one (K3s's bootstrap data).
SHARED = (
    "server-ca.crt", "server-ca.key", "client-ca.crt", "client-ca.key",
    "request-header-ca.crt", "request-header-ca.key", "service.key",
    "etcd/server-ca.crt", "etcd/server-ca.key", "etcd/peer-ca.crt", "etcd/peer-ca.key",
)  # fmt: skip


def test_an_etcd_cluster_of_three_servers_survives_the_loss_of_the_first(
    tmp_path: Path,
) -> None:
    binaries, _ = ensure_built(KUBERNETES, DEFAULT_HOME / "cache")
    members = [
        EtcdMember(f"cp-{index}", "127.0.0.1", free_port(), free_port()) for index in (1, 2, 3)
    ]
    planes: list[ControlPlane] = []

    def server(index: int, etcd: Etcd) -> ControlPlane:
        files = ControlPlaneFiles(tmp_path / f"cp-{index}")
        port = free_port()
        ensure_pki(files, ["127.0.0.1"], api_port=port)
        plane = ControlPlane(
            binaries / "kube-components",
            files,
            advertise_address=advertised(index),
            api_port=port,
            component_ports=(free_port(), free_port()),
            etcd=etcd,
            leader_elect=True,
            controllers=index == 1,
        )
        planes.append(plane)
        plane.start()
        return plane

    try:
        first = server(1, Etcd(members[0], (members[0],), "new", metrics_port=free_port()))
        for index in (2, 3):
            files = ControlPlaneFiles(tmp_path / f"cp-{index}")
            for name in SHARED:
                (files.tls / name).parent.mkdir(parents=True, exist_ok=True)
                (files.tls / name).write_bytes((first.files.tls / name).read_bytes())
            ensure_etcd_pki(files, members[index - 1])
            cluster = add_etcd_member(first.files, members[0], members[index - 1])
            assert {m.name for m in cluster} == {m.name for m in members[:index]}
            server(index, Etcd(members[index - 1], cluster, "existing", free_port()))
        second, third = planes[1], planes[2]
        made = kubectl(second, "create", "configmap", "before", "--from-literal=a=1")
        assert made.returncode == 0, made.stderr
        first.stop()
        # Two of three members keep the quorum: the API goes on through the others.
        made = kubectl(second, "create", "configmap", "after", "--from-literal=b=2")
        assert made.returncode == 0, made.stderr
        listed = kubectl(third, "get", "configmap", "before", "after", "-o", "name")
        assert listed.returncode == 0, listed.stderr
        assert listed.stdout.split() == ["configmap/before", "configmap/after"]
    finally:
        for plane in planes:
            plane.stop()


def test_an_etcd_snapshot_restores_the_cluster_as_it_was(tmp_path: Path) -> None:
    binaries, _ = ensure_built(KUBERNETES, DEFAULT_HOME / "cache")
    member = EtcdMember("cp-1", "127.0.0.1", free_port(), free_port())
    files = ControlPlaneFiles(tmp_path / "server")
    port = free_port()
    ensure_pki(files, ["127.0.0.1"], api_port=port)

    def start() -> ControlPlane:
        plane = ControlPlane(
            binaries / "kube-components",
            files,
            advertise_address=advertised(),
            api_port=port,
            component_ports=(free_port(), free_port()),
            etcd=Etcd(member, (member,), "new", metrics_port=free_port()),
            controllers=False,
        )
        plane.start()
        return plane

    plane = start()
    try:
        assert kubectl(plane, "create", "configmap", "kept").returncode == 0
        snapshot = files.db / "snapshots" / "on-demand-cp-1"
        assert save_snapshot(files, member, snapshot) > 0
        assert snapshot.stat().st_mode & 0o777 == 0o600
        assert kubectl(plane, "create", "configmap", "later").returncode == 0
    finally:
        plane.stop()
    kept = restore_snapshot(binaries / "kube-components", files, member, snapshot)
    assert kept.is_dir()  # the data it replaced stays aside
    plane = start()
    try:
        assert kubectl(plane, "get", "configmap", "kept").returncode == 0
        gone = kubectl(plane, "get", "configmap", "later")
        assert gone.returncode != 0
        assert "NotFound" in gone.stderr
    finally:
        plane.stop()


def test_metrics_are_served_through_the_real_aggregator(
    control_plane: ControlPlane, kwok_node: subprocess.Popen[bytes]
) -> None:
    wait_for("the node to be Ready", lambda: node_ready(get(control_plane, "node", NODE)) == "True")
    tls, address = control_plane.files.tls, own_address()
    pki.issue(tls / "server-ca.crt", tls / "server-ca.key", tls / "metrics.crt",
              tls / "metrics.key", "metrics-server",
              sans=[address, "metrics-server.kube-system.svc"], server=True)  # fmt: skip
    admin = control_plane.admin_client()

    def summary(node: dict[str, Any]) -> dict[str, Any]:
        # What the node's kubelet endpoint reports (a stand-in's figures for this test).
        return {"node": {"cpu": {"usageNanoCores": 250_000_000},
                         "memory": {"workingSetBytes": 512 * 1024 * 1024}}}  # fmt: skip

    source = metrics.MetricsSource(lambda path: admin.request("GET", path)["items"], summary)
    server = metrics.MetricsServer(
        (address, 0),
        source,
        tls / "metrics.crt",
        tls / "metrics.key",
        tls / "request-header-ca.crt",
    )
    server.serve_in_thread()
    try:
        port = server.server_address[1]
        for path, body in metrics.registration(address, port, (tls / "server-ca.crt").read_bytes()):
            admin.request("POST", path, body)

        def served() -> bool:
            done = kubectl(control_plane, "top", "node", NODE, "--no-headers")
            return done.returncode == 0 and done.stdout.split()[1:3] == ["250m", "6%"]

        wait_for("kubectl top to show the node's figures", served)
        raw = kubectl(control_plane, "get", "--raw", "/apis/metrics.k8s.io/v1beta1/nodes")
        assert json.loads(raw.stdout)["items"][0]["usage"]["memory"] == "524288Ki"
        # Only the aggregator may call it: no front-proxy certificate, no answer.
        with pytest.raises(OSError):
            Client(f"https://{address}:{port}").request("GET", "/apis/metrics.k8s.io/v1beta1")
    finally:
        server.shutdown()


def test_the_deploy_controller_applies_the_manifests_folder(
    control_plane: ControlPlane, tmp_path: Path
) -> None:
    folder = tmp_path / "manifests"
    folder.mkdir()
    crd_and_object = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.lab.kubani.dev}
spec:
  group: lab.kubani.dev
  names: {kind: Widget, plural: widgets, singular: widget}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
---
apiVersion: lab.kubani.dev/v1
kind: Widget
metadata: {name: first, namespace: default}
"""
    (folder / "widgets.yaml").write_text(crd_and_object)
    (folder / "settings.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings, namespace: default}\n"
        "data: {level: '1'}\n"
    )
    (folder / "off.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: off, namespace: default}\n"
    )
    (folder / "off.skip").write_text("")
    controller = deploy.DeployController(
        folder,
        control_plane.admin_client(),
        lambda args: kubectl(control_plane, *args),
    )

    # The custom resource waits for its CRD to be served; the controller tries again.
    def applied() -> bool:
        controller.tick()
        return not controller.failures and len(controller.applied) == 2

    wait_for("every manifest to be applied", applied)
    assert get(control_plane, "widget", "first")["metadata"]["name"] == "first"
    assert get(control_plane, "configmap", "settings")["data"] == {"level": "1"}
    assert kubectl(control_plane, "get", "configmap", "off").returncode != 0
    addon = get(control_plane, "addons.k3s.cattle.io", "-n", "kube-system", "settings")
    assert addon["spec"]["source"] == str(folder / "settings.yaml")
    # A changed file is applied again.
    (folder / "settings.yaml").write_text(
        (folder / "settings.yaml").read_text().replace("'1'", "'2'")
    )
    controller.tick()
    assert get(control_plane, "configmap", "settings")["data"] == {"level": "2"}
    checksum = get(control_plane, "addons.k3s.cattle.io", "-n", "kube-system", "settings")
    assert checksum["spec"]["checksum"] == controller.applied["settings.yaml"]
