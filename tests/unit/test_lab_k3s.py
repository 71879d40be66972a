"""Pieces of the K3s stand-in's glue that need no cluster: image references, the kubelet's
label rule and its hand-over of the node's lease, the local-path provisioner's volumes, the
payload's paths."""

from __future__ import annotations

import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest

from kubani_lab.k3s.agent import Agent, forbidden_labels
from kubani_lab.k3s.client import ApiError
from kubani_lab.k3s.payload import unpack
from kubani_lab.k3s.podruntime import program_for
from kubani_lab.k3s.storage import PROVISIONED_BY, local_volume


@pytest.mark.parametrize(
    ("image", "program"),
    [
        ("ghcr.io/fluxcd/source-controller:v1.9.6", "source-controller"),
        ("ghcr.io/fluxcd/kustomize-controller@sha256:" + "a" * 64, "kustomize-controller"),
        ("ghcr.io/fluxcd/kustomize-controller:v1.9.6@sha256:" + "b" * 64, "kustomize-controller"),
        ("ghcr.io/fluxcd/source-controller", "source-controller"),
        ("ghcr.io/fluxcd/helm-controller:v1.4.0", None),
        ("registry.lab:5000/fluxcd/source-controller:v1", None),
        ("nginx:1.27", None),
        ("", None),
    ],
)
def test_only_the_carried_images_have_a_program(image: str, program: str | None) -> None:
    assert program_for(image) == program


def test_a_kubelet_refuses_labels_in_the_kubernetes_namespaces_it_does_not_own() -> None:
    labels = {
        "kubernetes.io/hostname": "n",
        "node.kubernetes.io/instance-type": "k3s",
        "kubelet.kubernetes.io/x": "y",
        "topology.kubernetes.io/zone": "z",
        "node-role.kubernetes.io/worker": "true",
        "team.k8s.io/owner": "me",
        "kubani.io/tier": "edge",
        "plain": "yes",
    }
    assert forbidden_labels(labels) == ["node-role.kubernetes.io/worker", "team.k8s.io/owner"]


def test_a_claim_gets_a_volume_on_the_node_the_scheduler_chose() -> None:
    claim = {
        "metadata": {"name": "data-redis-0", "namespace": "two-tier", "uid": "u-1"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "2Gi"}}},
    }
    klass = {"metadata": {"name": "local-hdd"}, "reclaimPolicy": "Retain"}
    volume = local_volume(claim, klass, "w-1", folder="/srv/k3s")
    spec = volume["spec"]
    assert volume["metadata"]["name"] == "pvc-u-1"
    assert volume["metadata"]["annotations"][PROVISIONED_BY] == "rancher.io/local-path"
    assert spec["capacity"] == {"storage": "2Gi"}
    assert spec["persistentVolumeReclaimPolicy"] == "Retain"
    assert spec["claimRef"]["uid"] == "u-1"
    assert spec["hostPath"]["path"] == "/srv/k3s/pvc-u-1_two-tier_data-redis-0"
    term = spec["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"][0]
    assert term == {"key": "kubernetes.io/hostname", "operator": "In", "values": ["w-1"]}


def test_a_payload_path_outside_its_folder_is_refused(tmp_path: Path) -> None:
    archive = tmp_path / "k3s"
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("payload/bin/kwok", "#!/bin/sh\n")
        bundle.writestr("payload/../../escape", "x")
    with pytest.raises(ValueError, match="outside the payload"):
        unpack(archive, tmp_path / "data")
    assert not (tmp_path / "escape").exists()


class _LeaseApi:
    """The API as the agent's client sees it: records calls, fails as told."""

    def __init__(self, failure: Exception | None = None) -> None:
        self.failure = failure
        self.calls: list[tuple[str, str]] = []

    def request(self, method: str, path: str, *_: object, **__: object) -> object:
        self.calls.append((method, path))
        if self.failure is not None:
            raise self.failure
        return {"status": "Success"}


def _hand_over(api: _LeaseApi) -> None:
    agent = SimpleNamespace(node_name="gpu-1", client=lambda: api)
    Agent._hand_over_lease(agent)


def test_a_starting_kubelet_removes_the_node_lease_its_last_run_held(
    capsys: pytest.CaptureFixture[str],
) -> None:
    api = _LeaseApi()
    _hand_over(api)
    assert api.calls == [
        ("DELETE", "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/gpu-1")
    ]
    assert capsys.readouterr().out == ""


def test_a_first_start_finds_no_lease_and_says_nothing(
    capsys: pytest.CaptureFixture[str],
) -> None:
    _hand_over(_LeaseApi(ApiError(404, 'leases "gpu-1" not found')))
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize(
    "failure", [ApiError(403, "forbidden"), ConnectionRefusedError("connection refused")]
)
def test_a_lease_that_cannot_be_removed_is_said_and_the_start_goes_on(
    failure: Exception, capsys: pytest.CaptureFixture[str]
) -> None:
    _hand_over(_LeaseApi(failure))
    out = capsys.readouterr().out
    assert "level=warning" in out
    assert "lease stays with its last holder" in out
