"""The names the API server accepts for an object, by kind.

Schemas do not check names: ``My-App`` or ``web_1`` passes every schema and is refused only
when Flux applies it. Most kinds (custom resources included) take a DNS subdomain; a
Namespace an RFC 1123 label, a Service an RFC 1035 label, RBAC objects any name that can
stand alone in a URL path (``system:node-proxier``).
"""

from __future__ import annotations

from kubani.models.names import (
    is_dns_1035_label,
    is_dns_label,
    is_dns_subdomain,
    is_path_segment_name,
)

RBAC_GROUP = "rbac.authorization.k8s.io"
# Kinds and groups whose names follow rules of their own, left to the API server.
_NOT_CHECKED = frozenset({("", "Event"), ("events.k8s.io", "Event")})
_GROUPS_NOT_CHECKED = frozenset({"certificates.k8s.io"})
_SUBDOMAIN = "a DNS subdomain (lowercase letters, digits, '-' and '.', at most 253 characters)"
_LABEL = "an RFC 1123 label (lowercase letters, digits and '-', at most 63 characters)"


def _group(api_version: str) -> str:
    return api_version.rpartition("/")[0]


def name_problem(api_version: str, kind: str, name: str) -> str | None:
    """Why the API server would refuse ``name`` for this kind; None when it would not."""
    group = _group(api_version)
    if (group, kind) in _NOT_CHECKED or group in _GROUPS_NOT_CHECKED:
        return None
    if group == RBAC_GROUP:
        if is_path_segment_name(name):
            return None
        rule = "a name without '/' or '%' (and not '.' or '..')"
    elif group == "" and kind == "Namespace":
        if is_dns_label(name):
            return None
        rule = _LABEL
    elif group == "" and kind == "Service":
        if is_dns_1035_label(name):
            return None
        rule = "an RFC 1035 label (an RFC 1123 label that starts with a letter)"
    else:
        if is_dns_subdomain(name):
            return None
        rule = _SUBDOMAIN
    return f"metadata.name {name!r} is not {rule}: the API server refuses it"


def namespace_problem(namespace: str) -> str | None:
    if is_dns_label(namespace):
        return None
    return f"metadata.namespace {namespace!r} is not {_LABEL}: the API server refuses it"
