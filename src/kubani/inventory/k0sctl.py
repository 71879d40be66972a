"""k0sctl's cluster file (github.com/k0sproject/k0sctl): its machines as Kubani's nodes.

k0sctl lists machines under ``spec.hosts``, each with a role (``controller``, ``worker``,
``controller+worker``, ``single``) and the way in (``ssh``: address, user, port, keyPath;
``localhost``; ``winRM`` for Windows workers). Its ``spec.k0s`` settings are k0s's and stay
behind. Names and Tailscale addresses follow the other imports (``foreign.convert_host``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kubani.errors import KubaniError
from kubani.inventory.foreign import (
    Conversion,
    ForeignFormat,
    convert_host,
)

K0SCTL = ForeignFormat("k0sctl", (), (), ())
_CONTROL_PLANE_ROLES = frozenset({"controller", "controller+worker", "single"})
_WORKER_ROLES = frozenset({"worker"})
# What a host's ssh block says, as the variables Ansible reaches a machine with.
_SSH_VARIABLES = (
    ("address", "ansible_host"),
    ("user", "ansible_user"),
    ("port", "ansible_port"),
    ("keyPath", "ansible_ssh_private_key_file"),
)


def convert(data: Mapping[str, Any], addresses: Mapping[str, str], source: str) -> Conversion:
    spec = data.get("spec")
    hosts = spec.get("hosts") if isinstance(spec, Mapping) else None
    if not isinstance(hosts, list) or not hosts:
        raise KubaniError(f"cannot import {source}", "its spec.hosts lists no machine", None)
    conversion = Conversion(source_format=K0SCTL)
    numbers = {"server": 0, "agent": 0}
    for index, host in enumerate(hosts):
        where = f"spec.hosts[{index}]"
        if not isinstance(host, Mapping):
            raise KubaniError(f"cannot import {source}", f"{where} is not a mapping", None)
        role = host.get("role")
        if isinstance(role, str) and role in _CONTROL_PLANE_ROLES:
            prefix, target = "server", conversion.control_planes
        elif isinstance(role, str) and role in _WORKER_ROLES:
            prefix, target = "agent", conversion.workers
        else:
            raise KubaniError(
                f"cannot import {source}",
                f"{where} has role {role!r}; k0sctl's roles are controller, worker, "
                "controller+worker and single",
                "fix the file, or import the others and add this machine with add-node",
            )
        if isinstance(host.get("winRM"), Mapping):
            conversion.notes.append(f"{where}: a Windows machine (winRM); left out")
            continue
        variables = _ssh_variables(host.get("ssh"))
        key = str(host.get("hostname") or variables.get("ansible_host") or f"{prefix}-host")
        numbers[prefix] += 1
        name, entry = convert_host(
            key, variables, f"{prefix}-{numbers[prefix]}", addresses, conversion
        )
        if name in conversion.control_planes or name in conversion.workers:
            raise KubaniError(
                f"cannot import {source}", f"two machines would both be named {name}", None
            )
        target[name] = entry
    if isinstance(spec, Mapping) and spec.get("k0s"):
        conversion.notes.append("spec.k0s: k0s settings; left out")
    if not conversion.control_planes:
        raise KubaniError(
            f"cannot import {source}",
            "no machine has the role controller, controller+worker or single",
            None,
        )
    return conversion


def _ssh_variables(ssh: object) -> dict[str, Any]:
    if not isinstance(ssh, Mapping):
        return {}
    return {name: ssh[field] for field, name in _SSH_VARIABLES if ssh.get(field) not in (None, "")}
