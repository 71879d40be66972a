"""An Ansible inventory (hosts.yml plus group_vars/ and host_vars/) held for editing.

Variables resolve as Ansible resolves them, lowest first: ``all.vars`` < the ``vars`` of
the host's other groups in hosts.yml < ``group_vars/all`` < ``group_vars/`` of the other
groups < the host's entry in hosts.yml < ``host_vars/<host>``; groups shallowest first,
then by name. Groups may be nested at any depth (see ``groups``); ``group_vars/<name>`` may be a
file or a folder of files. Top-level keys replace, as with Ansible's default
``hash_behaviour``. ``!vault`` and ``!unsafe`` values are kept as written.

Reads use libyaml. Edits splice the text where they can (appending or deleting a host in
a block mapping) and otherwise go through ruamel's round-trip editor; either way the new
text is parsed again and must equal the expected data before anything is written.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from kubani.collector import paused
from kubani.errors import KubaniError
from kubani.inventory import splice
from kubani.inventory.fastyaml import (
    EXPANSION_LIMIT,
    DuplicateKeyError,
    expanded_size,
    load_with_nodes,
)
from kubani.inventory.foreign import (
    IMPORT_HINT,
    INI_HINT,
    is_inventory_listing,
    is_k0sctl,
    looks_like_ini,
    recognise,
)
from kubani.inventory.groups import ALL, GroupShapeError, GroupTree, KeyPath
from kubani.inventory.paths import parse_key_path
from kubani.inventory.style import IndentStyle, guess_style
from kubani.inventory.vault import VaultKey, password_file_from_environment, reveal_declared
from kubani.models.entries import HostEntry
from kubani.models.problems import Problems
from kubani.userfiles import BYTE_ORDER_MARK
from kubani.vocabulary import (
    DEFAULT_CLUSTER_NAME,
    INVENTORY_FILE_MAX_BYTES,
    NODE_GROUPS,
    Role,
)

if TYPE_CHECKING:
    from kubani.models.inventory import Inventory

GROUP_SCOPES: tuple[str, ...] = (ALL, *NODE_GROUPS)
# Files in a group_vars/<group>/ or host_vars/<host>/ folder that Ansible reads.
_VARS_SUFFIXES = frozenset({"", ".yml", ".yaml", ".json"})
# A file larger than this is refused before it is read: 10,000 nodes take about 1.5 MiB.
MAX_FILE_BYTES = INVENTORY_FILE_MAX_BYTES
# Set by group membership, not by a variable.
_STRUCTURAL_KEYS = frozenset({"hostname", "role"})


class InventoryFormatError(KubaniError):
    """A file that is not YAML, or not shaped like a Kubani inventory."""


def _line_and_problem(exc: Exception) -> tuple[str, str]:
    """`` at line N`` (or nothing) and what a YAML reader (PyYAML or ruamel) found wrong."""
    mark = getattr(exc, "problem_mark", None)
    line = f" at line {mark.line + 1}" if mark is not None else ""
    return line, getattr(exc, "problem", None) or (str(exc).splitlines() or [type(exc).__name__])[0]


def _parse(text: str, path: Path) -> tuple[Any, yaml.Node | None]:
    if looks_like_ini(text):
        raise InventoryFormatError(
            f"cannot read {path}",
            "it is an INI inventory; Kubani reads YAML ones",
            INI_HINT.format(path=path),
        )
    try:
        data, node = load_with_nodes(text)
    except DuplicateKeyError as exc:
        raise InventoryFormatError(f"cannot read {path}", str(exc), "keep one of them") from exc
    except yaml.YAMLError as exc:
        line, reason = _line_and_problem(exc)
        if reason == "but found another document":
            raise InventoryFormatError(
                f"cannot read {path}",
                f"it holds more than one YAML document (another starts{line})",
                "keep the inventory in the first document; move the rest to another file",
            ) from exc
        raise InventoryFormatError(
            f"cannot read {path}", f"not valid YAML{line}: {reason}", "fix the file by hand"
        ) from exc
    except RecursionError as exc:
        raise InventoryFormatError(
            f"cannot read {path}", "its values are nested too deeply", "fix the file by hand"
        ) from exc
    # Aliases need anchors, and anchors are written with `&`: most files have none.
    if "&" in text and expanded_size(node) > EXPANSION_LIMIT:
        raise InventoryFormatError(
            f"cannot read {path}",
            f"its YAML aliases expand to more than {EXPANSION_LIMIT:,} values (an alias bomb?)",
            "write the values out, or use fewer nested aliases",
        )
    return data, node


@dataclass
class YamlFile:
    """One YAML file of the inventory: its text now, the data it reads as, its first bytes.

    ``text`` has ``\n`` line ends and no byte-order mark, whatever the file has; a file
    written on Windows (``\r\n``, often a mark first) is written back the way it came, so
    that an edit changes only the lines it means to."""

    path: Path
    text: str
    data: dict[str, Any]
    node: yaml.Node | None
    original: bytes | None
    newline: str = "\n"
    byte_order_mark: bool = False

    @classmethod
    def read(cls, path: Path) -> YamlFile:
        if not path.exists():
            return cls(path=path, text="", data={}, node=None, original=None)
        try:
            if not path.is_file():
                raise InventoryFormatError(
                    f"cannot read {path}",
                    "it is not a regular file (a device, FIFO or socket?): reading it could "
                    "hang or never end",
                    "replace it with a YAML file, or move it out of the inventory",
                )
            size = path.stat().st_size
            if size > MAX_FILE_BYTES:
                raise InventoryFormatError(
                    f"cannot read {path}",
                    f"it is {size / 2**20:.0f} MiB; inventory files are text of at most "
                    f"{MAX_FILE_BYTES // 2**20} MiB",
                    "move what is not inventory out of it",
                )
            raw = path.read_bytes()
        except OSError as exc:
            raise InventoryFormatError(
                f"cannot read {path}", exc.strerror or str(exc), "check its permissions"
            ) from exc
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InventoryFormatError(f"cannot read {path}", "not UTF-8 text", None) from exc
        marked = text.startswith(BYTE_ORDER_MARK)
        newline = "\r\n" if "\r\n" in text else "\n"
        text = text.removeprefix(BYTE_ORDER_MARK).replace("\r\n", "\n")
        data, node = _parse(text, path)
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise InventoryFormatError(
                f"cannot read {path}",
                f"the top level is a {type(data).__name__}, not a mapping",
                "an inventory file starts with `all:`",
            )
        if is_k0sctl(data):
            raise InventoryFormatError(
                f"cannot read {path}",
                "it is a k0sctl cluster file, not an Ansible inventory",
                IMPORT_HINT.format(path=path),
            )
        if is_inventory_listing(data):
            raise InventoryFormatError(
                f"cannot read {path}",
                "it is `ansible-inventory --list` output (a dynamic inventory's JSON), "
                "which Ansible runs as a script, not a file it reads",
                IMPORT_HINT.format(path=path),
            )
        return cls(path, text, data, node, raw, newline, marked)

    @property
    def style(self) -> IndentStyle:
        return guess_style(self.text)

    def render(self) -> bytes:
        text = self.text.replace("\n", self.newline) if self.newline != "\n" else self.text
        return ((BYTE_ORDER_MARK if self.byte_order_mark else "") + text).encode("utf-8")

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
        from ruamel.yaml.error import YAMLError as RoundTripError

        from kubani.inventory.yamlio import dump_round_trip, load_round_trip

        try:
            document, style = load_round_trip(self.text)
        except RoundTripError as exc:
            # libyaml and ruamel disagree on a few texts (a tab after a key): the file reads,
            # but the editor that keeps comments cannot take it.
            line, reason = _line_and_problem(exc)
            raise KubaniError(
                f"cannot edit {self.path} safely",
                f"its YAML{line} is read differently by the comment-keeping editor: {reason}",
                "make this change by hand, or tidy that line (a tab or odd spacing?) and retry",
            ) from None
        except RecursionError:
            raise self._too_deep_to_edit() from None
        try:
            round_trip(document)
            edited = dump_round_trip(document, style)
        except RecursionError:
            raise self._too_deep_to_edit() from None
        if not self.commit(edited, expected):
            raise KubaniError(
                f"cannot edit {self.path} safely",
                "the edited file would not read back as intended",
                "make this change by hand, and report it with the file",
            )

    def _too_deep_to_edit(self) -> KubaniError:
        # ruamel recurses once per level, several calls deep: a few hundred levels of nested
        # values exhaust Python's recursion limit, where PyYAML's C reader still reads them.
        return KubaniError(
            f"cannot edit {self.path} safely",
            "its values (or the new one) are nested too deeply for the comment-keeping editor",
            "make this change by hand, or flatten the deepest values",
        )


def _copied_path(root: dict[str, Any], keys: KeyPath) -> tuple[dict[str, Any], dict[str, Any]]:
    """A copy of ``root`` that may be changed along ``keys`` (each mapping on the way is
    copied, a missing or empty one made) and the mapping at the end of them. The rest is
    shared with ``root``, which stays as it was: a deep copy of a 1,000-node file costs more
    than the edit."""
    top = node = dict(root)
    for key in keys:
        child = node.get(key)
        node[key] = {} if child is None else dict(child)
        node = node[key]
    return top, node


def _folder_vars_files(folder: Path) -> list[Path]:
    """A vars folder's files as Ansible reads them: sorted, recursive, hidden and backup
    files left out, only the suffixes it loads."""
    found: list[Path] = []
    try:
        paths = sorted(folder.iterdir(), key=lambda p: p.name)
    except OSError as exc:
        raise InventoryFormatError(f"cannot read {folder}", exc.strerror or str(exc), None) from exc
    for path in paths:
        if path.name.startswith(".") or path.name.endswith("~"):
            continue
        if path.is_dir() and not path.suffix:
            found += _folder_vars_files(path)
        elif path.is_file() and path.suffix in _VARS_SUFFIXES:
            found.append(path)
    return found


def _vars_file_names(present: frozenset[str], name: str) -> list[str]:
    """The files Ansible reads for ``name`` in group_vars/ or host_vars/, in its order."""
    return [f for f in (name, f"{name}.yml", f"{name}.yaml", f"{name}.json") if f in present]


class InventoryDocument:
    """The inventory's files, read for inspection or for a change under a lock."""

    def __init__(self, hosts_path: Path) -> None:
        self.hosts_path = hosts_path
        self.root = hosts_path.parent
        with paused():
            self.hosts = YamlFile.read(hosts_path)
        self._vars_files: dict[tuple[str, str], list[YamlFile]] = {}
        self._listings: dict[str, tuple[frozenset[str], frozenset[str]]] = {}
        self._tree: GroupTree | None = None
        self._tree_of: object = None
        self.problems: Problems | None = None  # set by edit_inventory once the edit is checked
        with paused():
            _ = self.tree

    @property
    def tree(self) -> GroupTree:
        """The groups as the file reads now (rebuilt after each edit of hosts.yml)."""
        if self._tree is None or self._tree_of is not self.hosts.data:
            try:
                self._tree = GroupTree(self.hosts.data, self.hosts.path)
            except GroupShapeError as exc:
                raise InventoryFormatError(exc.what, exc.why, exc.fix) from exc
            self._tree_of = self.hosts.data
        return self._tree

    # ---- files ---------------------------------------------------------------

    def _listing(self, folder: str) -> tuple[frozenset[str], frozenset[str]]:
        """Files and folders in group_vars/ or host_vars/."""
        if folder not in self._listings:
            files: set[str] = set()
            folders: set[str] = set()
            try:
                for entry in os.scandir(self.root / folder):
                    (folders if entry.is_dir() else files).add(entry.name)
            except (FileNotFoundError, NotADirectoryError):
                pass
            except OSError as exc:
                raise InventoryFormatError(
                    f"cannot read {self.root / folder}", exc.strerror or str(exc), None
                ) from exc
            self._listings[folder] = (frozenset(files), frozenset(folders))
        return self._listings[folder]

    def _layers(self, folder: str, name: str) -> list[YamlFile]:
        """The files holding ``name``'s variables, lowest precedence first (none is fine:
        a variable set where no file defines it goes into hosts.yml)."""
        key = (folder, name)
        layers = self._vars_files.get(key)
        if layers is None:
            files, folders = self._listing(folder)
            if not files and not folders:
                return []
            names = _vars_file_names(files, name)
            paths = [self.root / folder / n for n in names]
            if name in folders:
                paths += _folder_vars_files(self.root / folder / name)
            layers = self._vars_files[key] = [YamlFile.read(p) for p in paths]
        return layers

    def _file_vars(self, folder: str, name: str) -> dict[str, Any]:
        merged: dict[str, Any] = {}
        for layer in self._layers(folder, name):
            merged.update(layer.data)
        return merged

    def group_vars(self, group: str) -> dict[str, Any]:
        """What group_vars/ holds for ``group``."""
        return self._file_vars("group_vars", group)

    def host_vars(self, hostname: str) -> dict[str, Any]:
        """What host_vars/ holds for ``hostname``."""
        return self._file_vars("host_vars", hostname)

    def files(self) -> list[YamlFile]:
        return [self.hosts, *(f for layers in self._vars_files.values() for f in layers)]

    def changed_files(self) -> list[YamlFile]:
        return [f for f in self.files() if f.changed]

    # ---- reading -------------------------------------------------------------

    def iter_hosts(self) -> Iterator[tuple[str, str, dict[str, Any]]]:
        """Every node: its group (control_plane or workers), name and inline variables."""
        tree = self.tree
        for group in NODE_GROUPS:
            for hostname in tree.members(group):
                yield group, hostname, tree.host_inline_vars(hostname)

    def find_host(self, hostname: str) -> str | None:
        """The node group holding ``hostname``, if any."""
        tree = self.tree
        return next((g for g in NODE_GROUPS if hostname in tree.members(g)), None)

    def _unknown_scope(self, scope: str) -> KubaniError:
        return KubaniError(
            f"unknown scope {scope!r}",
            "it is neither all, control_plane, workers nor a host of the inventory",
            "run `cluster-mgr validate` to list the hosts",
        )

    def _layered(self, groups: list[str]) -> dict[str, Any]:
        """What hosts.yml gives ``groups`` (`all` first, then in Ansible's order), then what
        group_vars/ gives them, in the same order: Ansible applies the files above every
        group's inline ``vars`` (``ansible-inventory`` shows it; the tests hold us to it)."""
        tree = self.tree
        effective: dict[str, Any] = {}
        for group in (ALL, *groups):
            effective.update(tree.group_vars(group))
        for group in (ALL, *groups):
            effective.update(self.group_vars(group))
        return effective

    def scope_vars(self, scope: str) -> dict[str, Any]:
        """The effective variables at a scope: ``all``, a node group, or a node."""
        if scope in GROUP_SCOPES:
            return self.group_variables(scope)
        if self.find_host(scope) is None:
            raise self._unknown_scope(scope)
        return self.host_variables(scope)

    @property
    def cluster_name(self) -> str:
        return str(self.scope_vars(ALL).get("cluster_name") or DEFAULT_CLUSTER_NAME)

    def group_variables(self, group: str) -> dict[str, Any]:
        """What a host of ``group`` (and of no other group) would see."""
        return self._layered([] if group == ALL else self.tree.ancestry([group]))

    def host_variables(self, hostname: str) -> dict[str, Any]:
        """Everything ``hostname`` sees, whichever groups list it."""
        effective = self._layered(self.tree.groups_of(hostname))
        effective.update(self.tree.host_inline_vars(hostname))
        effective.update(self.host_vars(hostname))
        return effective

    def host_entries(self) -> list[HostEntry]:
        tree = self.tree
        by_groups: dict[tuple[str, ...], dict[str, Any]] = {}
        entries = []
        for group, hostname, inline in self.iter_hosts():
            groups = tuple(tree.groups_of(hostname))
            if groups not in by_groups:
                by_groups[groups] = self._layered(list(groups))
            variables = {**by_groups[groups], **inline, **self.host_vars(hostname)}
            place = tree.entry_in(hostname, {group})
            where = ".".join(place) if place else f"{group}.hosts.{hostname}"
            entries.append(HostEntry(group, hostname, variables, where))
        return entries

    def validate(self, vault: VaultKey | None = None) -> tuple[Inventory | None, Problems]:
        with paused():
            return self._validate(vault)

    def _validate(self, vault: VaultKey | None) -> tuple[Inventory | None, Problems]:
        # The models (pydantic) load here, not with the module: reading needs none of them.
        from kubani.models.inventory import CLUSTER_FIELDS, NODE_FIELDS, build_inventory

        key = vault or VaultKey(password_file_from_environment())
        problems = Problems()
        foreign = recognise(self.tree.groups)
        control_plane = Role.CONTROL_PLANE.group
        if foreign and not any(group == control_plane for group, _, _ in self.iter_hosts()):
            tool, groups = foreign
            problems.error(
                "all.children",
                f"this is a {tool.name} inventory (groups {', '.join(groups)}); Kubani's "
                "groups are control_plane and workers "
                f"(fix: {IMPORT_HINT.format(path=self.hosts_path)})",
            )
        cluster_vars = reveal_declared(
            self.scope_vars(ALL), CLUSTER_FIELDS, "all.vars", key, problems
        )
        entries = [
            HostEntry(
                e.group,
                e.hostname,
                reveal_declared(e.variables, NODE_FIELDS, e.where, key, problems),
                e.where,
            )
            for e in self.host_entries()
        ]
        return build_inventory(cluster_vars, entries, problems)

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
        place = self.tree.first_place(group) or (ALL, "children", group)
        keys = (*place, "hosts")
        expected, hosts = _copied_path(self.hosts.data, keys)
        hosts[hostname] = variables
        style = self.hosts.style
        mapping = splice.walk(self.hosts.node, *keys)
        spliced = splice.append_entry(
            self.hosts.text, mapping, hostname, variables, style.mapping, style.offset
        )

        def round_trip(document: Any) -> None:
            from kubani.inventory.rt_edit import add_host

            add_host(document, place, hostname, variables)

        self.hosts.edit(expected, round_trip, spliced)

    def remove_host(self, hostname: str) -> str:
        """Take ``hostname`` out of every group that lists it; its node group is returned."""
        group = self.find_host(hostname)
        if group is None:
            raise KubaniError(
                f"cannot remove {hostname}",
                "it is not in the inventory",
                "check the name with `cluster-mgr validate` or `cluster-mgr discover`",
            )
        while places := self.tree.host_places.get(hostname):
            self._remove_entry(places[-1])
        return group

    def _remove_entry(self, entry: KeyPath) -> None:
        *group_keys, _, hostname = entry
        hosts_keys = (*group_keys, "hosts")
        expected, body = _copied_path(self.hosts.data, tuple(group_keys))
        body["hosts"] = {k: v for k, v in body["hosts"].items() if k != hostname} or None
        mapping = splice.walk(self.hosts.node, *hosts_keys)
        spliced = splice.remove_entry(self.hosts.text, mapping, hostname)

        def round_trip(document: Any) -> None:
            from kubani.inventory.rt_edit import remove_host

            remove_host(document, tuple(group_keys), hostname)

        self.hosts.edit(expected, round_trip, spliced)

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
        node: Any = file.data
        for depth, part in enumerate(full[:-1]):
            node = node.get(part)
            if node is not None and not isinstance(node, dict):
                shown = ".".join(full[len(prefix) : depth + 1])
                raise KubaniError(
                    f"cannot set {key}",
                    f"{shown} is a {type(node).__name__}, not a mapping",
                    f"set {shown} itself, e.g. with --type json",
                )
            if node is None:
                break
        expected, parent = _copied_path(file.data, tuple(full[:-1]))
        parent[full[-1]] = value

        def round_trip(document: Any) -> None:
            from kubani.inventory.rt_edit import set_path

            set_path(document, full, value)

        file.edit(expected, round_trip)
        return file.path

    def _defining(self, folder: str, name: str, top_key: str) -> YamlFile | None:
        """The file of group_vars/ or host_vars/ whose value for ``top_key`` wins."""
        layers = self._layers(folder, name)
        return next((f for f in reversed(layers) if top_key in f.data), None)

    def _target_for(self, top_key: str, scope: str) -> tuple[YamlFile, list[str]]:
        """The file and the path inside it where a variable at ``scope`` is written."""
        tree = self.tree
        if scope in GROUP_SCOPES:
            side = self._defining("group_vars", scope, top_key)
            if side is not None:
                return side, []
            places = tree.groups[scope].places if scope in tree.groups else []
            defining = [p for p in places if top_key in (tree.body(p).get("vars") or {})]
            place = defining or places or [(ALL,) if scope == ALL else (ALL, "children", scope)]
            return self.hosts, [*place[-1], "vars"]
        group = self.find_host(scope)
        if group is None:
            raise self._unknown_scope(scope)
        side = self._defining("host_vars", scope, top_key)
        if side is not None:
            return side, []
        places = tree.host_places.get(scope, [])
        defining = [p for p in places if top_key in tree.body(p)]
        entry = defining[-1] if defining else tree.entry_in(scope, {group})
        return self.hosts, list(entry or (ALL, "children", group, "hosts", scope))

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
