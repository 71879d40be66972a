"""``ansible-inventory --list`` output (the JSON a dynamic inventory prints) as the data of a
YAML inventory, for ``cluster-mgr inventory import``.

The listing names each group's hosts and children in lists and holds every host's variables
under ``_meta.hostvars`` (with ``--list`` alone, its groups' variables are already merged in).
The YAML keeps each group's variables on the group and a host's variables where the host is
first listed, so Ansible reads it as it read the listing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kubani.errors import KubaniError
from kubani.inventory.groups import ALL

META = "_meta"
# A host's own address is never a setting of the whole cluster, even where every host of
# the listing has the same one.
_PER_HOST = frozenset({"ansible_host", "tailscale_ip", "ip", "access_ip"})


def _names(value: object, where: str, source: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str | int) for v in value):
        raise KubaniError(
            f"cannot import {source}",
            f"{where} must be a list of names, as ansible-inventory --list writes it",
            None,
        )
    return [str(v) for v in value]


def _mapping(value: object, where: str, source: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise KubaniError(
            f"cannot import {source}",
            f"{where} must be a mapping, as ansible-inventory --list writes it",
            None,
        )
    return {str(key): item for key, item in value.items()}


def _hoisted(hostvars: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The variables every host holds with the same value: without --export, the listing
    merges the groups' variables into each host's, and the cluster's settings (a K3s token,
    a version) are among them. Taken off the hosts, returned to be the inventory's own."""
    if len(hostvars) < 2:
        return {}
    first, *rest = hostvars.values()
    shared = {
        key: value
        for key, value in first.items()
        if key not in _PER_HOST and all(key in other and other[key] == value for other in rest)
    }
    for variables in hostvars.values():
        for key in shared:
            del variables[key]
    return shared


def as_inventory(listing: Mapping[str, Any], source: str) -> dict[str, Any]:
    """The listing's groups, hosts and variables as a YAML inventory's data."""
    hostvars = _mapping(
        _mapping(listing[META], META, source).get("hostvars"), "_meta.hostvars", source
    )
    hostvars = {
        name: _mapping(value, f"_meta.hostvars.{name}", source) for name, value in hostvars.items()
    }
    groups_have_vars = any(
        isinstance(spec, Mapping) and spec.get("vars")
        for name, spec in listing.items()
        if name != META
    )
    shared = {} if groups_have_vars else _hoisted(hostvars)
    placed: set[str] = set()

    def hosts_of(names: list[str]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in names:
            if name in out:
                continue  # listed twice in one group: its variables stay where first put
            variables = None if name in placed else hostvars.get(name)
            placed.add(name)
            out[name] = variables or None
        return out

    groups: dict[str, Any] = {}
    for name, spec in listing.items():
        if name == META:
            continue
        body = _mapping(spec, str(name), source)
        group: dict[str, Any] = {}
        variables = _mapping(body.get("vars"), f"{name}.vars", source)
        if variables:
            group["vars"] = variables
        hosts = hosts_of(_names(body.get("hosts"), f"{name}.hosts", source))
        if hosts:
            group["hosts"] = hosts
        children = [c for c in _names(body.get("children"), f"{name}.children", source) if c != ALL]
        if children and str(name) != ALL:
            group["children"] = dict.fromkeys(children)
        groups[str(name)] = group
    top = groups.pop(ALL, {})
    top.pop("children", None)
    if shared:
        top["vars"] = {**shared, **top.get("vars", {})}
    unplaced = hosts_of([name for name in hostvars if name not in placed])
    if unplaced:
        top.setdefault("hosts", {}).update(unplaced)
    if groups:
        top["children"] = groups
    return {ALL: top}
