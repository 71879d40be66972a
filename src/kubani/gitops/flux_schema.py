"""JSON schemas of the Flux fields Kubani uses, written from the Flux API reference.

source.toolkit.fluxcd.io/v1 (GitRepository, HelmRepository), kustomize.toolkit.fluxcd.io/v1
(Kustomization) and helm.toolkit.fluxcd.io/v2 (HelmRelease). Unknown ``spec`` fields are
errors: a misspelt field is silently dropped by the API server (structural pruning), which
is the mistake this schema exists to catch. The same schemas serve as the CRDs' OpenAPI
schemas where Kubani writes CRDs (the lab's Flux stand-in).
"""

from __future__ import annotations

from typing import Any

DURATION: dict[str, Any] = {"type": "string", "pattern": r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"}
NAME: dict[str, Any] = {
    "type": "string",
    "minLength": 1,
    "maxLength": 253,
    "pattern": r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$",
}


def _obj(properties: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    schema: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
    }
    if required:
        schema["required"] = list(required)
    return schema


LOCAL_REF = _obj({"name": NAME}, ("name",))
NAMESPACED_REF = _obj({"name": NAME, "namespace": NAME}, ("name",))
FREE_OBJECT: dict[str, Any] = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}

GIT_REPOSITORY_SPEC = _obj(
    {
        "url": {"type": "string", "pattern": r"^(http|https|ssh)://.*$"},
        "secretRef": LOCAL_REF,
        "interval": DURATION,
        "timeout": DURATION,
        "ref": _obj(
            {
                "branch": {"type": "string"},
                "tag": {"type": "string"},
                "semver": {"type": "string"},
                "name": {"type": "string"},
                "commit": {"type": "string"},
            }
        ),
        "suspend": {"type": "boolean"},
        "ignore": {"type": "string"},
        "recurseSubmodules": {"type": "boolean"},
        "provider": {"type": "string", "enum": ["generic", "azure", "github"]},
    },
    ("url", "interval"),
)

HELM_REPOSITORY_SPEC = _obj(
    {
        "url": {"type": "string", "pattern": r"^(http|https|oci)://.*$"},
        "secretRef": LOCAL_REF,
        "interval": DURATION,
        "timeout": DURATION,
        "type": {"type": "string", "enum": ["default", "oci"]},
        "provider": {"type": "string", "enum": ["generic", "aws", "azure", "gcp"]},
        "suspend": {"type": "boolean"},
        "passCredentials": {"type": "boolean"},
    },
    ("url",),
)

CROSS_NAMESPACE_SOURCE = _obj(
    {
        "apiVersion": {"type": "string"},
        "kind": {"type": "string", "enum": ["GitRepository", "OCIRepository", "Bucket"]},
        "name": NAME,
        "namespace": NAME,
    },
    ("kind", "name"),
)

KUSTOMIZATION_SPEC = _obj(
    {
        "sourceRef": CROSS_NAMESPACE_SOURCE,
        "path": {"type": "string"},
        "interval": DURATION,
        "retryInterval": DURATION,
        "timeout": DURATION,
        "prune": {"type": "boolean"},
        "wait": {"type": "boolean"},
        "force": {"type": "boolean"},
        "suspend": {"type": "boolean"},
        "targetNamespace": NAME,
        "serviceAccountName": NAME,
        "dependsOn": {"type": "array", "items": NAMESPACED_REF},
        "decryption": _obj(
            {"provider": {"type": "string", "enum": ["sops"]}, "secretRef": LOCAL_REF},
            ("provider",),
        ),
        "healthChecks": {
            "type": "array",
            "items": _obj(
                {
                    "apiVersion": {"type": "string"},
                    "kind": {"type": "string"},
                    "name": NAME,
                    "namespace": NAME,
                },
                ("kind", "name"),
            ),
        },
        "postBuild": _obj(
            {
                "substitute": {"type": "object", "additionalProperties": {"type": "string"}},
                "substituteFrom": {
                    "type": "array",
                    "items": _obj(
                        {
                            "kind": {"type": "string", "enum": ["ConfigMap", "Secret"]},
                            "name": NAME,
                            "optional": {"type": "boolean"},
                        },
                        ("kind", "name"),
                    ),
                },
            }
        ),
        "patches": {"type": "array", "items": FREE_OBJECT},
        "components": {"type": "array", "items": {"type": "string"}},
        "commonMetadata": FREE_OBJECT,
        "namePrefix": {"type": "string"},
        "nameSuffix": {"type": "string"},
        "images": {"type": "array", "items": FREE_OBJECT},
    },
    ("interval", "prune", "sourceRef"),
)

HELM_CHART_TEMPLATE = _obj(
    {
        "metadata": FREE_OBJECT,
        "spec": _obj(
            {
                "chart": {"type": "string", "minLength": 1},
                "version": {"type": "string"},
                "sourceRef": _obj(
                    {
                        "apiVersion": {"type": "string"},
                        "kind": {
                            "type": "string",
                            "enum": ["HelmRepository", "GitRepository", "Bucket"],
                        },
                        "name": NAME,
                        "namespace": NAME,
                    },
                    ("kind", "name"),
                ),
                "interval": DURATION,
                "reconcileStrategy": {"type": "string", "enum": ["ChartVersion", "Revision"]},
                "valuesFiles": {"type": "array", "items": {"type": "string"}},
            },
            ("chart", "sourceRef"),
        ),
    },
    ("spec",),
)

REMEDIATION = _obj(
    {
        "retries": {"type": "integer"},
        "remediateLastFailure": {"type": "boolean"},
        "strategy": {"type": "string", "enum": ["rollback", "uninstall"]},
        "ignoreTestFailures": {"type": "boolean"},
    }
)

HELM_RELEASE_SPEC = _obj(
    {
        "chart": HELM_CHART_TEMPLATE,
        "chartRef": _obj(
            {
                "apiVersion": {"type": "string"},
                "kind": {"type": "string", "enum": ["OCIRepository", "HelmChart"]},
                "name": NAME,
                "namespace": NAME,
            },
            ("kind", "name"),
        ),
        "interval": DURATION,
        "timeout": DURATION,
        "releaseName": {"type": "string", "maxLength": 53},
        "targetNamespace": NAME,
        "storageNamespace": NAME,
        "serviceAccountName": NAME,
        "suspend": {"type": "boolean"},
        "dependsOn": {"type": "array", "items": NAMESPACED_REF},
        "install": _obj(
            {
                "createNamespace": {"type": "boolean"},
                "crds": {"type": "string", "enum": ["Skip", "Create", "CreateReplace"]},
                "remediation": REMEDIATION,
                "timeout": DURATION,
                "disableWait": {"type": "boolean"},
            }
        ),
        "upgrade": _obj(
            {
                "cleanupOnFail": {"type": "boolean"},
                "crds": {"type": "string", "enum": ["Skip", "Create", "CreateReplace"]},
                "remediation": REMEDIATION,
                "timeout": DURATION,
                "force": {"type": "boolean"},
            }
        ),
        "values": FREE_OBJECT,
        "valuesFrom": {
            "type": "array",
            "items": _obj(
                {
                    "kind": {"type": "string", "enum": ["ConfigMap", "Secret"]},
                    "name": NAME,
                    "valuesKey": {"type": "string"},
                    "targetPath": {"type": "string"},
                    "optional": {"type": "boolean"},
                },
                ("kind", "name"),
            ),
        },
        "driftDetection": FREE_OBJECT,
    },
    ("interval",),
)


def _document(spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {
                "type": "object",
                "properties": {"name": NAME, "namespace": NAME},
                "required": ["name"],
            },
            "spec": spec,
            "status": FREE_OBJECT,
        },
        "required": ["apiVersion", "kind", "metadata", "spec"],
    }


# (group, version, kind, plural, short names, spec schema)
FLUX_TYPES: tuple[tuple[str, str, str, str, tuple[str, ...], dict[str, Any]], ...] = (
    ("source.toolkit.fluxcd.io", "v1", "GitRepository", "gitrepositories", ("gitrepo",),
     GIT_REPOSITORY_SPEC),
    ("source.toolkit.fluxcd.io", "v1", "HelmRepository", "helmrepositories", ("helmrepo",),
     HELM_REPOSITORY_SPEC),
    ("kustomize.toolkit.fluxcd.io", "v1", "Kustomization", "kustomizations", ("ks",),
     KUSTOMIZATION_SPEC),
    ("helm.toolkit.fluxcd.io", "v2", "HelmRelease", "helmreleases", ("hr",),
     HELM_RELEASE_SPEC),
)  # fmt: skip

SCHEMAS: dict[tuple[str, str], dict[str, Any]] = {
    (f"{group}/{version}", kind): _document(spec)
    for group, version, kind, _plural, _short, spec in FLUX_TYPES
}
FLUX_GROUPS = frozenset(group for group, *_ in FLUX_TYPES) | {"notification.toolkit.fluxcd.io"}


def custom_resource_definitions() -> list[dict[str, Any]]:
    """CRDs for the Flux kinds above, with ``spec`` checked and ``status`` kept as written."""
    crds = []
    for group, version, kind, plural, short, spec in FLUX_TYPES:
        schema = _document(spec)
        schema["properties"]["metadata"] = {"type": "object"}
        crds.append(
            {
                "apiVersion": "apiextensions.k8s.io/v1",
                "kind": "CustomResourceDefinition",
                "metadata": {
                    "name": f"{plural}.{group}",
                    "labels": {"app.kubernetes.io/part-of": "flux"},
                },
                "spec": {
                    "group": group,
                    "names": {
                        "kind": kind,
                        "listKind": f"{kind}List",
                        "plural": plural,
                        "singular": kind.lower(),
                        "shortNames": list(short),
                    },
                    "scope": "Namespaced",
                    "versions": [
                        {
                            "name": version,
                            "served": True,
                            "storage": True,
                            "schema": {"openAPIV3Schema": schema},
                            "subresources": {"status": {}},
                            "additionalPrinterColumns": [
                                {"name": "Age", "type": "date",
                                 "jsonPath": ".metadata.creationTimestamp"},
                                {"name": "Ready", "type": "string",
                                 "jsonPath": '.status.conditions[?(@.type=="Ready")].status'},
                                {"name": "Status", "type": "string",
                                 "jsonPath": '.status.conditions[?(@.type=="Ready")].message'},
                            ],
                        }
                    ],
                },
            }
        )  # fmt: skip
    return crds
