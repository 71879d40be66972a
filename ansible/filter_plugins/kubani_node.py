"""What a node registers itself with: K3s's ``node-label`` and ``node-taint`` settings, for
both the server and the agent config templates (``kubani_node_registration``).

Labels: only those a kubelet may set on its own Node. A kubelet refuses to start with any
other label in the ``kubernetes.io`` or ``k8s.io`` namespaces (``node-role.kubernetes.io/
worker``, for one); those are applied through the API by the ``node_config`` role instead.

Taints: K3s's ``key[=value]:Effect`` form, from the string form or the mapping form
(``{key, value, effect}``, as Kubernetes writes taints and as older inventories did)."""

from __future__ import annotations

from typing import Any

_NAMESPACES = ("kubernetes.io", "k8s.io")
_ALLOWED = frozenset(
    {
        "kubernetes.io/hostname",
        "kubernetes.io/arch",
        "kubernetes.io/os",
        "beta.kubernetes.io/arch",
        "beta.kubernetes.io/os",
        "beta.kubernetes.io/instance-type",
        "node.kubernetes.io/instance-type",
        "topology.kubernetes.io/region",
        "topology.kubernetes.io/zone",
        "failure-domain.beta.kubernetes.io/region",
        "failure-domain.beta.kubernetes.io/zone",
    }
)
_ALLOWED_PREFIXES = ("kubelet.kubernetes.io/", "node.kubernetes.io/")


def kubelet_may_set(key: str) -> bool:
    prefix = key.partition("/")[0] if "/" in key else ""
    restricted = any(prefix == ns or prefix.endswith("." + ns) for ns in _NAMESPACES)
    return not restricted or key in _ALLOWED or key.startswith(_ALLOWED_PREFIXES)


def _text(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def taint_text(taint: Any) -> str:
    if isinstance(taint, dict):
        value = taint.get("value")
        shown = "" if value in (None, "") else f"={_text(value)}"
        return f"{taint['key']}{shown}:{taint['effect']}"
    return str(taint)


def kubani_node_registration(labels: Any, taints: Any = None) -> dict[str, list[str]]:
    """``node-label`` and ``node-taint`` for K3s's config.yaml (keys left out when empty)."""
    registration: dict[str, list[str]] = {}
    allowed = [f"{k}={_text(v)}" for k, v in dict(labels or {}).items() if kubelet_may_set(str(k))]
    if allowed:
        registration["node-label"] = allowed
    if taints:
        registration["node-taint"] = [taint_text(t) for t in taints]
    return registration


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"kubani_node_registration": kubani_node_registration}
