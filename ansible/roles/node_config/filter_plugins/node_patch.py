"""kubani_node_patch: the JSON merge patch that makes a node carry the inventory's labels
and taints, or {} when it already does.

Kubani remembers which label keys and taints it manages (annotations on the node), so that
one removed from the inventory is removed from the node, while labels and taints set by
Kubernetes or by other tools are left alone.
"""

from __future__ import annotations

import json
from typing import Any

MANAGED_LABELS = "kubani.io/managed-labels"
MANAGED_TAINTS = "kubani.io/managed-taints"


def _taint(item: Any) -> dict[str, str]:
    if isinstance(item, dict):
        taint = {"key": str(item["key"]), "effect": str(item["effect"])}
        if item.get("value"):
            taint["value"] = str(item["value"])
        return taint
    body, _, effect = str(item).rpartition(":")
    key, _, value = body.partition("=")
    taint = {"key": key, "effect": effect}
    if value:
        taint["value"] = value
    return taint


def _identity(taint: dict[str, Any]) -> tuple[str, str]:
    return (str(taint.get("key")), str(taint.get("effect")))


def kubani_node_patch(
    node: dict[str, Any], labels: dict[str, Any], taints: list[Any]
) -> dict[str, Any]:
    meta = node.get("metadata") or {}
    current_labels = meta.get("labels") or {}
    annotations = meta.get("annotations") or {}
    wanted_labels = {
        str(k): str(v).lower() if isinstance(v, bool) else str(v) for k, v in labels.items()
    }
    previously = set(json.loads(annotations.get(MANAGED_LABELS) or "[]"))

    label_patch: dict[str, str | None] = {
        k: v for k, v in wanted_labels.items() if current_labels.get(k) != v
    }
    for stale in previously - set(wanted_labels):
        if stale in current_labels:
            label_patch[stale] = None

    wanted_taints = [_taint(t) for t in taints]
    wanted_ids = {_identity(t) for t in wanted_taints}
    previous_taints = {tuple(t) for t in json.loads(annotations.get(MANAGED_TAINTS) or "[]")}
    current_taints = (node.get("spec") or {}).get("taints") or []
    kept = [
        t
        for t in current_taints
        if _identity(t) not in wanted_ids and _identity(t) not in previous_taints
    ]
    new_taints = kept + wanted_taints

    def comparable(items: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
        return sorted(
            (str(t.get("key")), str(t.get("value", "")), str(t.get("effect"))) for t in items
        )

    patch: dict[str, Any] = {}
    if label_patch:
        patch.setdefault("metadata", {})["labels"] = label_patch
    if comparable(new_taints) != comparable(current_taints):
        patch["spec"] = {"taints": new_taints}
    managed = {
        MANAGED_LABELS: json.dumps(sorted(wanted_labels)),
        MANAGED_TAINTS: json.dumps(sorted(list(i) for i in wanted_ids)),
    }
    if any(annotations.get(k) != v for k, v in managed.items()):
        patch.setdefault("metadata", {})["annotations"] = managed
    return patch


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"kubani_node_patch": kubani_node_patch}
