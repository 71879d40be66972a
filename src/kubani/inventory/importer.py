"""``cluster-mgr inventory import``: another tool's inventory (k3s-ansible, Kubespray,
RKE2's, k0sctl's, or ``ansible-inventory --list`` output; YAML or INI) as Kubani's."""

from __future__ import annotations

import contextlib
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from kubani import userfiles
from kubani.errors import KubaniError
from kubani.inventory import k0sctl
from kubani.inventory.document import InventoryDocument
from kubani.inventory.fastyaml import dump_block
from kubani.inventory.foreign import (
    K0SCTL_API_GROUP,
    K3S_ANSIBLE,
    KUBANI_LAYOUT,
    Conversion,
    convert_cluster_vars,
    convert_host,
    is_inventory_listing,
    is_k0sctl,
    looks_like_ini,
    recognise,
)
from kubani.inventory.groups import ALL
from kubani.inventory.listing import META, as_inventory
from kubani.inventory.vault import VaultKey, password_file_from_environment, reveal_declared
from kubani.models.declared import declared_kind
from kubani.models.entries import HostEntry
from kubani.models.inventory import (
    CLUSTER_FIELDS,
    NODE_FIELDS,
    Inventory,
    build_inventory,
)
from kubani.models.node import Node
from kubani.models.problems import Problems
from kubani.vocabulary import BOOLEAN_WORDS, Role, ValueKind
from kubani.yamlsafe import safe_load

ANSIBLE_PREFIX = "ansible_"
_HEADER = (
    "---\n# Kubani inventory, converted from {source} ({tool}) by `cluster-mgr inventory\n"
    "# import`. Edit with cluster-mgr add-node / remove-node /\n"
    "# config-set, or by hand: comments are kept.\n"
)


# An INI inventory has no other way to write a boolean (`gpu=true` is the string "true"
# there), and Kubani's own inventory takes only true and false: read as the playbooks would.
_BOOLEAN_FIELDS = tuple(
    name for name in Node.model_fields if declared_kind([name]) is ValueKind.BOOL
)


def _typed_booleans(variables: dict[str, Any]) -> None:
    for name in _BOOLEAN_FIELDS:
        value = variables.get(name)
        if type(value) is str and value.strip().lower() in BOOLEAN_WORDS:
            variables[name] = BOOLEAN_WORDS[value.strip().lower()]


def _ansible_inventory() -> str:
    found = shutil.which("ansible-inventory")
    beside = Path(sys.executable).parent / "ansible-inventory"
    if found:
        return found
    if beside.exists():
        return str(beside)
    raise KubaniError(
        "cannot read an INI inventory",
        "ansible-inventory (part of ansible-core) is not installed",
        "install Kubani with its dependencies (scripts/setup.sh)",
    )


# Ansible's numeric host ranges (``node[01:50]``, ``node[0:98:2]``) and the most hosts an
# INI inventory may expand to here: Ansible would list every one, however many.
_NUMERIC_RANGE = re.compile(r"\[(\d+):(\d+)(?::(\d+))?\]")
MAX_IMPORTED_HOSTS = 10_000
_EXPORT_TIMEOUT_S = 120
_INI_FAILURE = "Failed to parse inventory with 'ini' plugin: "


def _refuse_huge_ranges(text: str, source: Path) -> None:
    total = 0
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith(("#", ";", "[")):
            continue
        spans = [
            (int(end) - int(start)) // max(1, int(step or 1)) + 1
            for start, end, step in _NUMERIC_RANGE.findall(stripped.split()[0])
        ]
        total += math.prod(max(0, span) for span in spans)
        if total > MAX_IMPORTED_HOSTS:
            raise KubaniError(
                f"cannot import {source}",
                f"its host ranges expand to more than {MAX_IMPORTED_HOSTS:,} hosts "
                f"({stripped.split()[0]})",
                "list the machines the cluster has, or narrow the ranges",
            )


def _ini_failure(stderr: str) -> str:
    """What Ansible's INI parser objected to, from its warning (the rest is its frame)."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    for line in lines:
        if _INI_FAILURE in line:
            return line.split(_INI_FAILURE, 1)[1]
    return lines[-1] if lines else "no output"


def _exported(source: Path, text: str) -> str:
    """An INI inventory as YAML, through Ansible's own parser (group vars stay on groups)."""
    _refuse_huge_ranges(text, source)
    command = [_ansible_inventory(), "-i", str(source), "--list", "--yaml", "--export"]
    # The INI parser only, and a file it cannot parse is an error (by default Ansible warns
    # and lists an empty inventory).
    environment = os.environ | {
        "ANSIBLE_INVENTORY_ENABLED": "ini",
        "ANSIBLE_INVENTORY_UNPARSED_FAILED": "true",
        "ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED": "true",
    }
    try:
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=_EXPORT_TIMEOUT_S,
            check=False,
            env=environment,
        )
    except subprocess.TimeoutExpired as exc:
        raise KubaniError(
            f"cannot read {source}",
            f"ansible-inventory did not finish in {_EXPORT_TIMEOUT_S} s",
            f"check it reads quickly: ansible-inventory -i {source} --list",
        ) from exc
    if done.returncode != 0 or not done.stdout.strip():
        reason = _ini_failure(done.stderr)
        raise KubaniError(f"cannot read {source}", f"ansible-inventory failed: {reason}", None)
    return done.stdout


def _document(source: Path, scratch: Path) -> InventoryDocument | Mapping[str, Any]:
    """The source as an inventory (an INI one through ansible-inventory), or a k0sctl
    cluster file's data."""
    try:
        text = userfiles.read_text(source)
    except (OSError, UnicodeDecodeError) as exc:
        raise KubaniError(f"cannot read {source}", str(exc), None) from exc
    if text.startswith(userfiles.BYTE_ORDER_MARK) or not source.is_file():
        # A pipe (`<(ssh box cat hosts.ini)`) reads once, and ansible-inventory takes a
        # byte-order mark for part of the first line: a copy, without the mark.
        text = text.removeprefix(userfiles.BYTE_ORDER_MARK)
        source = scratch / "source-inventory"
        source.write_text(text, encoding="utf-8")
    if K0SCTL_API_GROUP in text or META in text:
        with contextlib.suppress(yaml.YAMLError):  # not YAML: the inventory reader says why
            data = safe_load(text)
            if is_k0sctl(data):
                return dict(data)
            if is_inventory_listing(data):
                listed = scratch / "listed.yml"
                listed.write_text(dump_block(as_inventory(data, str(source))), encoding="utf-8")
                return InventoryDocument(listed)
    if not looks_like_ini(text):
        return InventoryDocument(source)
    exported = scratch / "hosts.yml"
    exported.write_text(_exported(source, text), encoding="utf-8")
    return InventoryDocument(exported)


def convert(source: Path, addresses: Mapping[str, str]) -> Conversion:
    """Read ``source`` and map it to Kubani's inventory; nothing is written."""
    with tempfile.TemporaryDirectory(prefix="kubani-import-") as scratch:
        document = _document(source, Path(scratch))
        if not isinstance(document, InventoryDocument):
            conversion = k0sctl.convert(document, addresses, str(source))
        else:
            conversion = _from_inventory(document, source, addresses)
    unknown = sorted(set(addresses) - conversion.known_names)
    if unknown:
        raise KubaniError(
            f"cannot import {source}",
            f"--address names {', '.join(unknown)}, which the inventory does not hold",
            "use the host's name as the source inventory writes it",
        )
    return conversion


def _from_inventory(
    document: InventoryDocument, source: Path, addresses: Mapping[str, str]
) -> Conversion:
    """A k3s-ansible, Kubespray or RKE2 inventory, or one with Kubani's groups
    (k3s-ansible's shape when it is none of these)."""
    tree = document.tree
    found = recognise(tree.groups)
    if found:
        tool = found[0]
    elif any(group in tree.groups for group in KUBANI_LAYOUT.server_groups):
        tool = KUBANI_LAYOUT
    else:
        tool = K3S_ANSIBLE
    servers = list(dict.fromkeys(h for g in tool.server_groups for h in tree.members(g)))
    agents = [
        h
        for h in dict.fromkeys(h for g in tool.agent_groups for h in tree.members(g))
        if h not in servers  # Kubespray lists its control planes as nodes too
    ]
    if not servers:
        raise KubaniError(
            f"cannot import {source}",
            "it has no group of control planes with hosts: `server` or `master` "
            "(k3s-ansible), `kube_control_plane` or `kube-master` (Kubespray), `masters` "
            "(lablabs.rke2), `rke2_servers` (rke2-ansible), `control_plane` (Kubani)",
            "put the control planes in one of these groups, or write a new inventory from "
            "your tailnet with `cluster-mgr init`",
        )
    conversion = Conversion(source_format=tool)
    cluster_scope = next((g for g in tool.cluster_groups if g in tree.groups), ALL)
    settings = document.group_variables(cluster_scope)
    if tool.settings_for:
        # How Ansible reaches the machines (ansible_user, ansible_port...) is not the tool's.
        connection = {k: v for k, v in settings.items() if k.startswith(ANSIBLE_PREFIX)}
        conversion.cluster_vars.update(connection)
        settings = {k: v for k, v in settings.items() if k not in connection}
        if settings:
            names = sorted(settings)
            shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
            conversion.notes.append(
                f"{shown}: {tool.name} settings for {tool.settings_for}; left out"
            )
    elif tool is KUBANI_LAYOUT:
        conversion.cluster_vars.update(settings)
    else:
        convert_cluster_vars(settings, conversion)
    _typed_booleans(conversion.cluster_vars)
    for role, hosts, target in (
        (Role.CONTROL_PLANE, servers, conversion.control_planes),
        (Role.WORKER, agents, conversion.workers),
    ):
        prefix = "server" if role is Role.CONTROL_PLANE else "agent"
        for number, key in enumerate(hosts, start=1):
            name, entry = convert_host(
                key, document.host_variables(key), f"{prefix}-{number}", addresses, conversion
            )
            if tool.settings_for:  # its settings, inherited or its own, stay behind
                for setting in tool.host_settings:
                    entry.pop(setting, None)
                for setting, value in settings.items():
                    if entry.get(setting) == value:
                        del entry[setting]
            _typed_booleans(entry)
            target[name] = entry
    return conversion


def check(conversion: Conversion, source: Path) -> Inventory:
    """The converted inventory validated as any Kubani inventory is; errors name the fix."""
    if conversion.missing_addresses:
        listed = ", ".join(conversion.missing_addresses)
        raise KubaniError(
            f"cannot import {source}",
            f"no Tailscale address is known for {listed}",
            "give each with --address HOST=100.x.y.z (`cluster-mgr discover` lists them)",
        )
    key = VaultKey(password_file_from_environment())
    problems = Problems()
    cluster_vars = reveal_declared(
        conversion.cluster_vars, CLUSTER_FIELDS, "all.vars", key, problems
    )
    entries = []
    for role, hosts in (
        (Role.CONTROL_PLANE, conversion.control_planes),
        (Role.WORKER, conversion.workers),
    ):
        for name, variables in hosts.items():
            where = f"all.children.{role.group}.hosts.{name}"
            merged = {**conversion.cluster_vars, **variables}
            entries.append(
                HostEntry(
                    role.group,
                    name,
                    reveal_declared(merged, NODE_FIELDS, where, key, problems),
                    where,
                )
            )
    model, problems = build_inventory(cluster_vars, entries, problems)
    if model is None:
        first = problems.errors[0]
        raise KubaniError(
            f"cannot import {source}",
            f"the converted inventory is not valid: {first.where}: {first.message}",
            "fix that value in the source inventory, then import again",
        )
    return model


def refuse_existing(target: Path) -> None:
    if target.exists():
        raise KubaniError(
            f"will not write {target}",
            "an inventory is already there",
            "choose another --output, or move that file away first",
        )


def write(conversion: Conversion, source: Path, target: Path) -> Path:
    """hosts.yml at ``target``, 0600 (it may hold the cluster token); never over a file."""
    from kubani.inventory.store import atomic_write

    refuse_existing(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    header = _HEADER.format(tool=conversion.source_format.name, source=source.name)
    text = header + dump_block(conversion.data())
    atomic_write(target, text.encode("utf-8"), backup=False, mode=0o600)
    return target
