"""A digest of everything a provisioning run applies to one node: the node's variables as the
inventory, group_vars and extra vars give them (unrendered: the same text gives the same
digest, and nothing is templated that could fail or vary), the node groups, and the
playbooks, roles and plugins that apply them, plus any files named (the air-gap release
checksums). A node whose record of the last complete run holds this digest, and whose K3s
runs, has nothing to apply (see the node_state role).

    lookup('kubani_state_digest', globs=['/srv/k3s/sha256sum-*.txt'])
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase

DOCUMENTATION = """
name: kubani_state_digest
short_description: Digest of what a provisioning run applies to the current node
description:
  - The node's variables (unrendered), its groups, the playbooks, roles and plugins, and the
    files the globs match, as one SHA-256 hex digest.
options:
  globs:
    description: Controller files that also decide the node's state (release checksums).
    type: list
    elements: str
    default: []
"""

RETURN = """
_raw:
  description: One SHA-256 hex digest.
  type: list
  elements: str
"""

# Variables that say how this run reaches the node or which play is running, not what the
# node should be; and the switch that asks for a full run.
_NOT_STATE = frozenset(
    {
        "environment",
        "group_names",
        "groups",
        "hostvars",
        "inventory_dir",
        "inventory_file",
        "inventory_hostname_short",
        "omit",
        "play_hosts",
        "playbook_dir",
        "vars",
        "kubani_full_run",
    }
)
_NOT_STATE_PREFIXES = ("ansible_", "role_", "node_state_")
_NODE_GROUPS = ("control_plane", "workers")
# The Ansible tree that applies the state, relative to the folder above the playbooks.
_TREE = ("playbooks", "roles", "filter_plugins", "lookup_plugins", "strategy_plugins")


def _plain(value: Any) -> Any:
    """Ansible's tagged strings, ints, lists and dicts as plain JSON types."""
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [_plain(item) for item in value]
        return sorted(items, key=repr) if isinstance(value, set | frozenset) else items
    if value is None or isinstance(value, bool | int | float):
        return value
    return str(value)


def _tree_files(root: Path) -> Iterator[Path]:
    for name in _TREE:
        folder = root / name
        if folder.is_dir():
            for path in sorted(folder.rglob("*")):
                if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                    yield path


class LookupModule(LookupBase):
    def run(
        self, terms: list[Any], variables: dict[str, Any] | None = None, **kwargs: Any
    ) -> list[str]:
        if variables is None:
            raise AnsibleLookupError("kubani_state_digest needs the task's variables")
        self.set_options(var_options=variables, direct=kwargs)
        # Facts (cached from earlier runs, so present on some runs only) are the node's
        # report, not its desired state; some are also set as variables without the prefix.
        facts = variables.get("ansible_facts") or {}
        node = {
            name: _plain(value)
            for name, value in variables.items()
            if name not in _NOT_STATE
            and not name.startswith(_NOT_STATE_PREFIXES)
            and name not in facts
        }
        groups = variables.get("groups", {})
        node["groups"] = {name: sorted(map(str, groups.get(name, []))) for name in _NODE_GROUPS}
        node["group_names"] = sorted(map(str, variables.get("group_names", [])))
        digest = hashlib.sha256(json.dumps(node, sort_keys=True).encode())

        root = Path(str(variables.get("playbook_dir", "."))).resolve().parent
        files = list(_tree_files(root))
        for pattern in self.get_option("globs"):
            pattern_path = Path(str(pattern))
            found = pattern_path.parent.glob(pattern_path.name)
            files += sorted(path for path in found if path.is_file())
        for path in files:
            digest.update(
                str(path.relative_to(root) if path.is_relative_to(root) else path).encode()
            )
            try:
                content = path.read_bytes()
            except OSError as exc:
                raise AnsibleLookupError(
                    f"cannot read {path} to tell whether this run changes anything: "
                    f"{exc.strerror or exc}"
                ) from exc
            digest.update(hashlib.sha256(content).digest())
        return [digest.hexdigest()]
