"""Reading the Kubernetes API's replies in playbooks (``ansible.builtin.uri`` results)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def _ready(node: Any) -> bool:
    status = node.get("status") if isinstance(node, Mapping) else None
    conditions = status.get("conditions") if isinstance(status, Mapping) else None
    for condition in conditions if isinstance(conditions, list) else []:
        if isinstance(condition, Mapping) and condition.get("type") == "Ready":
            return condition.get("status") == "True"
    return False


def kubani_ready_nodes(reply: Any) -> list[str]:
    """The names of the Nodes a ``GET /api/v1/nodes`` reply reports Ready; none when the
    call was skipped, failed or did not answer 200 with a list."""
    if not isinstance(reply, Mapping) or reply.get("status") != 200:
        return []
    body = reply.get("json")
    items = body.get("items") if isinstance(body, Mapping) else None
    names: list[str] = []
    for node in items if isinstance(items, list) else []:
        metadata = node.get("metadata") if isinstance(node, Mapping) else None
        name = metadata.get("name") if isinstance(metadata, Mapping) else None
        if isinstance(name, str) and _ready(node):
            names.append(name)
    return names


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"kubani_ready_nodes": kubani_ready_nodes}
