"""Kubeconfigs: K3s's admin kubeconfig made usable from elsewhere, and merged safely.

K3s writes ``/etc/rancher/k3s/k3s.yaml`` for ``https://127.0.0.1:6443`` with everything
named ``default``. Kubani points it at the control plane's tailnet address (or the
inventory's ``api_endpoint``) and names cluster, user and context after the cluster, so
that merging it into ``~/.kube/config`` disturbs no other context.
"""

from __future__ import annotations

import copy
from typing import Any

import yaml

from kubani.errors import KubaniError

SECTIONS = (("clusters", "cluster"), ("users", "user"), ("contexts", "context"))


def parse(text: str, source: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(text) if text.strip() else {}
    except yaml.YAMLError as exc:
        raise KubaniError(
            f"cannot read {source}", f"it is not valid YAML: {exc}", "repair or move it aside"
        ) from exc
    if data is None:
        data = {}
    if not isinstance(data, dict) or data.get("kind", "Config") != "Config":
        raise KubaniError(
            f"cannot read {source}", "it is not a kubeconfig (kind: Config)", "check the file"
        )
    for section, _ in SECTIONS:
        if not isinstance(data.get(section) or [], list):
            raise KubaniError(f"cannot read {source}", f"{section} is not a list", "check the file")
    return data


def rewrite(config: dict[str, Any], server: str, name: str) -> dict[str, Any]:
    """One cluster, user and context, all called ``name``, talking to ``server``."""
    clusters, users = config.get("clusters") or [], config.get("users") or []
    if len(clusters) != 1 or len(users) != 1:
        raise KubaniError(
            "unexpected K3s kubeconfig",
            f"{len(clusters)} clusters and {len(users)} users (expected one of each)",
            "check /etc/rancher/k3s/k3s.yaml on the control plane",
        )
    cluster = copy.deepcopy(clusters[0].get("cluster") or {})
    cluster["server"] = server
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "clusters": [{"name": name, "cluster": cluster}],
        "users": [{"name": name, "user": copy.deepcopy(users[0].get("user") or {})}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
        "current-context": name,
    }


def merge(existing: dict[str, Any], incoming: dict[str, Any]) -> dict[str, Any]:
    """``existing`` with ``incoming``'s entries added or replaced by name; nothing else
    changes, and the current context stays unless there was none."""
    merged = copy.deepcopy(existing) or {}
    merged.setdefault("apiVersion", "v1")
    merged.setdefault("kind", "Config")
    for section, _ in SECTIONS:
        entries = list(merged.get(section) or [])
        for entry in incoming.get(section) or []:
            names = [e.get("name") for e in entries]
            if entry["name"] in names:
                entries[names.index(entry["name"])] = copy.deepcopy(entry)
            else:
                entries.append(copy.deepcopy(entry))
        merged[section] = entries
    if not merged.get("current-context"):
        merged["current-context"] = incoming.get("current-context")
    return merged


def dump(config: dict[str, Any]) -> str:
    return yaml.safe_dump(config, sort_keys=False, default_flow_style=False)
