"""The K3s stand-in's API, driven by the real kubectl and by plain HTTP."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from kubani.lab.k3s.apiserver import ApiServer
from kubani.lab.k3s.client import ApiError, Client
from kubani.lab.k3s.controllers import Controllers
from kubani.lab.k3s.store import Store
from tests.standin_api import StandInApi

KUBECTL = shutil.which("kubectl")


class Cluster(StandInApi):
    def __init__(self, tmp: Path) -> None:
        super().__init__(tmp, Store(tmp / "state.json"))
        self.client = Client(self.url)

    def kubectl(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        assert KUBECTL, "kubectl is part of this project's machine image"
        return subprocess.run(
            [KUBECTL, "--kubeconfig", str(self.kubeconfig), *args],
            capture_output=True,
            text=True,
            input=stdin,
            timeout=30,
            check=False,
        )

    def node(
        self,
        name: str,
        ready: bool = True,
        taints: list[dict[str, str]] | None = None,
        beat: datetime | None = None,
    ) -> None:
        stamp = (beat or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
        self.client.request(
            "POST",
            "/api/v1/nodes",
            {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
                "spec": {"taints": taints or []},
                "status": {
                    "conditions": [
                        {
                            "type": "Ready",
                            "status": "True" if ready else "False",
                            "lastHeartbeatTime": stamp,
                        }
                    ],
                    "addresses": [{"type": "InternalIP", "address": "100.64.0.9"}],
                },
            },
        )


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    instance = Cluster(tmp_path)
    yield instance
    instance.close()


def test_kubectl_reads_and_writes(cluster: Cluster) -> None:
    cluster.node("n1")
    table = cluster.kubectl("get", "nodes")
    assert table.returncode == 0, table.stderr
    assert table.stdout.split("\n")[1].split()[:2] == ["n1", "Ready"]
    assert cluster.kubectl("label", "node", "n1", "zone=attic").returncode == 0
    assert cluster.kubectl("taint", "node", "n1", "gpu=yes:NoSchedule").returncode == 0
    node = json.loads(cluster.kubectl("get", "node", "n1", "-o", "json").stdout)
    assert node["metadata"]["labels"]["zone"] == "attic"
    assert node["spec"]["taints"] == [{"effect": "NoSchedule", "key": "gpu", "value": "yes"}]
    manifest = (
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: default}\ndata: {k: v}\n"
    )
    assert cluster.kubectl("apply", "--validate=false", "-f", "-", stdin=manifest).returncode == 0
    changed = manifest.replace("k: v", "k: w")
    applied = cluster.kubectl(
        "apply", "--server-side", "--validate=false", "-f", "-", stdin=changed
    )
    assert applied.returncode == 0, applied.stderr
    assert cluster.kubectl("get", "cm", "c", "-o", "jsonpath={.data.k}").stdout == "w"
    missing = cluster.kubectl("get", "node", "nope")
    assert missing.returncode == 1 and 'nodes "nope" not found' in missing.stderr
    assert cluster.kubectl("create", "ns", "x").returncode == 0
    assert (
        cluster.kubectl("-n", "x", "create", "deployment", "web", "--image=nginx").returncode == 0
    )
    assert cluster.kubectl("delete", "ns", "x").returncode == 0
    assert json.loads(cluster.kubectl("get", "deploy", "-A", "-o", "json").stdout)["items"] == []


def test_lists_carry_kind_and_version_even_when_empty(cluster: Cluster) -> None:
    body = cluster.client.request("GET", "/api/v1/namespaces/default/pods")
    assert body["kind"] == "PodList" and body["apiVersion"] == "v1" and body["items"] == []
    assert int(body["metadata"]["resourceVersion"]) > 0


def test_selectors(cluster: Cluster) -> None:
    for name, tier in (("a", "web"), ("b", "db"), ("c", "web")):
        cluster.client.request(
            "POST",
            "/api/v1/namespaces/default/configmaps",
            {"metadata": {"name": name, "labels": {"tier": tier}}, "data": {}},
        )

    def names(query: str) -> list[str]:
        items = cluster.client.request("GET", f"/api/v1/namespaces/default/configmaps?{query}")[
            "items"
        ]
        return [i["metadata"]["name"] for i in items]

    assert names("labelSelector=tier%3Dweb") == ["a", "c"]
    assert names("labelSelector=tier%20in%20(db)") == ["b"]
    assert names("labelSelector=tier!%3Dweb") == ["b"]
    assert names("fieldSelector=metadata.name%3Db") == ["b"]


def _watch_lines(cluster: Cluster, query: str, count: int) -> list[dict[str, Any]]:
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", cluster.http.server_address[1], timeout=10)
    connection.request("GET", f"/api/v1/namespaces/default/configmaps?watch=1&{query}")
    response = connection.getresponse()
    events = []
    while len(events) < count:
        line = response.readline()
        if not line:
            break
        events.append(json.loads(line))
    connection.close()
    return events


def test_watch_resumes_and_expires(cluster: Cluster) -> None:
    created = cluster.client.request(
        "POST",
        "/api/v1/namespaces/default/configmaps",
        {"metadata": {"name": "w"}, "data": {"n": "0"}},
    )
    since = created["metadata"]["resourceVersion"]
    for value in ("1", "2"):
        cluster.client.request(
            "PATCH",
            "/api/v1/namespaces/default/configmaps/w",
            {"data": {"n": value}},
            "application/merge-patch+json",
        )
    events = _watch_lines(cluster, f"resourceVersion={since}", 2)
    assert [(e["type"], e["object"]["data"]["n"]) for e in events] == [
        ("MODIFIED", "1"),
        ("MODIFIED", "2"),
    ]
    assert events[0]["object"]["kind"] == "ConfigMap"
    initial = _watch_lines(cluster, "", 1)
    assert initial[0]["type"] == "ADDED"
    for i in range(2100):  # push the first revisions out of the kept history
        cluster.store.create(
            ("", "configmaps", "default", f"f{i}"), {"metadata": {"name": f"f{i}"}}
        )
    expired = _watch_lines(cluster, f"resourceVersion={since}", 1)
    assert expired[0]["type"] == "ERROR" and expired[0]["object"]["code"] == 410


def test_live_watch_sees_changes(cluster: Cluster) -> None:
    found: list[dict[str, Any]] = []
    reader = threading.Thread(
        target=lambda: found.extend(
            _watch_lines(cluster, f"resourceVersion={cluster.store.revision}", 1)
        )
    )
    reader.start()
    threading.Event().wait(0.3)
    cluster.client.request(
        "POST", "/api/v1/namespaces/default/configmaps", {"metadata": {"name": "live"}}
    )
    reader.join(timeout=10)
    assert (
        found and found[0]["type"] == "ADDED" and found[0]["object"]["metadata"]["name"] == "live"
    )


def test_patch_kinds(cluster: Cluster) -> None:
    cluster.client.request(
        "POST",
        "/apis/apps/v1/namespaces/default/deployments",
        {
            "metadata": {"name": "d"},
            "spec": {
                "replicas": 1,
                "template": {
                    "spec": {
                        "containers": [
                            {"name": "app", "image": "a:1", "ports": [{"containerPort": 80}]},
                            {"name": "side", "image": "s:1"},
                        ]
                    }
                },
            },
        },
    )
    path = "/apis/apps/v1/namespaces/default/deployments/d"
    strategic = cluster.client.request(
        "PATCH",
        path,
        {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "a:2"}]}}}},
        "application/strategic-merge-patch+json",
    )
    containers = strategic["spec"]["template"]["spec"]["containers"]
    assert [(c["name"], c["image"]) for c in containers] == [("app", "a:2"), ("side", "s:1")]
    assert containers[0]["ports"] == [{"containerPort": 80}]
    assert strategic["metadata"]["generation"] == 2
    merged = cluster.client.request(
        "PATCH",
        path,
        {"spec": {"template": {"spec": {"containers": [{"name": "only", "image": "o:1"}]}}}},
        "application/merge-patch+json",
    )
    assert [c["name"] for c in merged["spec"]["template"]["spec"]["containers"]] == ["only"]
    jsonpatch = cluster.client.request(
        "PATCH",
        path,
        [{"op": "replace", "path": "/spec/replicas", "value": 3}],
        "application/json-patch+json",
    )
    assert jsonpatch["spec"]["replicas"] == 3
    with pytest.raises(ApiError) as conflict:
        cluster.client.request(
            "PUT",
            path,
            {**jsonpatch, "metadata": {**jsonpatch["metadata"], "resourceVersion": "1"}},
        )
    assert conflict.value.status == 409


def test_status_subresource_keeps_spec(cluster: Cluster) -> None:
    cluster.node("n1")
    cluster.client.request(
        "PATCH",
        "/api/v1/nodes/n1/status",
        {"spec": {"unschedulable": True}, "status": {"phase": "x"}},
        "application/merge-patch+json",
    )
    node = cluster.client.request("GET", "/api/v1/nodes/n1")
    assert node["status"]["phase"] == "x" and not node["spec"].get("unschedulable")


def test_namespaced_create_needs_the_namespace(cluster: Cluster) -> None:
    with pytest.raises(ApiError) as missing:
        cluster.client.request(
            "POST", "/api/v1/namespaces/ghost/configmaps", {"metadata": {"name": "c"}}
        )
    assert missing.value.status == 404 and 'namespaces "ghost" not found' in str(missing.value)


def test_eviction_honours_disruption_budgets(cluster: Cluster) -> None:
    for name in ("p1", "p2"):
        cluster.client.request(
            "POST",
            "/api/v1/namespaces/default/pods",
            {
                "metadata": {"name": name, "labels": {"app": "db"}},
                "spec": {"containers": [{"name": "c", "image": "i"}]},
                "status": {"phase": "Running"},
            },
        )
    cluster.client.request(
        "POST",
        "/apis/policy/v1/namespaces/default/poddisruptionbudgets",
        {
            "metadata": {"name": "db"},
            "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "db"}}},
        },
    )
    eviction = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "p1"}}
    cluster.client.request("POST", "/api/v1/namespaces/default/pods/p1/eviction", eviction)
    with pytest.raises(ApiError) as blocked:
        cluster.client.request(
            "POST",
            "/api/v1/namespaces/default/pods/p2/eviction",
            {**eviction, "metadata": {"name": "p2"}},
        )
    assert blocked.value.status == 429


def test_custom_resources_appear_with_their_crd(cluster: Cluster) -> None:
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "gitrepositories.source.toolkit.fluxcd.io"},
        "spec": {
            "group": "source.toolkit.fluxcd.io",
            "scope": "Namespaced",
            "names": {
                "plural": "gitrepositories",
                "kind": "GitRepository",
                "shortNames": ["gitrepo"],
            },
            "versions": [
                {"name": "v1", "served": True, "storage": True, "subresources": {"status": {}}}
            ],
        },
    }
    cluster.client.request("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)
    groups = cluster.client.request("GET", "/apis")["groups"]
    assert "source.toolkit.fluxcd.io" in [g["name"] for g in groups]
    cluster.client.request(
        "POST",
        "/apis/source.toolkit.fluxcd.io/v1/namespaces/default/gitrepositories",
        {"metadata": {"name": "repo"}, "spec": {"url": "https://x/y"}},
    )
    listed = cluster.kubectl("get", "gitrepo", "-o", "json")
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout)["items"][0]["spec"]["url"] == "https://x/y"


def test_controllers(cluster: Cluster, tmp_path: Path) -> None:
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    (manifests / "app.yaml").write_text(
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: app}\n---\n"
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: app}\n"
        "spec:\n  replicas: 2\n  template:\n    metadata: {labels: {app: web}}\n"
        "    spec: {containers: [{name: web, image: nginx}]}\n"
    )
    cluster.node("fresh")
    cluster.node("tainted", taints=[{"key": "gpu", "value": "yes", "effect": "NoSchedule"}])
    cluster.node("stale", beat=datetime.now(UTC) - timedelta(seconds=120))
    controllers = Controllers(cluster.api, grace_s=40, manifests=manifests)
    controllers.tick()
    controllers.tick()
    pods = cluster.client.request("GET", "/api/v1/namespaces/app/pods")["items"]
    assert len(pods) == 2
    assert {p["spec"]["nodeName"] for p in pods} == {"fresh"}
    stale = cluster.client.request("GET", "/api/v1/nodes/stale")
    ready = next(c for c in stale["status"]["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "Unknown"  # its last heartbeat is older than the grace period
    assert cluster.client.request("GET", "/apis/k3s.cattle.io/v1/namespaces/kube-system/addons/app")
    (manifests / "app.yaml").write_text(
        (manifests / "app.yaml").read_text().replace("replicas: 2", "replicas: 1")
    )
    controllers.tick()
    assert len(cluster.client.request("GET", "/api/v1/namespaces/app/pods")["items"]) == 1


def test_nodes_turn_not_ready_after_the_grace_period(cluster: Cluster) -> None:
    cluster.node("quiet", beat=datetime.now(UTC) - timedelta(seconds=30))
    Controllers(cluster.api, grace_s=40).node_lifecycle()
    assert (
        cluster.client.request("GET", "/api/v1/nodes/quiet")["status"]["conditions"][0]["status"]
        == "True"
    )
    Controllers(cluster.api, grace_s=10).node_lifecycle()
    node = cluster.client.request("GET", "/api/v1/nodes/quiet")
    assert node["status"]["conditions"][0]["status"] == "Unknown"
    assert {"key": "node.kubernetes.io/unreachable", "effect": "NoSchedule"}.items() <= node[
        "spec"
    ]["taints"][0].items()


def test_store_survives_a_restart(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.json")
    ApiServer(store).handle(
        "POST",
        "/api/v1/namespaces/default/configmaps",
        {},
        json.dumps({"metadata": {"name": "kept"}}).encode(),
    )
    store.save()
    again = ApiServer(Store(tmp_path / "db.json"))
    assert again.handle("GET", "/api/v1/namespaces/default/configmaps/kept", {}, b"").status == 200
