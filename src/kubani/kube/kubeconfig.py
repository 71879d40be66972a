"""Kubeconfigs: K3s's admin kubeconfig made usable from elsewhere, and merged safely.

K3s writes ``/etc/rancher/k3s/k3s.yaml`` for ``https://127.0.0.1:6443`` with everything
named ``default``. Kubani points it at the control plane's tailnet address (or the
inventory's ``api_endpoint``) and names cluster, user and context after the cluster, so
that merging it into ``~/.kube/config`` disturbs no other context. Each entry Kubani writes
carries an extension that says so: a merge replaces only Kubani's own entries and refuses
to overwrite anyone else's (an EKS exec user, another cluster of the same name).
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import yaml

from kubani.errors import KubaniError
from kubani.yamlsafe import safe_load

SECTIONS = (("clusters", "cluster"), ("users", "user"), ("contexts", "context"))
MARKER = "kubani.io/written-by"

# Where K3s writes its admin kubeconfig on a server.
K3S_KUBECONFIG = "/etc/rancher/k3s/k3s.yaml"


def default_kubeconfig_path(cluster_name: str) -> Path:
    """Where Kubani keeps a cluster's kubeconfig unless told otherwise (the playbooks'
    ``k3s_control_plane_kubeconfig_path`` default too)."""
    return Path.home() / ".kube" / f"kubani-{cluster_name}.yaml"


def default_merge_target() -> Path:
    """The kubeconfig kubectl reads first: the first of $KUBECONFIG, else ~/.kube/config."""
    env_paths = kubeconfig_env_paths()
    return env_paths[0] if env_paths else Path.home() / ".kube" / "config"


def kubeconfig_env_paths() -> list[Path]:
    """The files $KUBECONFIG lists (separated as PATH is), without blanks or repeats."""
    listed = [p for p in os.environ.get("KUBECONFIG", "").split(os.pathsep) if p]
    return [Path(p).expanduser() for p in dict.fromkeys(listed)]


# Fields that name files, which kubectl reads relative to the kubeconfig that holds them.
_FILE_FIELDS = {
    "clusters": ("certificate-authority",),
    "users": ("client-certificate", "client-key", "tokenFile"),
}


def merged(paths: list[Path]) -> dict[str, Any]:
    """The kubeconfig kubectl reads from several files (a $KUBECONFIG list): a missing file
    is skipped; of clusters, users and contexts of one name the first file's wins, as does
    the first current-context set. Relative file names are made absolute, since the merged
    config has no folder of its own."""
    from kubani import userfiles

    found: dict[str, dict[str, dict[str, Any]]] = {section: {} for section, _ in SECTIONS}
    current = ""
    read_any = False
    for path in paths:
        if not path.exists():
            continue
        try:
            config = parse(userfiles.read_text(path), str(path))
        except (OSError, UnicodeDecodeError) as exc:
            why = "it is not UTF-8 text" if isinstance(exc, UnicodeDecodeError) else str(exc)
            raise KubaniError(
                f"cannot read {path}", why, "fix it, or leave it out of $KUBECONFIG"
            ) from None
        read_any = True
        current = current or str(config.get("current-context") or "")
        for section, body_key in SECTIONS:
            for entry in config.get(section) or []:
                name = entry.get("name") if isinstance(entry, dict) else None
                if not isinstance(name, str) or name in found[section]:
                    continue
                found[section][name] = _absolute_files(entry, section, body_key, path.parent)
    if not read_any:
        shown = os.pathsep.join(str(p) for p in paths)
        raise KubaniError("cannot read the kubeconfig", f"none of {shown} exists", None)
    document: dict[str, Any] = {"apiVersion": "v1", "kind": "Config"}
    document.update({section: list(found[section].values()) for section, _ in SECTIONS})
    document["current-context"] = current
    return document


def _absolute_files(
    entry: dict[str, Any], section: str, body_key: str, folder: Path
) -> dict[str, Any]:
    body = entry.get(body_key)
    if not isinstance(body, dict):
        return entry
    body = dict(body)
    for field in _FILE_FIELDS.get(section, ()):
        value = body.get(field)
        if isinstance(value, str) and value and not Path(value).is_absolute():
            body[field] = str(folder / value)
    plugin = body.get("exec")
    if isinstance(plugin, dict):
        command = plugin.get("command")
        # kubectl: an exec command with a path in it is relative to its kubeconfig
        if isinstance(command, str) and "/" in command and not Path(command).is_absolute():
            body["exec"] = {**plugin, "command": str(folder / command)}
    return {**entry, body_key: body}


def _marker(name: str) -> list[dict[str, Any]]:
    return [{"name": MARKER, "extension": {"tool": "kubani", "cluster": name}}]


def is_kubanis(entry: Any, body_key: str) -> bool:
    """Whether a kubeconfig entry (a cluster, user or context) was written by Kubani."""
    body = entry.get(body_key) if isinstance(entry, dict) else None
    extensions = body.get("extensions") if isinstance(body, dict) else None
    return any(isinstance(item, dict) and item.get("name") == MARKER for item in extensions or [])


def parse(text: str, source: str) -> dict[str, Any]:
    try:
        data = safe_load(text) if text.strip() else {}
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


def _entries(config: dict[str, Any], section: str, body_key: str) -> dict[str, dict[str, Any]]:
    """A section's entries by name, the first of each name; one without a name or a body
    is passed over, as :func:`merged` passes it over."""
    found: dict[str, dict[str, Any]] = {}
    for entry in config.get(section) or []:
        name = entry.get("name") if isinstance(entry, dict) else None
        body = entry.get(body_key) if isinstance(entry, dict) else None
        if isinstance(name, str) and isinstance(body, dict):
            found.setdefault(name, body)
    return found


def context_problem(config: dict[str, Any], context: str | None) -> str | None:
    """Why the context to use (``context``, else the current one) cannot make a client:
    missing, or naming a cluster or user the kubeconfig does not define; None when it can.
    (``config`` as :func:`parse` returns it.)"""
    clusters, users, contexts = (_entries(config, s, body) for s, body in SECTIONS)
    chosen = context or config.get("current-context")
    if not chosen:
        return None  # said where the client is made, with how to choose one
    body = contexts.get(str(chosen))
    if body is None:
        return f"it has no context named {chosen!r}"
    cluster, user = body.get("cluster"), body.get("user")
    if not isinstance(cluster, str) or cluster not in clusters:
        return f"context {chosen!r} names cluster {cluster!r}, which it does not define"
    if not isinstance(clusters[cluster].get("server"), str):
        return f"cluster {cluster!r} has no server address"
    if user is not None and (not isinstance(user, str) or user not in users):
        return f"context {chosen!r} names user {user!r}, which it does not define"
    return None


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
    cluster["extensions"] = _marker(name)
    user = copy.deepcopy(users[0].get("user") or {})
    user["extensions"] = _marker(name)
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "clusters": [{"name": name, "cluster": cluster}],
        "users": [{"name": name, "user": user}],
        "contexts": [
            {
                "name": name,
                "context": {"cluster": name, "user": name, "extensions": _marker(name)},
            }
        ],
        "current-context": name,
    }


def merge(existing: dict[str, Any], incoming: dict[str, Any]) -> dict[str, Any]:
    """``existing`` with ``incoming``'s entries added, or replacing Kubani's own entries of
    the same name; nothing else changes (with a round-trip loaded document, its comments
    neither), and the current context stays unless there was none. An entry of the same name
    that Kubani did not write is never replaced: that is refused, nothing changed."""
    taken = [
        f"{body_key} {entry.get('name')!r}"
        for section, body_key in SECTIONS
        for entry in existing.get(section) or []
        if isinstance(entry, dict)
        and isinstance(entry.get("name"), str)
        and entry["name"] in {e["name"] for e in incoming.get(section) or []}
        and not is_kubanis(entry, body_key)
    ]
    if taken:
        name = incoming.get("current-context") or "the cluster"
        raise KubaniError(
            f"will not merge context {name!r}",
            f"the kubeconfig already has {', '.join(taken)} that Kubani did not write",
            "pick another name: `cluster-mgr kubeconfig --merge --context NEW-NAME`",
        )
    merged = existing if existing else {}
    merged.setdefault("apiVersion", "v1")
    merged.setdefault("kind", "Config")
    for section, _ in SECTIONS:
        entries = merged.get(section)
        if entries is None:
            entries = merged[section] = []
        for entry in incoming.get(section) or []:
            names = [e.get("name") if isinstance(e, dict) else None for e in entries]
            if entry["name"] in names:
                entries[names.index(entry["name"])] = copy.deepcopy(entry)
            else:
                entries.append(copy.deepcopy(entry))
    if not merged.get("current-context"):
        merged["current-context"] = incoming.get("current-context")
    return merged


def load_round_trip(text: str, source: str) -> Any:
    """A kubeconfig loaded so that it dumps back with its comments and order."""
    from io import StringIO

    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    parse(text, source)  # the same checks and messages
    loader = YAML()
    loader.preserve_quotes = True
    try:
        return loader.load(StringIO(text)) or {}
    except YAMLError as exc:
        raise KubaniError(
            f"cannot read {source}", f"it is not valid YAML: {exc}", "repair or move it aside"
        ) from exc


def dump_round_trip(document: Any) -> str:
    from io import StringIO

    from ruamel.yaml import YAML

    out = StringIO()
    dumper = YAML()
    dumper.width = 4096  # never fold a user's long lines
    dumper.dump(document, out)
    return out.getvalue()


def dump(config: dict[str, Any]) -> str:
    return yaml.safe_dump(config, sort_keys=False, default_flow_style=False)
