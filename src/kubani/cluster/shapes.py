"""The fields the live view reads of the two collections that grow with the cluster (pods
and events): decoding keeps these and skips the rest (managed fields, full specs, probes,
volumes). Every leaf may be null or absent, as the API allows; a reader that needs another
field adds it here (``tests/unit/test_shapes.py`` reads the views through these shapes)."""

from __future__ import annotations

from typing import Any, TypedDict


class OwnerReference(TypedDict, total=False):
    kind: Any
    name: Any
    controller: Any


class ObjectMeta(TypedDict, total=False):
    name: Any
    namespace: Any
    uid: Any
    resourceVersion: Any
    creationTimestamp: Any
    deletionTimestamp: Any
    labels: Any
    ownerReferences: list[OwnerReference] | None


class Container(TypedDict, total=False):
    name: Any
    image: Any
    resources: Any


class PodSpec(TypedDict, total=False):
    nodeName: Any
    containers: list[Container] | None


class ContainerStatus(TypedDict, total=False):
    name: Any
    ready: Any
    restartCount: Any
    state: Any


class PodStatus(TypedDict, total=False):
    phase: Any
    reason: Any
    podIP: Any
    startTime: Any
    containerStatuses: list[ContainerStatus] | None


class Pod(TypedDict, total=False):
    metadata: ObjectMeta
    spec: PodSpec
    status: PodStatus


class InvolvedObject(TypedDict, total=False):
    kind: Any
    name: Any
    namespace: Any


class Event(TypedDict, total=False):
    metadata: ObjectMeta
    type: Any
    reason: Any
    message: Any
    count: Any
    involvedObject: InvolvedObject
    firstTimestamp: Any
    lastTimestamp: Any
    eventTime: Any


# Collection (as the live view names it) -> the shape it is read in.
SHAPES: dict[str, Any] = {"pods": Pod, "events": Event}
