"""An Ansible inventory (hosts.yml plus group_vars/ and host_vars/) held for editing.

Variables resolve with Ansible's precedence, lowest first:
``all.vars`` < ``children.<group>.vars`` < ``group_vars/all`` < ``group_vars/<group>``
< the host's entry in hosts.yml < ``host_vars/<host>``. Top-level keys replace, as with
Ansible's default ``hash_behaviour``.

Reads use libyaml. Edits splice the text where they can (appending or deleting a host in
a block mapping) and otherwise go through ruamel's round-trip editor; either way the new
text is parsed again and must equal the expected data before anything is written.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from kubani.errors import KubaniError
from kubani.inventory import splice
from kubani.inventory.fastyaml import (
    EXPANSION_LIMIT,
    DuplicateKeyError,
    expanded_size,
    load_with_nodes,
)
from kubani.inventory.paths import parse_key_path
from kubani.inventory.style import IndentStyle, guess_style
from kubani.models.inventory import NODE_GROUPS, HostEntry, Inventory, build_inventory
from kubani.models.problems import Problems

GROUP_SCOPES: tuple[str, ...] = ("all", *NODE_GROUPS)
# Set by group membership, not by a variable.
_STRUCTURAL_KEYS = frozenset({"hostname", "role"})


class InventoryFormatError(KubaniError):
    """A file that is not YAML, or not shaped like a Kubani inventory."""


def _parse(text: str, path: Path) -> tuple[Any, yaml.Node | None]:
    try:
        data, node = load_with_nodes(text)
    except DuplicateKeyError as exc:
        raise InventoryFormatError(f"cannot read {path}", str(exc), "keep one of them") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" at line {mark.line + 1}" if mark is not None else ""
        reason = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InventoryFormatError(
            f"cannot read {path}", f"not valid YAML{line}: {reason}", "fix the file by hand"
        ) from exc
    except RecursionError as exc:
        raise InventoryFormatError(
            f"cannot read {path}", "its values are nested too deeply", "fix the file by hand"
        ) from exc
    if expanded_size(node) > EXPANSION_LIMIT:
        raise InventoryFormatError(
            f"cannot read {path}",
            f"its YAML aliases expand to more than {EXPANSION_LIMIT:,} values (an alias bomb?)",
            "write the values out, or use fewer nested aliases",
        )
    return data, node


@dataclass
class YamlFile:
    """One YAML file of the inventory: its text now, the data it reads as, its first bytes."""

    path: Path
    text: str
    data: dict[str, Any]
    node: yaml.Node | None
    original: bytes | None

    @classmethod
    def read(cls, path: Path) -> YamlFile:
        if not path.exists():
            return cls(path=path, text="", data={}, node=None, original=None)
        raw = path.read_bytes()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InventoryFormatError(f"cannot read {path}", "not UTF-8 text", None) from exc
        data, node = _parse(text, path)
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise InventoryFormatError(
                f"cannot read {path}",
                f"the top level is a {type(data).__name__}, not a mapping",
                "an inventory file starts with `all:`",
            )
        return cls(path=path, text=text, data=data, node=node, original=raw)

    @property
    def style(self) -> IndentStyle:
        return guess_style(self.text)

    def render(self) -> bytes:
        return self.text.encode("utf-8")

    @property
    def changed(self) -> bool:
        if self.original is None:
            return bool(self.data)
        return self.render() != self.original

    def commit(self, new_text: str, expected: dict[str, Any]) -> bool:
        """Take ``new_text`` if it reads back as ``expected``."""
        data, node = _parse(new_text, self.path)
        if (data or {}) != expected:
            return False
        self.text, self.data, self.node = new_text, data or {}, node
        return True

    def edit(
        self,
        expected: dict[str, Any],
        round_trip: Callable[[Any], None],
        spliced: str | None = None,
    ) -> None:
        """Apply an edit: the spliced text when it checks out, else ruamel's round trip."""
        if spliced is not None and self.commit(spliced, expected):
            return
        from kubani.inventory.yamlio import dump_round_trip, load_round_trip

        document, style = load_round_trip(self.text)
        round_trip(document)
        if not self.commit(dump_round_trip(document, style), expected):
            raise KubaniError(
                f"cannot edit {self.path} safely",
                "the edited file would not read back as intended",
                "make this change by hand, and report it with the file",
            )


def _check_mapping(value: Any, where: str, path: Path) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InventoryFormatError(
            f"cannot read {path}", f"{where} must be a mapping, not {type(value).__name__}"
        )
    return value


def _ensure(parent: dict[str, Any], key: str) -> dict[str, Any]:
    if parent.get(key) is None:
        parent[key] = {}
    child: dict[str, Any] = parent[key]
    return child


class InventoryDocument:
    """The inventory's files, read for inspection or for a change under a lock."""

    def __init__(self, hosts_path: Path) -> None:
        self.hosts_path = hosts_path
        self.root = hosts_path.parent
        self.hosts = YamlFile.read(hosts_path)
        self._group_vars: dict[str, YamlFile] = {}
        self._host_vars: dict[str, YamlFile] = {}
        self._listings: dict[str, frozenset[str]] = {}
        self.problems: Problems | None = None  # set by edit_inventory once the edit is checked
        self._check_shape()

    # ---- files ---------------------------------------------------------------

    def _vars_file(self, folder: str, name: str) -> YamlFile:
        cache = self._group_vars if folder == "group_vars" else self._host_vars
        if name not in cache:
            present = self._listing(folder)
            base = self.root / folder
            names = [f"{name}.yml", f"{name}.yaml", name]
            found = next((n for n in names if n in present), names[0])
            cache[name] = YamlFile.read(base / found)
        return cache[name]

    def _listing(self, folder: str) -> frozenset[str]:
        if folder not in self._listings:
            try:
                entries = frozenset(e.name for e in os.scandir(self.root / folder) if e.is_file())
            except (FileNotFoundError, NotADirectoryError):
                entries = frozenset()
            self._listings[folder] = entries
        return self._listings[folder]

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
        top = _check_mapping(self.hosts.data.get("all"), "all", path)
        if top is None:
            return
        _check_mapping(top.get("vars"), "all.vars", path)
        children = _check_mapping(top.get("children"), "all.children", path) or {}
        for group in NODE_GROUPS:
            body = _check_mapping(children.get(group), f"all.children.{group}", path)
            if body is None:
                continue
            _check_mapping(body.get("vars"), f"all.children.{group}.vars", path)
            hosts = _check_mapping(body.get("hosts"), f"all.children.{group}.hosts", path)
            for hostname, host in (hosts or {}).items():
                _check_mapping(host, f"all.children.{group}.hosts.{hostname}", path)

    def _group_body(self, group: str) -> dict[str, Any] | None:
        top = self.hosts.data.get("all") or {}
        body: dict[str, Any] | None = (top.get("children") or {}).get(group)
        return body

    def _hosts_of(self, group: str) -> dict[str, Any]:
        return (self._group_body(group) or {}).get("hosts") or {}

    def _inventory_vars(self, scope: str) -> dict[str, Any]:
        body = self.hosts.data.get("all") if scope == "all" else self._group_body(scope)
        return (body or {}).get("vars") or {}

    # ---- reading -------------------------------------------------------------

    def iter_hosts(self) -> Iterator[tuple[str, str, dict[str, Any]]]:
        for group in NODE_GROUPS:
            for hostname, entry in self._hosts_of(group).items():
                yield group, str(hostname), entry or {}

    def find_host(self, hostname: str) -> str | None:
        """The group holding ``hostname``, if any."""
        return next((g for g, h, _ in self.iter_hosts() if h == hostname), None)

    def _unknown_scope(self, scope: str) -> KubaniError:
        return KubaniError(
            f"unknown scope {scope!r}",
            "it is neither all, control_plane, workers nor a host of the inventory",
            "run `cluster-mgr validate` to list the hosts",
        )

    def scope_vars(self, scope: str) -> dict[str, Any]:
        """The effective variables at a scope: ``all``, a group, or a host."""
        if scope in GROUP_SCOPES:
            group = None if scope == "all" else scope
        else:
            group = self.find_host(scope)
            if group is None:
                raise self._unknown_scope(scope)
        layers = [self._inventory_vars("all")]
        if group:
            layers.append(self._inventory_vars(group))
        layers.append(self.group_vars("all").data)
        if group:
            layers.append(self.group_vars(group).data)
        if scope not in GROUP_SCOPES:
            layers += [self._hosts_of(str(group)).get(scope) or {}, self.host_vars(scope).data]
        effective: dict[str, Any] = {}
        for layer in layers:
            effective.update(layer)
        return effective

    def host_entries(self) -> list[HostEntry]:
        per_group = {g: self.scope_vars(g) for g in NODE_GROUPS}
        entries = []
        for group, hostname, entry in self.iter_hosts():
            variables = {**per_group[group], **entry, **self.host_vars(hostname).data}
            where = f"all.children.{group}.hosts.{hostname}"
            entries.append(HostEntry(group, hostname, variables, where))
        return entries

    def validate(self) -> tuple[Inventory | None, Problems]:
        return build_inventory(self.scope_vars("all"), self.host_entries())

    def get(self, key: str, scope: str = "all") -> Any:
        parts = parse_key_path(key)
        value: Any = self.scope_vars(scope)
        for depth, part in enumerate(parts):
            if not isinstance(value, dict) or part not in value:
                shown = ".".join(parts[: depth + 1])
                raise KubaniError(
                    f"{key} is not set",
                    f"no {shown!r} at scope {scope}",
                    "see what is set with `cluster-mgr config-get` on a parent key",
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
        expected = copy.deepcopy(self.hosts.data)
        body = _ensure(_ensure(_ensure(expected, "all"), "children"), group)
        _ensure(body, "hosts")[hostname] = variables
        style = self.hosts.style
        mapping = splice.walk(self.hosts.node, "all", "children", group, "hosts")
        spliced = splice.append_entry(
            self.hosts.text, mapping, hostname, variables, style.mapping, style.offset
        )

        def round_trip(document: Any) -> None:
            from kubani.inventory.rt_edit import add_host

            add_host(document, group, hostname, variables)

        self.hosts.edit(expected, round_trip, spliced)

    def remove_host(self, hostname: str) -> str:
        group = self.find_host(hostname)
        if group is None:
            raise KubaniError(
                f"cannot remove {hostname}",
                "it is not in the inventory",
                "check the name with `cluster-mgr validate` or `cluster-mgr discover`",
            )
        expected = copy.deepcopy(self.hosts.data)
        body = expected["all"]["children"][group]
        del body["hosts"][hostname]
        if not body["hosts"]:
            body["hosts"] = None
        mapping = splice.walk(self.hosts.node, "all", "children", group, "hosts")
        spliced = splice.remove_entry(self.hosts.text, mapping, hostname)

        def round_trip(document: Any) -> None:
            from kubani.inventory.rt_edit import remove_host

            remove_host(document, group, hostname)

        self.hosts.edit(expected, round_trip, spliced)
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
        file, prefix = self._target_for(parts[0], scope)
        full = [*prefix, *parts]
        expected = copy.deepcopy(file.data)
        node = expected
        for depth, part in enumerate(full[:-1]):
            if node.get(part) is None:
                node[part] = {}
            if not isinstance(node[part], dict):
                shown = ".".join(full[len(prefix) : depth + 1])
                raise KubaniError(
                    f"cannot set {key}",
                    f"{shown} is a {type(node[part]).__name__}, not a mapping",
                    f"set {shown} itself, e.g. with --type json",
                )
            node = node[part]
        node[full[-1]] = value

        def round_trip(document: Any) -> None:
            from kubani.inventory.rt_edit import set_path

            set_path(document, full, value)

        file.edit(expected, round_trip)
        return file.path

    def _target_for(self, top_key: str, scope: str) -> tuple[YamlFile, list[str]]:
        """The file and the path inside it where a variable at ``scope`` is written."""
        if scope in GROUP_SCOPES:
            side = self.group_vars(scope)
            if top_key in side.data:
                return side, []
            if scope == "all":
                return self.hosts, ["all", "vars"]
            return self.hosts, ["all", "children", scope, "vars"]
        group = self.find_host(scope)
        if group is None:
            raise self._unknown_scope(scope)
        side = self.host_vars(scope)
        if top_key in side.data:
            return side, []
        return self.hosts, ["all", "children", group, "hosts", scope]

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
            if effective != value:
                hidden.append(hostname)
        return hidden
