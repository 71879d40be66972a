#!/usr/bin/python
"""Whether a node is as the last complete provisioning run left it: its record holds the
digest this run would apply, and one of the K3s services runs. One call per node, reading
only (the node_state role writes the record with ansible.builtin.copy); the digest it was
given is returned, for the record a complete run writes."""

from __future__ import annotations

import json
from pathlib import Path

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
module: kubani_node_record
short_description: Compare a node's record of the last complete run with this run's digest
description:
  - Reads the record (JSON with a C(digest) key) and asks systemd whether any of the
    services is active. Changes nothing.
options:
  path:
    description: The record on the node.
    type: path
    required: true
  expected:
    description: The digest of what this run applies to the node.
    type: str
    required: true
  services:
    description: The node is current only while one of these units is active.
    type: list
    elements: str
    default: [k3s, k3s-agent]
  read:
    description: Read the record and the services; when false (a run that checks every
      step anyway) only I(expected) is returned and the node is not current.
    type: bool
    default: true
author: Kubani
"""

RETURN = r"""
current:
  description: The record holds I(expected) and a service is active.
  type: bool
  returned: always
recorded:
  description: The digest in the record (none when there is no readable record).
  type: str
  returned: always
expected:
  description: I(expected), as given.
  type: str
  returned: always
active:
  description: The services that are active.
  type: list
  elements: str
  returned: always
"""


def _recorded(path: str) -> str | None:
    try:
        with Path(path).open(encoding="utf-8") as handle:
            record = json.load(handle)
    except (OSError, ValueError):
        return None
    digest = record.get("digest") if isinstance(record, dict) else None
    return digest if isinstance(digest, str) else None


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "required": True},
            "expected": {"type": "str", "required": True},
            "services": {"type": "list", "elements": "str", "default": ["k3s", "k3s-agent"]},
            "read": {"type": "bool", "default": True},
        },
        supports_check_mode=True,
    )
    recorded = _recorded(module.params["path"]) if module.params["read"] else None
    active = []
    systemctl = module.get_bin_path("systemctl")
    if systemctl and recorded is not None:
        for service in module.params["services"]:
            rc, out, _ = module.run_command([systemctl, "is-active", service])
            if rc == 0 and out.strip() == "active":
                active.append(service)
    module.exit_json(
        changed=False,
        current=recorded == module.params["expected"] and bool(active),
        recorded=recorded,
        expected=module.params["expected"],
        active=active,
    )


if __name__ == "__main__":
    main()
