"""The groups of a YAML inventory as Ansible reads them.

Every top-level key is a group (``all``, or one under it); a group has ``hosts``, ``vars``
and ``children``, and may be nested under any parent, or under several. A host belongs to
the groups that list it and to every group above those. Variables of a host's groups
apply shallowest first, groups of one depth by name, as Ansible orders them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubani.errors import KubaniError

ALL = "all"
KeyPath = tuple[str, ...]


class GroupShapeError(KubaniError):
    """A part of the inventory that is not shaped as Ansible expects."""


@dataclass
class Group:
    name: str
    places: list[KeyPath] = field(default_factory=list)  # where the group's bodies are
    parents: list[str] = field(default_factory=list)
    children: list[str] = field(default_factory=list)
    hosts: list[str] = field(default_factory=list)  # listed directly, in file order
    depth: int = 0
    listed: set[str] = field(default_factory=set)  # the same names, to look up in O(1)


def _mapping(value: Any, keys: KeyPath, path: Path) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise GroupShapeError(
            f"cannot read {path}",
            f"{'.'.join(keys)} must be a mapping, not {type(value).__name__}",
            None,
        )
    return value


# What unquoted YAML turns a would-be name into, for the message.
_READ_AS = {
    "int": "a number",
    "float": "a number",
    "bool": "true or false",
    "date": "a date",
    "datetime": "a date",
}


def _name(key: Any, keys: KeyPath, what: str, path: Path) -> str:
    """A group's or host's name: text, as Ansible requires (YAML reads 123, yes or ~
    unquoted as a number, a boolean or nothing)."""
    if isinstance(key, str):
        return key
    where = ".".join(keys) or "the top level"
    if key is None:
        raise GroupShapeError(
            f"cannot read {path}", f"{where} has a {what} with no name", "name it or remove it"
        )
    reading = _READ_AS.get(type(key).__name__, type(key).__name__)
    raise GroupShapeError(
        f"cannot read {path}",
        f"a {what} in {where} is read by YAML as {reading} ({key!s}), not a name; Ansible "
        "refuses it too",
        "put the name in quotes as you wrote it, e.g. '007' or 'yes'",
    )


class GroupTree:
    """Groups, their nesting and the places of hosts, read from hosts.yml's data."""

    def __init__(self, data: dict[str, Any], path: Path) -> None:
        self.path = path
        self.groups: dict[str, Group] = {ALL: Group(ALL)}
        self.host_places: dict[str, list[KeyPath]] = {}
        self._below: dict[str, set[str]] = {}
        self._ancestries: dict[tuple[str, ...], list[str]] = {}
        self._data = data
        plugin = data.get("plugin")
        if isinstance(plugin, str):
            raise GroupShapeError(
                f"cannot read {path}",
                f"it configures the inventory plugin {plugin}, which lists the hosts when "
                "Ansible runs; it is not a list of hosts",
                f"save the hosts it lists (ansible-inventory -i {path} --list > hosts.json) "
                "and import that: cluster-mgr inventory import hosts.json",
            )
        for key, body in data.items():
            name = _name(key, (), "group", path)
            self._visit(name, body, (name,), None if name == ALL else ALL)
        self._set_depths()

    def _group(self, name: str) -> Group:
        if name not in self.groups:
            self.groups[name] = Group(name)
        return self.groups[name]

    def _visit(self, name: str, body: Any, keys: KeyPath, parent: str | None) -> None:
        group = self._group(name)
        group.places.append(keys)
        if parent is not None and parent not in group.parents:
            group.parents.append(parent)
            self.groups[parent].children.append(name)
        content = _mapping(body, keys, self.path) or {}
        _mapping(content.get("vars"), (*keys, "vars"), self.path)
        hosts = _mapping(content.get("hosts"), (*keys, "hosts"), self.path) or {}
        for key, entry in hosts.items():
            hostname = _name(key, (*keys, "hosts"), "host", self.path)
            where = (*keys, "hosts", hostname)
            _mapping(entry, where, self.path)
            if hostname not in group.listed:
                group.listed.add(hostname)
                group.hosts.append(hostname)
            self.host_places.setdefault(hostname, []).append(where)
        children = _mapping(content.get("children"), (*keys, "children"), self.path) or {}
        for key, child_body in children.items():
            child = _name(key, (*keys, "children"), "group", self.path)
            if child == ALL:
                raise GroupShapeError(
                    f"cannot read {self.path}",
                    f"{'.'.join(keys)} lists `all` as a child; every group is already in it",
                    "remove that entry",
                )
            self._visit(child, child_body, (*keys, "children", child), name)

    def _set_depths(self) -> None:
        # Longest path from `all`, as Ansible counts depth; a cycle would never settle.
        for _ in range(len(self.groups) + 1):
            moved = False
            for group in self.groups.values():
                for child in group.children:
                    if self.groups[child].depth < group.depth + 1:
                        self.groups[child].depth = group.depth + 1
                        moved = True
            if not moved:
                return
        raise GroupShapeError(
            f"cannot read {self.path}",
            "its groups contain each other in a loop",
            "make the nesting of `children` a tree",
        )

    # ---- reading ---------------------------------------------------------------

    def body(self, keys: KeyPath) -> dict[str, Any]:
        node: Any = self._data
        for key in keys:
            node = (node or {}).get(key)
        return node if isinstance(node, dict) else {}

    def members(self, name: str) -> Iterator[str]:
        """Hosts in the group or any group under it, each once, in file order."""
        seen: set[str] = set()
        stack = [name]
        visited: set[str] = set()
        while stack:
            group = self.groups.get(stack.pop(0))
            if group is None or group.name in visited:
                continue
            visited.add(group.name)
            for host in group.hosts:
                if host not in seen:
                    seen.add(host)
                    yield host
            stack.extend(group.children)

    def _closure(self, start: Iterable[str], step: Callable[[Group], list[str]]) -> set[str]:
        """``start`` and every group reached from it by ``step`` (parents or children)."""
        found: set[str] = set()
        stack = list(start)
        while stack:
            name = stack.pop()
            if name in found or name not in self.groups:
                continue
            found.add(name)
            stack.extend(step(self.groups[name]))
        return found

    def ancestry(self, direct: list[str]) -> list[str]:
        """``direct`` groups and every group above them, `all` left out, in Ansible's order."""
        found = self._closure(direct, lambda group: group.parents) - {ALL}
        return sorted(found, key=lambda n: (self.groups[n].depth, n))

    def groups_of(self, hostname: str) -> list[str]:
        direct = tuple(keys[-3] for keys in self.host_places.get(hostname, []))
        found = self._ancestries.get(direct)
        if found is None:
            found = self._ancestries[direct] = self.ancestry(list(direct))
        return found

    def group_vars(self, name: str) -> dict[str, Any]:
        """The group's own ``vars``, from every place it is defined (later places win)."""
        merged: dict[str, Any] = {}
        for keys in self.groups[name].places if name in self.groups else []:
            merged.update(self.body(keys).get("vars") or {})
        return merged

    def host_inline_vars(self, hostname: str) -> dict[str, Any]:
        merged: dict[str, Any] = {}
        for keys in self.host_places.get(hostname, []):
            merged.update(self.body(keys) or {})
        return merged

    def first_place(self, name: str) -> KeyPath | None:
        group = self.groups.get(name)
        return group.places[0] if group and group.places else None

    def entry_in(self, hostname: str, names: set[str]) -> KeyPath | None:
        """Where ``hostname`` is listed in one of ``names`` or a group under them."""
        under: set[str] = set()
        for name in names:
            under.update(self._descendants(name))
        return next(
            (keys for keys in self.host_places.get(hostname, []) if keys[-3] in under), None
        )

    def _descendants(self, name: str) -> set[str]:
        if name not in self._below:
            self._below[name] = self._closure([name], lambda group: group.children)
        return self._below[name]
