"""A Flux Kustomization's ``spec.patches``: applied by Flux to what it builds from its path.

Trees rely on them for defaults: one parent Kustomization gives every child Kustomization
its ``interval`` and ``prune`` (and them a patch for every HelmRelease), so the children
are incomplete as written. Checking them as written reports what Flux never sees; checking
them patched, as here, reports what it applies. Strategic merge patches are followed (a
mapping merged into each object its target selects, lists replaced: Flux's CRDs declare no
merge keys); JSON 6902 patches and label or annotation selectors are not: a patch with those
is applied to every object its other fields select, so that nothing it could fill is
reported missing.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from kubani.kube.fields import at, entries
from kubani.yamlsafe import safe_load

_SELECTORS = ("group", "version", "kind", "name", "namespace")


def strategic_patches(kustomization: dict[str, Any]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(target, patch) for each strategic merge patch in a Kustomization's spec.patches."""
    found = []
    for entry in entries(at(kustomization, "spec").get("patches")):
        text = entry.get("patch")
        if not isinstance(text, str):
            continue
        try:
            patch = safe_load(text)
        except yaml.YAMLError:
            continue  # Flux reports it; the schema check has nothing to say about its text
        if isinstance(patch, dict):
            found.append((at(entry, "target"), patch))
    return found


def selects(target: dict[str, Any], patch: dict[str, Any], obj: dict[str, Any]) -> bool:
    """Whether a patch applies to ``obj``: by its target (regular expressions, as
    kustomize's), else by the patch's own kind and name."""
    api_version = str(obj.get("apiVersion", ""))
    group, _, version = api_version.rpartition("/")
    meta = at(obj, "metadata")
    actual = {
        "group": group,
        "version": version,
        "kind": str(obj.get("kind", "")),
        "name": str(meta.get("name", "")),
        "namespace": str(meta.get("namespace", "")),
    }
    wanted = {key: target.get(key) for key in _SELECTORS if isinstance(target.get(key), str)}
    if not wanted:
        patch_meta = at(patch, "metadata")
        wanted = {
            "kind": patch.get("kind"),
            "name": patch_meta.get("name"),
            "namespace": patch_meta.get("namespace"),
        }
    for key, pattern in wanted.items():
        if not isinstance(pattern, str) or not pattern:
            continue
        try:
            if not re.fullmatch(pattern, actual[key]):
                return False
        except re.error:
            if pattern != actual[key]:
                return False
    return True


def merged(obj: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """``obj`` with ``patch`` merged in; the patch's identity (apiVersion, kind, name,
    namespace) is not copied onto the object."""
    body = {k: v for k, v in patch.items() if k not in ("apiVersion", "kind")}
    if isinstance(body.get("metadata"), dict):
        identity = ("name", "namespace")
        body["metadata"] = {k: v for k, v in body["metadata"].items() if k not in identity}
    return _merged(obj, body)


def _merged(current: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """Mappings merged, anything else replaced, a null deleting the field."""
    out = dict(current)
    for key, value in patch.items():
        inner = out.get(key)
        if isinstance(inner, dict) and isinstance(value, dict):
            out[key] = _merged(inner, value)
        elif value is not None:
            out[key] = value
        else:
            out.pop(key, None)
    return out
