"""The API's resource types: what discovery lists and how paths map to objects.

Built-in types are listed here; CustomResourceDefinitions add theirs when created.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ResourceType:
    group: str  # "" for the core group
    version: str
    plural: str
    kind: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    verbs: tuple[str, ...] = (
        "create",
        "delete",
        "deletecollection",
        "get",
        "list",
        "patch",
        "update",
        "watch",
    )
    subresources: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def singular(self) -> str:
        return self.kind.lower()


def _core(
    plural: str, kind: str, namespaced: bool, *short: str, sub: tuple[str, ...] = ()
) -> ResourceType:
    return ResourceType("", "v1", plural, kind, namespaced, short, subresources=sub)


BUILTIN: tuple[ResourceType, ...] = (
    _core("namespaces", "Namespace", False, "ns", sub=("status",)),
    _core("nodes", "Node", False, "no", sub=("status", "proxy")),
    _core("pods", "Pod", True, "po", sub=("status", "log", "eviction", "binding")),
    _core("services", "Service", True, "svc", sub=("status",)),
    _core("endpoints", "Endpoints", True, "ep"),
    _core("configmaps", "ConfigMap", True, "cm"),
    _core("secrets", "Secret", True),
    _core("serviceaccounts", "ServiceAccount", True, "sa"),
    _core("events", "Event", True, "ev"),
    _core("persistentvolumeclaims", "PersistentVolumeClaim", True, "pvc", sub=("status",)),
    _core("persistentvolumes", "PersistentVolume", False, "pv", sub=("status",)),
    _core("limitranges", "LimitRange", True, "limits"),
    _core("resourcequotas", "ResourceQuota", True, "quota", sub=("status",)),
    ResourceType(
        "apps",
        "v1",
        "deployments",
        "Deployment",
        True,
        ("deploy",),
        subresources=("status", "scale"),
        categories=("all",),
    ),
    ResourceType(
        "apps",
        "v1",
        "statefulsets",
        "StatefulSet",
        True,
        ("sts",),
        subresources=("status", "scale"),
        categories=("all",),
    ),
    ResourceType(
        "apps",
        "v1",
        "daemonsets",
        "DaemonSet",
        True,
        ("ds",),
        subresources=("status",),
        categories=("all",),
    ),
    ResourceType(
        "apps",
        "v1",
        "replicasets",
        "ReplicaSet",
        True,
        ("rs",),
        subresources=("status", "scale"),
        categories=("all",),
    ),
    ResourceType("batch", "v1", "jobs", "Job", True, subresources=("status",)),
    ResourceType("batch", "v1", "cronjobs", "CronJob", True, ("cj",), subresources=("status",)),
    ResourceType("node.k8s.io", "v1", "runtimeclasses", "RuntimeClass", False),
    ResourceType("coordination.k8s.io", "v1", "leases", "Lease", True),
    ResourceType(
        "policy",
        "v1",
        "poddisruptionbudgets",
        "PodDisruptionBudget",
        True,
        ("pdb",),
        subresources=("status",),
    ),
    ResourceType("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy", True, ("netpol",)),
    ResourceType(
        "networking.k8s.io", "v1", "ingresses", "Ingress", True, ("ing",), subresources=("status",)
    ),
    ResourceType("networking.k8s.io", "v1", "ingressclasses", "IngressClass", False),
    ResourceType("storage.k8s.io", "v1", "storageclasses", "StorageClass", False, ("sc",)),
    ResourceType("scheduling.k8s.io", "v1", "priorityclasses", "PriorityClass", False, ("pc",)),
    ResourceType("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", False),
    ResourceType(
        "rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", False
    ),
    ResourceType("rbac.authorization.k8s.io", "v1", "roles", "Role", True),
    ResourceType("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", True),
    ResourceType(
        "apiextensions.k8s.io",
        "v1",
        "customresourcedefinitions",
        "CustomResourceDefinition",
        False,
        ("crd", "crds"),
        subresources=("status",),
    ),
    ResourceType("k3s.cattle.io", "v1", "addons", "Addon", True),
    ResourceType("helm.cattle.io", "v1", "helmcharts", "HelmChart", True),
    ResourceType("metrics.k8s.io", "v1beta1", "nodes", "NodeMetrics", False, verbs=("get", "list")),
    ResourceType("metrics.k8s.io", "v1beta1", "pods", "PodMetrics", True, verbs=("get", "list")),
)

# Types whose objects the server computes instead of storing.
COMPUTED_GROUPS = frozenset({"metrics.k8s.io"})


@dataclass
class Registry:
    types: list[ResourceType] = field(default_factory=lambda: list(BUILTIN))

    def find(self, group: str, version: str, plural: str) -> ResourceType | None:
        for kind in self.types:
            if (kind.group, kind.version, kind.plural) == (group, version, plural):
                return kind
        return None

    def by_kind(self, api_version: str, kind: str) -> ResourceType | None:
        for item in self.types:
            if item.api_version == api_version and item.kind == kind:
                return item
        return None

    def groups(self) -> dict[str, list[str]]:
        versions: dict[str, list[str]] = {}
        for item in self.types:
            if item.group and item.version not in versions.setdefault(item.group, []):
                versions[item.group].append(item.version)
        return versions

    def add_crd(self, crd: dict[str, object]) -> list[ResourceType]:
        """Register the resource types a CustomResourceDefinition declares."""
        spec = crd.get("spec") or {}
        assert isinstance(spec, dict)
        names = spec.get("names") or {}
        added = []
        for version in spec.get("versions") or []:
            if not version.get("served", True):
                continue
            item = ResourceType(
                group=str(spec.get("group", "")),
                version=str(version["name"]),
                plural=str(names.get("plural")),
                kind=str(names.get("kind")),
                namespaced=spec.get("scope", "Namespaced") == "Namespaced",
                short_names=tuple(names.get("shortNames") or ()),
                subresources=tuple((version.get("subresources") or {}).keys()),
                categories=tuple(names.get("categories") or ()),
            )
            if self.find(item.group, item.version, item.plural) is None:
                self.types.append(item)
                added.append(item)
        return added
