"""An Ansible inventory (hosts.yml plus group_vars/ and host_vars/) held for editing.

Variables resolve with Ansible's precedence, lowest first:
``all.vars`` < ``children.<group>.vars`` < ``group_vars/all`` < ``group_vars/<group>``
< the host's entry in hosts.yml < ``host_vars/<host>``. Top-level keys replace, as with
Ansible's default ``hash_behaviour``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.error import YAMLError

from kubani.errors import KubaniError
from kubani.inventory.comments import (
    append_leading,
    put_following_after,
    take_following_after,
    take_leading,
)
from kubani.inventory.paths import parse_key_path
from kubani.inventory.yamlio import (
    IndentStyle,
    dump_round_trip,
    load_round_trip,
    plain,
    to_round_trip,
)
from kubani.models.inventory import NODE_GROUPS, HostEntry, Inventory, build_inventory
from kubani.models.problems import Problems

GROUP_SCOPES: tuple[str, ...] = ("all", *NODE_GROUPS)
# Set by group membership, not by a variable.
_STRUCTURAL_KEYS = frozenset({"hostname", "role"})


class InventoryFormatError(KubaniError):
    """A file that is not YAML, or not shaped like a Kubani inventory."""


@dataclass
class YamlFile:
    """One YAML file of the inventory, with the bytes it had when read."""

    path: Path
    data: CommentedMap
    original: bytes | None
    style: IndentStyle = field(default_factory=IndentStyle)

    @classmethod
    def read(cls, path: Path) -> YamlFile:
        if not path.exists():
            return cls(path=path, data=CommentedMap(), original=None)
        raw = path.read_bytes()
        try:
            data, style = load_round_trip(raw.decode("utf-8"))
        except (YAMLError, UnicodeDecodeError) as exc:
            where = getattr(exc, "problem_mark", None)
            line = f" at line {where.line + 1}" if where is not None else ""
            reason = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise InventoryFormatError(
                f"cannot read {path}", f"not valid YAML{line}: {reason}", "fix the file by hand"
            ) from exc
        if data is None:
            data = CommentedMap()
        if not isinstance(data, CommentedMap):
            raise InventoryFormatError(
                f"cannot read {path}",
                f"the top level is a {type(data).__name__}, not a mapping",
                "an inventory file starts with `all:`",
            )
        return cls(path=path, data=data, original=raw, style=style)

    def render(self) -> bytes:
        return dump_round_trip(self.data, self.style).encode("utf-8")

    @property
    def changed(self) -> bool:
        if self.original is None:
            return bool(self.data)
        return self.render() != self.original


def _mapping(value: Any, where: str, path: Path) -> CommentedMap | None:
    if value is None:
        return None
    if not isinstance(value, CommentedMap):
        raise InventoryFormatError(
            f"cannot read {path}", f"{where} must be a mapping, not {type(value).__name__}"
        )
    return value


class InventoryDocument:
    """The inventory's files, read for inspection or for a change under a lock."""

    def __init__(self, hosts_path: Path) -> None:
        self.hosts_path = hosts_path
        self.root = hosts_path.parent
        self.hosts = YamlFile.read(hosts_path)
        self._group_vars: dict[str, YamlFile] = {}
        self._host_vars: dict[str, YamlFile] = {}
        self._check_shape()

    # ---- files ---------------------------------------------------------------

    def _vars_file(self, folder: str, name: str) -> YamlFile:
        cache = self._group_vars if folder == "group_vars" else self._host_vars
        if name not in cache:
            base = self.root / folder
            candidates = [base / f"{name}.yml", base / f"{name}.yaml", base / name]
            found = next((p for p in candidates if p.is_file()), candidates[0])
            cache[name] = YamlFile.read(found)
        return cache[name]

    def group_vars(self, group: str) -> YamlFile:
        return self._vars_file("group_vars", group)

    def host_vars(self, hostname: str) -> YamlFile:
        return self._vars_file("host_vars", hostname)

    def files(self) -> list[YamlFile]:
        return [self.hosts, *self._group_vars.values(), *self._host_vars.values()]

    def changed_files(self) -> list[YamlFile]:
        return [f for f in self.files() if f.changed]

    # ---- shape ---------------------------------------------------------------

    def _check_shape(self) -> None:
        path = self.hosts.path
        all_group = _mapping(self.hosts.data.get("all"), "all", path)
        if all_group is None:
            return
        _mapping(all_group.get("vars"), "all.vars", path)
        children = _mapping(all_group.get("children"), "all.children", path)
        for group in NODE_GROUPS:
            if children is None or group not in children:
                continue
            body = _mapping(children[group], f"all.children.{group}", path)
            if body is None:
                continue
            hosts = _mapping(body.get("hosts"), f"all.children.{group}.hosts", path)
            for hostname, host in (hosts or {}).items():
                _mapping(host, f"all.children.{group}.hosts.{hostname}", path)

    def _all(self, create: bool = False) -> CommentedMap | None:
        data = self.hosts.data
        if "all" not in data or data["all"] is None:
            if not create:
                return None
            data["all"] = CommentedMap()
        group: CommentedMap = data["all"]
        return group

    def _child(self, key: str, parent: CommentedMap) -> CommentedMap:
        if parent.get(key) is None:
            parent[key] = CommentedMap()
        child: CommentedMap = parent[key]
        return child

    def _group_body(self, group: str, create: bool = False) -> CommentedMap | None:
        top = self._all(create)
        if top is None:
            return None
        if not create and (top.get("children") is None or top["children"].get(group) is None):
            return None
        return self._child(group, self._child("children", top))

    def _hosts_of(self, group: str, create: bool = False) -> CommentedMap | None:
        body = self._group_body(group, create)
        if body is None:
            return None
        if not create and body.get("hosts") is None:
            return None
        return self._child("hosts", body)

    def _inventory_vars(self, group: str) -> CommentedMap | None:
        body = self._all() if group == "all" else self._group_body(group)
        if body is None or body.get("vars") is None:
            return None
        found: CommentedMap = body["vars"]
        return found

    # ---- reading -------------------------------------------------------------

    def iter_hosts(self) -> Iterator[tuple[str, str, CommentedMap]]:
        for group in NODE_GROUPS:
            hosts = self._hosts_of(group)
            for hostname, entry in (hosts or {}).items():
                yield group, str(hostname), entry if entry is not None else CommentedMap()

    def find_host(self, hostname: str) -> str | None:
        """The group holding ``hostname``, if any."""
        return next((g for g, h, _ in self.iter_hosts() if h == hostname), None)

    def scope_vars(self, scope: str) -> dict[str, Any]:
        """The effective variables at a scope: ``all``, a group, or a host."""
        layers: list[Any] = [self._inventory_vars("all")]
        groups: list[str] = []
        if scope in NODE_GROUPS:
            groups = [scope]
        elif scope != "all":
            group = self.find_host(scope)
            if group is None:
                raise KubaniError(
                    f"unknown scope {scope!r}",
                    "it is neither all, control_plane, workers nor a host of the inventory",
                    "run `cluster-mgr validate` to list the hosts",
                )
            groups = [group]
        layers += [self._inventory_vars(g) for g in groups]
        layers.append(self.group_vars("all").data)
        layers += [self.group_vars(g).data for g in groups]
        if scope not in GROUP_SCOPES:
            group = groups[0]
            hosts = self._hosts_of(group)
            layers.append(hosts[scope] if hosts is not None else None)
            layers.append(self.host_vars(scope).data)
        effective: dict[str, Any] = {}
        for layer in layers:
            if layer:
                effective.update(plain(layer))
        return effective

    def host_entries(self) -> list[HostEntry]:
        per_group = {g: self.scope_vars(g) for g in NODE_GROUPS}
        entries = []
        for group, hostname, entry in self.iter_hosts():
            variables = dict(per_group[group])
            variables.update(plain(entry))
            variables.update(plain(self.host_vars(hostname).data))
            where = f"all.children.{group}.hosts.{hostname}"
            entries.append(HostEntry(group, hostname, variables, where))
        return entries

    def validate(self) -> tuple[Inventory | None, Problems]:
        cluster_keys = self.scope_vars("all")
        return build_inventory(cluster_keys, self.host_entries())

    def get(self, key: str, scope: str = "all") -> Any:
        parts = parse_key_path(key)
        value: Any = self.scope_vars(scope)
        for depth, part in enumerate(parts):
            if not isinstance(value, dict) or part not in value:
                shown = ".".join(parts[: depth + 1])
                raise KubaniError(
                    f"{key} is not set",
                    f"no {shown!r} at scope {scope}",
                    "list what is set with `cluster-mgr config-get --scope ... ` on a parent key",
                )
            value = value[part]
        return value

    # ---- changing ------------------------------------------------------------

    def add_host(self, group: str, hostname: str, variables: dict[str, Any]) -> None:
        existing = self.find_host(hostname)
        if existing is not None:
            raise KubaniError(
                f"cannot add {hostname}",
                f"it is already in the inventory (group {existing})",
                f"remove it first with `cluster-mgr remove-node {hostname}`",
            )
        body = self._group_body(group, create=True)
        assert body is not None
        following = take_following_after(body, "hosts") if "hosts" in body else ""
        hosts = self._child("hosts", body)
        hosts[hostname] = to_round_trip(variables)
        put_following_after(body, "hosts", following)

    def remove_host(self, hostname: str) -> str:
        group = self.find_host(hostname)
        if group is None:
            raise KubaniError(
                f"cannot remove {hostname}",
                "it is not in the inventory",
                "check the name with `cluster-mgr validate` or `cluster-mgr discover`",
            )
        body = self._group_body(group)
        hosts = self._hosts_of(group)
        assert body is not None and hosts is not None
        names = list(hosts)
        index = names.index(hostname)
        following = take_following_after(hosts, hostname)
        del hosts[hostname]
        if index > 0:
            put_following_after(hosts, names[index - 1], following)
        elif len(hosts):
            append_leading(hosts, following)
        else:
            # An empty mapping would be written as `{}` after the comments; null reads the same.
            following = take_leading(hosts) + following
            body["hosts"] = None
            put_following_after(body, "hosts", following)
        return group

    def set(self, key: str, value: Any, scope: str = "all") -> Path:
        """Set a variable where that scope already defines it, else in hosts.yml."""
        parts = parse_key_path(key)
        if parts[0] in _STRUCTURAL_KEYS and scope not in GROUP_SCOPES:
            raise KubaniError(
                f"cannot set {key}",
                f"a node's {parts[0]} is its place in the inventory, not a variable",
                "use `cluster-mgr remove-node` then `cluster-mgr add-node`",
            )
        target, file = self._target_for(parts[0], scope)
        node: dict[str, Any] = target
        for depth, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                node[part] = child = CommentedMap()
            if not isinstance(child, dict):
                shown = ".".join(parts[: depth + 1])
                raise KubaniError(
                    f"cannot set {key}",
                    f"{shown} is a {type(child).__name__}, not a mapping",
                    f"set {shown} itself, e.g. with --type json",
                )
            node = child
        node[parts[-1]] = to_round_trip(value)
        return file.path

    def _target_for(self, top_key: str, scope: str) -> tuple[CommentedMap, YamlFile]:
        if scope in GROUP_SCOPES:
            side = self.group_vars(scope)
            if top_key in side.data:
                return side.data, side
            body = self._all(create=True) if scope == "all" else self._group_body(scope, True)
            assert body is not None
            return self._child("vars", body), self.hosts
        group = self.find_host(scope)
        if group is None:
            raise KubaniError(
                f"unknown scope {scope!r}",
                "it is neither all, control_plane, workers nor a host of the inventory",
                "run `cluster-mgr validate` to list the hosts",
            )
        side = self.host_vars(scope)
        if top_key in side.data:
            return side.data, side
        hosts = self._hosts_of(group)
        assert hosts is not None
        if hosts[scope] is None:
            hosts[scope] = CommentedMap()
        entry: CommentedMap = hosts[scope]
        return entry, self.hosts

    def overridden_below(self, key: str, scope: str, value: Any) -> list[str]:
        """Hosts where a value set at a group scope does not take effect."""
        if scope not in GROUP_SCOPES:
            return []
        hidden = []
        for group, hostname, _ in self.iter_hosts():
            if scope not in ("all", group):
                continue
            try:
                effective = self.get(key, hostname)
            except KubaniError:
                continue
            if effective != plain(value):
                hidden.append(hostname)
        return hidden
