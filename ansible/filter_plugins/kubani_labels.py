"""kubani_kubelet_labels: the node labels a kubelet may set on its own Node when it registers
(K3s's ``node-label``). A kubelet refuses to start with any other label in the
``kubernetes.io`` or ``k8s.io`` namespaces (``node-role.kubernetes.io/worker``, for one);
those are applied through the API by the ``node_config`` role instead."""

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


def kubani_kubelet_labels(labels: Any) -> dict[str, Any]:
    return {k: v for k, v in dict(labels or {}).items() if kubelet_may_set(str(k))}


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"kubani_kubelet_labels": kubani_kubelet_labels}
