"""The fields the live view reads of the two collections that grow with the cluster (pods
and events): decoding keeps these and skips the rest (managed fields, full specs, probes,
volumes). Every leaf may be null or absent, as the API allows; a reader that needs another
field adds it here (``tests/unit/test_shapes.py`` reads the views through these shapes)."""

from __future__ import annotations

from typing import Any, TypedDict, cast


def _shape(name: str, *leaves: str, **nested: Any) -> Any:
    """An object of which only these fields are kept: ``leaves`` as they come, ``nested``
    objects (or lists of them) in their own shape."""
    fields = dict.fromkeys(leaves, Any) | nested
    return cast(Any, TypedDict)(name, fields, total=False)


def _list_of(shape: Any) -> Any:
    """A list of ``shape`` objects, or null."""
    return cast(Any, list)[shape] | None


OBJECT_META = _shape(
    "ObjectMeta",
    "name", "namespace", "uid", "resourceVersion", "creationTimestamp", "deletionTimestamp",
    "labels",
    ownerReferences=_list_of(_shape("OwnerReference", "kind", "name", "controller")),
)  # fmt: skip
POD = _shape(
    "Pod",
    metadata=OBJECT_META,
    spec=_shape(
        "PodSpec",
        "nodeName",
        containers=_list_of(_shape("Container", "name", "image", "resources")),
    ),
    status=_shape(
        "PodStatus",
        "phase", "reason", "podIP", "startTime",
        containerStatuses=_list_of(
            _shape("ContainerStatus", "name", "ready", "restartCount", "state")
        ),
    ),
)  # fmt: skip
EVENT = _shape(
    "Event",
    "type", "reason", "message", "count", "firstTimestamp", "lastTimestamp", "eventTime",
    metadata=OBJECT_META,
    involvedObject=_shape("InvolvedObject", "kind", "name", "namespace"),
)  # fmt: skip

# Collection (as the live view names it) -> the shape it is read in.
SHAPES: dict[str, Any] = {"pods": POD, "events": EVENT}
