"""kubani_taint_text: a node taint in K3s's ``node-taint`` form (``key[=value]:Effect``),
from the string form or the mapping form (``{key, value, effect}``, as Kubernetes writes
taints and as older inventories did)."""

from __future__ import annotations

from typing import Any


def kubani_taint_text(taint: Any) -> str:
    if isinstance(taint, dict):
        value = taint.get("value")
        shown = (
            ""
            if value in (None, "")
            else f"={str(value).lower() if isinstance(value, bool) else value}"
        )
        return f"{taint['key']}{shown}:{taint['effect']}"
    return str(taint)


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"kubani_taint_text": kubani_taint_text}
