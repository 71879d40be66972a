"""Objects whose fields are not of the types the API schema gives (a foreign server, a
proxy's reply decoded as an object): the views show blanks for them, and the rest as usual."""

from __future__ import annotations

from typing import Any

import pytest

from kubani.cluster.cache import WorkloadCounts
from kubani.cluster.rows import disk_percent, event_row, flux_row, node_row, workload_row
from kubani.cluster.status import flux_object, gpu_requests, pod_status
from kubani.kube.fields import count, optional_text, text
from kubani.kube.summary import summarise
from kubani.models.addresses import address_text

ODD = [None, 5, 1.5, True, "text", [], [1, "a"], {"x": 1}]


@pytest.mark.parametrize("odd", ODD)
def test_a_node_with_odd_fields_is_summarised(odd: Any) -> None:
    node = {
        "metadata": {"name": "n1", "labels": odd, "annotations": odd},
        "spec": {"taints": odd, "unschedulable": odd},
        "status": {
            "conditions": [odd, {"type": "Ready", "status": odd}],
            "allocatable": {"cpu": odd, "memory": "1e400"},
            "capacity": odd,
            "addresses": [odd, {"type": "InternalIP", "address": odd}],
            "nodeInfo": odd,
        },
    }
    summary = summarise(node, {"cpu": odd, "memory": odd})
    assert summary.name == "n1"
    assert summary.memory_allocatable is None  # not a finite quantity
    assert not summary.taints
    row = node_row(
        node, None, True, {"node": {"fs": {"usedBytes": odd, "capacityBytes": 0}}}, [], 0
    )
    assert row.cells[0] == "n1"


@pytest.mark.parametrize("odd", ODD)
def test_whole_objects_of_another_type_read_as_empty(odd: Any) -> None:
    for obj in ({"metadata": odd, "spec": odd, "status": odd}, {"status": {"conditions": odd}}):
        assert flux_object("Kustomization", obj).ready == "Unknown"
        assert flux_row("GitRepository", obj).cells[1] == "/"
        assert pod_status(obj).status == "Unknown"
        assert gpu_requests([obj]) == {}
        assert event_row(obj).cells[1] == "Normal"
    assert disk_percent(odd) is None
    assert summarise({"metadata": odd}).name == ""


def test_fields_of_the_right_type_read_as_before() -> None:
    limits = {"resources": {"limits": {"nvidia.com/gpu": "2"}}}
    pod = {
        "metadata": {"name": "p", "namespace": "ns"},
        "spec": {"nodeName": "gpu-1", "containers": [limits]},
        "status": {"phase": "Running", "containerStatuses": [{"ready": True, "restartCount": 3}]},
    }
    status = pod_status(pod)
    assert (status.ready, status.restarts, status.node, status.status) == (
        "1/1",
        3,
        "gpu-1",
        "Running",
    )
    assert gpu_requests([pod]) == {"gpu-1": 2}
    flux = {
        "metadata": {"name": "apps", "namespace": "flux-system", "generation": 2},
        "status": {
            "observedGeneration": 2,
            "lastAppliedRevision": "main@sha1:0123456789ab",
            "conditions": [
                {"type": "Ready", "status": "True", "reason": "ReconciliationSucceeded"}
            ],
        },
    }
    assert flux_row("Kustomization", flux).cells[4] == "main@01234567"
    deployment = {"spec": {"replicas": 3}, "status": {"readyReplicas": 2}}
    row = workload_row("Deployment", "ns/web", WorkloadCounts(), deployment, pods_listed=False)
    assert row.cells[3] == "2/3"
    assert row.cells[5] == "Degraded"


def test_field_readers() -> None:
    assert [text(v) for v in ("a", 1, 2.5, True, None, [], {})] == [
        "a",
        "1",
        "2.5",
        "true",
        "",
        "",
        "",
    ]
    assert [optional_text(v) for v in ("", "a", None, [], 3)] == ["", "a", None, None, "3"]
    assert [
        count(v) for v in (3, 3.0, "4", " 5 ", True, 2.5, "x", None, [1], "\u00b2", "\uff13")
    ] == [
        3,
        3,
        4,
        5,
        0,
        0,
        0,
        0,
        0,
        0,  # "²" is a digit to str.isdigit, not to int()
        0,  # other scripts' digits are not the API's
    ]
    assert address_text("100.64.0.1/\u00b2") is None
    assert address_text("100.64.0.1/32") == "100.64.0.1"
