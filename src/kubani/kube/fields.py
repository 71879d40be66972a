"""Reading fields of Kubernetes objects as the API sent them (dicts from JSON): a field that
is absent, null or of another type than the schema says reads as empty, so one odd object
(an old or a foreign server, a proxy's error page decoded as an object) shows as blank
cells instead of stopping the view that lists it."""

from __future__ import annotations

from typing import Any


def mapping(value: object) -> dict[str, Any]:
    """``value`` when it is an object, else an empty one."""
    return value if isinstance(value, dict) else {}


def at(obj: object, *keys: str) -> dict[str, Any]:
    """The object at ``keys`` under ``obj`` (``at(node, "status", "nodeInfo")``)."""
    found = mapping(obj)
    for key in keys:
        found = mapping(found.get(key))
    return found


def entries(value: object) -> list[dict[str, Any]]:
    """The objects of a list (conditions, containers, taints); anything else is left out."""
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def text(value: object, default: str = "") -> str:
    """A string field; numbers and booleans as JSON writes them, other things as absent."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return default


def optional_text(value: object) -> str | None:
    """A string field that may be absent (None), as ``text`` reads it."""
    shown = text(value)
    return shown if shown or isinstance(value, str) else None


def count(value: object) -> int:
    """A whole-number field (replicas, restartCount); what is not one counts as 0."""
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        return int(value)  # isdigit alone takes "²", which int() does not
    return 0
