"""The live view reads pods and events through shapes that keep only some fields: every
pane, count and detail must come out exactly as from the whole objects."""

from __future__ import annotations

import json
from typing import Any

import pytest

from kubani.cluster.live import FLUX_KINDS
from kubani.cluster.overview import overview
from kubani.cluster.shapes import SHAPES
from kubani.kube.decoding import WHOLE, page_decoder
from kubani.tui.panes import panes
from kubani.tui.state import LiveState
from tests.tui_fakes import FIXED_NOW, FakeSource, deployment, node, sample_cluster

MANAGED = [{"manager": "kubelet", "operation": "Update", "fieldsType": "FieldsV1",
            "fieldsV1": {"f:status": {"f:phase": {}}}}]  # fmt: skip


def _whole_pod(name: str, owner: str | None, node_name: str | None, phase: str,
               ready: bool, restarts: int = 0, gpu: int = 0) -> dict[str, Any]:  # fmt: skip
    """A pod as the API returns it: specs, probes, volumes, managed fields and all."""
    limits = {"cpu": "500m", **({"nvidia.com/gpu": str(gpu)} if gpu else {})}
    meta: dict[str, Any] = {
        "name": name, "namespace": "apps", "uid": f"uid-{name}", "resourceVersion": "7",
        "creationTimestamp": "2026-11-26T10:00:00Z", "labels": {"app": owner or name},
        "annotations": {"kubectl.kubernetes.io/restartedAt": "2026-11-26T09:00:00Z"},
        "managedFields": MANAGED,
    }  # fmt: skip
    if owner:
        meta["ownerReferences"] = [
            {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": f"{owner}-6c4f9",
             "uid": "rs", "controller": True, "blockOwnerDeletion": True}]  # fmt: skip
    return {
        "apiVersion": "v1", "kind": "Pod", "metadata": meta,
        "spec": {
            "nodeName": node_name, "serviceAccountName": "default",
            "volumes": [{"name": "data", "emptyDir": {}}],
            "containers": [{"name": "main", "image": "ghcr.io/x/app:1",
                            "resources": {"limits": limits},
                            "readinessProbe": {"httpGet": {"path": "/", "port": 80}},
                            "volumeMounts": [{"name": "data", "mountPath": "/data"}]}],
        },
        "status": {
            "phase": phase, "podIP": "10.42.0.9", "startTime": "2026-11-26T10:00:01Z",
            "conditions": [{"type": "Ready", "status": str(ready)}],
            "containerStatuses": [{"name": "main", "ready": ready, "restartCount": restarts,
                                   "image": "ghcr.io/x/app:1", "imageID": "sha256:abc",
                                   "state": {"running": {"startedAt": "2026-11-26T10:00:02Z"}},
                                   "lastState": {}, "started": ready}],
        },
    }  # fmt: skip


def _whole_event(
    name: str, kind: str, about: str, reason: str, *, new_style: bool
) -> dict[str, Any]:
    event: dict[str, Any] = {
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": name, "namespace": "apps", "resourceVersion": "9",
                     "creationTimestamp": "2026-11-26T11:55:00Z", "managedFields": MANAGED},
        "involvedObject": {"kind": "Pod", "namespace": "apps", "name": about, "uid": "u",
                           "apiVersion": "v1", "fieldPath": "spec.containers{main}"},
        "reason": reason, "message": f"{reason}   of  {about}", "type": kind,
        "source": {"component": "kubelet", "host": "nuc"}, "count": 3,
        "reportingComponent": "kubelet", "reportingInstance": "nuc",
    }  # fmt: skip
    if new_style:  # events.k8s.io writers: eventTime set, the old timestamps null
        event |= {"eventTime": "2026-11-26T11:58:30.123456Z", "firstTimestamp": None,
                  "lastTimestamp": None, "series": {"count": 2}}  # fmt: skip
    else:
        event |= {"eventTime": None, "firstTimestamp": "2026-11-26T11:50:00Z",
                  "lastTimestamp": "2026-11-26T11:57:00Z"}  # fmt: skip
    return event


PODS = [
    _whole_pod("web-6c4f9-aaaaa", "web", "nuc", "Running", True),
    _whole_pod("web-6c4f9-bbbbb", "web", "desk", "Running", False, restarts=4),
    _whole_pod("train-6c4f9-ccccc", "train", "gpu-box", "Running", True, gpu=2),
    _whole_pod("done-6c4f9-ddddd", "done", "gpu-box", "Succeeded", False, gpu=1),
    _whole_pod("loner", None, "nuc", "Running", True),
    _whole_pod("waiting", None, None, "Pending", False),
]
EVENTS = [
    _whole_event("a", "Warning", "web-6c4f9-bbbbb", "BackOff", new_style=False),
    _whole_event("b", "Normal", "train-6c4f9-ccccc", "Pulled", new_style=True),
    _whole_event("c", "Normal", "loner", "Started", new_style=False),
]


def _state(kinds: dict[str, list[dict[str, Any]]], shaped: bool) -> LiveState:
    state = LiveState(FakeSource({}), 5.0, lambda: FIXED_NOW)
    for kind, objects in kinds.items():
        body = json.dumps({"metadata": {"resourceVersion": "10"}, "items": objects}).encode()
        decoded = page_decoder(SHAPES.get(kind, WHOLE) if shaped else WHOLE).decode(body)
        state.cache.replace(kind, decoded.items or [], "10")
    return state


def _everything(state: LiveState) -> Any:
    cache = state.cache
    return (
        {name: pane.all_rows() for name, pane in panes(state).items()},
        overview(cache, FLUX_KINDS, FIXED_NOW),
        {n: [(p["metadata"]["namespace"], p["metadata"]["name"], p["status"].get("phase"),
              p["metadata"].get("creationTimestamp")) for p in cache.pods_on(n)]
         for n in ("nuc", "desk", "gpu-box")},
        {n: cache.gpu_allocated(n) for n in ("nuc", "desk", "gpu-box")},
        {k: (c.total, c.ready, c.restarts, sorted(c.pods)) for k, c in cache.workloads.items()},
    )  # fmt: skip


def test_every_view_reads_the_same_from_shaped_pods_and_events() -> None:
    kinds = {
        "nodes": sample_cluster()["nodes"] + [node("spare", "100.64.0.14")],
        "deployments": [deployment("apps", "web", 2), deployment("apps", "train", 1)],
        "pods": PODS,
        "events": EVENTS,
    }
    whole, shaped = _everything(_state(kinds, False)), _everything(_state(kinds, True))
    assert shaped == whole
    rows = whole[0]["workloads"]
    assert rows["Deployment:apps/web"].cells[3:5] == ("1/2", "4")  # the data is really read
    assert whole[3]["gpu-box"] == 2


@pytest.mark.parametrize("kind", sorted(SHAPES))
def test_a_shape_drops_what_no_view_reads(kind: str) -> None:
    objects = {"pods": PODS, "events": EVENTS}[kind]
    body = json.dumps({"items": objects}).encode()
    [first, *_] = page_decoder(SHAPES[kind]).decode(body).items or []
    assert "managedFields" not in first["metadata"]
    assert len(json.dumps(first)) < len(json.dumps(objects[0])) * 0.6
