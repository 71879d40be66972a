#!/usr/bin/python
"""Whether a node is as the last complete provisioning run left it: its record holds the
digest this run would apply, and one of the K3s services runs. One call per node, reading
only (the node_state role writes the record with ansible.builtin.copy); the digest it was
given is returned, for the record a complete run writes. On the control plane whose API
decides, the same call lists the Nodes the API reports Ready, so that a run with nothing
to do costs one connection per node."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

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
  api:
    description: Also list the Nodes the Kubernetes API reports Ready (whatever I(read)
      says). Not given, the API is not asked.
    type: dict
    suboptions:
      url:
        description: The API's C(/api/v1/nodes) address.
        type: str
        required: true
      client_cert:
        description: The client certificate (PEM) for HTTPS.
        type: path
      client_key:
        description: Its key.
        type: path
      ca_path:
        description: The CA that signed the API's serving certificate.
        type: path
      timeout:
        description: Seconds to wait for the answer.
        type: int
        default: 10
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
ready_nodes:
  description: The Nodes the API reports Ready; empty when I(api) was not given or the API
    did not answer with a list.
  type: list
  elements: str
  returned: always
api_error:
  description: Why the API gave no list (it was asked and did not answer 200 with one).
  type: str
  returned: when the API was asked and failed
"""


def _recorded(path: str) -> str | None:
    try:
        with Path(path).open(encoding="utf-8") as handle:
            record = json.load(handle)
    except (OSError, ValueError):
        return None
    digest = record.get("digest") if isinstance(record, dict) else None
    return digest if isinstance(digest, str) else None


def _ready(node: Any) -> bool:
    status = node.get("status") if isinstance(node, Mapping) else None
    conditions = status.get("conditions") if isinstance(status, Mapping) else None
    for condition in conditions if isinstance(conditions, list) else []:
        if isinstance(condition, Mapping) and condition.get("type") == "Ready":
            return condition.get("status") == "True"
    return False


def ready_nodes(listed: Any) -> list[str]:
    """The names of the Nodes a ``GET /api/v1/nodes`` reply reports Ready."""
    items = listed.get("items") if isinstance(listed, Mapping) else None
    names: list[str] = []
    for node in items if isinstance(items, list) else []:
        metadata = node.get("metadata") if isinstance(node, Mapping) else None
        name = metadata.get("name") if isinstance(metadata, Mapping) else None
        if isinstance(name, str) and _ready(node):
            names.append(name)
    return names


def _ask(api: Mapping[str, Any]) -> tuple[list[str], str | None]:
    """The Ready Nodes the API lists, or none and why."""
    context = None
    if api["url"].startswith("https:"):
        context = ssl.create_default_context(cafile=api.get("ca_path"))
        if api.get("client_cert"):
            context.load_cert_chain(api["client_cert"], api.get("client_key"))
    # The API is the node's own listener: a proxy set for the node's other traffic
    # (http_proxy and the like, which root's environment may carry) never applies.
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context)
    )
    request = urllib.request.Request(api["url"], headers={"Accept": "application/json"})
    with opener.open(request, timeout=api["timeout"]) as reply:
        listed = json.loads(reply.read())
    if not isinstance(listed, Mapping) or not isinstance(listed.get("items"), list):
        return [], "the reply is not a list of Nodes"
    return ready_nodes(listed), None


def _asked(api: Mapping[str, Any]) -> tuple[list[str], str | None]:
    # Any failure is an answer (no Node counts as Ready, so every step runs and the steps
    # that need the API say what is wrong), not a failure of the check.
    try:
        return _ask(api)
    except urllib.error.HTTPError as error:
        return [], f"HTTP {error.code} {error.reason}"
    except (OSError, ValueError) as error:  # ssl.SSLError and URLError are OSErrors
        return [], str(getattr(error, "reason", None) or error)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "required": True},
            "expected": {"type": "str", "required": True},
            "services": {"type": "list", "elements": "str", "default": ["k3s", "k3s-agent"]},
            "read": {"type": "bool", "default": True},
            "api": {
                "type": "dict",
                "options": {
                    "url": {"type": "str", "required": True},
                    "client_cert": {"type": "path"},
                    "client_key": {"type": "path"},
                    "ca_path": {"type": "path"},
                    "timeout": {"type": "int", "default": 10},
                },
            },
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
    ready, api_error = _asked(module.params["api"]) if module.params["api"] else ([], None)
    module.exit_json(
        changed=False,
        current=recorded == module.params["expected"] and bool(active),
        recorded=recorded,
        expected=module.params["expected"],
        active=active,
        ready_nodes=ready,
        **({"api_error": api_error} if api_error else {}),
    )


if __name__ == "__main__":
    main()
