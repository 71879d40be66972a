"""The schemas of Flux's kinds, from Flux's own CRDs (``flux_crds.json``, written by
``scripts/flux_schemas.py`` from pinned Flux modules; the versions are in the file).

A CRD's schema lets the API server drop fields it does not know (structural pruning): a
misspelt field is silently lost. ``gitops validate`` exists to catch that mistake, so
objects are checked strictly: where a schema lists an object's properties and does not
keep unknown fields, any other field is an error, as ``kubectl apply --validate=strict``
reports it.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

_FILE = "flux_crds.json"


@cache
def _document() -> dict[str, Any]:
    text = resources.files("kubani.gitops").joinpath(_FILE).read_text(encoding="utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def generated_from() -> dict[str, str]:
    """The Flux modules (and versions) the schemas come from."""
    return dict(_document()["generated_from"])


def _key(api_version: str, kind: str) -> str:
    return f"{api_version}/{kind}"


@cache
def flux_groups() -> frozenset[str]:
    return frozenset(key.split("/", 1)[0] for key in _document()["kinds"])


def served_versions(group: str, kind: str) -> list[str]:
    """The versions of ``group``'s ``kind`` that the pinned Flux serves."""
    found = []
    for key in _document()["kinds"]:
        key_group, version, key_kind = key.split("/")
        if key_group == group and key_kind == kind:
            found.append(version)
    return sorted(found)


@cache
def strict_schema(api_version: str, kind: str) -> dict[str, Any] | None:
    """The JSON schema an object of this kind must meet, or None for a kind or version the
    pinned Flux does not serve."""
    entry = _document()["kinds"].get(_key(api_version, kind))
    if entry is None:
        return None
    strict: dict[str, Any] = _strict(entry["schema"])
    if kind == "Alert":
        _take_patched_event_sources(strict)
    return strict


# Flux documents patching the Alert CRD so that Alerts take events of third-party kinds; the
# Flux Operator patches it so for its own, which public trees it manages use.
ALERT_PATCHED_SOURCE_KINDS = ("FluxInstance", "ResourceSet", "ResourceSetInputProvider")


def _take_patched_event_sources(schema: dict[str, Any]) -> None:
    kind: Any = schema
    for step in ("spec", "eventSources", "items", "kind"):
        kind = (
            kind.get("items", {}) if step == "items" else kind.get("properties", {}).get(step, {})
        )
    if isinstance(kind, dict) and isinstance(kind.get("enum"), list):
        kind["enum"] = [
            *kind["enum"],
            *(k for k in ALERT_PATCHED_SOURCE_KINDS if k not in kind["enum"]),
        ]


def _strict(schema: Any) -> Any:
    """OpenAPI v3 as JSON Schema: ``nullable`` as a null type, closed objects."""
    if isinstance(schema, list):
        return [_strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: _strict(value) for key, value in schema.items() if key != "properties"}
    if "properties" in schema:
        out["properties"] = {name: _strict(item) for name, item in schema["properties"].items()}
        keeps_unknown = schema.get("x-kubernetes-preserve-unknown-fields") is True
        if "additionalProperties" not in schema and not keeps_unknown:
            out["additionalProperties"] = False
    if schema.get("nullable") is True and isinstance(schema.get("type"), str):
        out["type"] = [schema["type"], "null"]
    return out
