"""``doctor``: every preflight check as one checklist: the inventory, what doctor.yml found
on each node (read-only), and the live tailnet policy where credentials allow reading it."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kubani.ansible.doctor import Check, node_checks, unreachable
from kubani.errors import KubaniError
from kubani.vocabulary import Verdict

if TYPE_CHECKING:
    from kubani.ansible.runner import PlaybookRequest
    from kubani.inventory.document import InventoryDocument


@dataclass(frozen=True)
class Diagnosis:
    checks: list[Check]
    log: Path

    @property
    def failures(self) -> int:
        return sum(c.result == Verdict.FAIL for c in self.checks)

    @property
    def warnings(self) -> int:
        return sum(c.result == Verdict.WARN for c in self.checks)


def inventory_checks(document: InventoryDocument) -> list[Check]:
    _inventory, problems = document.validate()
    if not problems.errors:
        return [Check("inventory", "inventory", Verdict.OK, str(document.hosts_path))]
    return [
        Check("inventory", "inventory", Verdict.FAIL, f"{problem.where}: {problem.message}",
              "fix it (`cluster-mgr validate` lists every problem)")
        for problem in problems.errors
    ]  # fmt: skip


def tailnet_policy_checks(addresses: list[str]) -> list[Check]:
    """The live tailnet policy, when this environment has credentials to read it."""
    from kubani.operations.tailnet import live_policy_verdicts

    try:
        verdicts = live_policy_verdicts(addresses)
    except KubaniError as exc:
        return [Check("tailnet policy", "read", Verdict.WARN, exc.line(), None)]
    return [
        Check(
            "tailnet policy",
            v.path.what,
            Verdict.OK if v.allowed else Verdict.FAIL,
            f"{v.path.src} → {v.path.dst} {v.path.proto}/{v.path.ports}",
            None if v.allowed else "add the entries `cluster-mgr tailnet policy` prints",
        )
        for v in verdicts or []
    ]


def diagnose(document: InventoryDocument, request: PlaybookRequest) -> Diagnosis:
    """Run doctor.yml (``request``) and turn what it found into the checklist."""
    from kubani.ansible.runner import run_playbook
    from kubani.cluster.gather import inventory_nodes

    checks = inventory_checks(document)
    nodes = {n.name: n for n in inventory_nodes(document)}
    reports: dict[str, dict[str, Any]] = {}

    def collect(event: Any, _state: Any) -> None:
        if event.report is not None and event.host:
            reports[event.host] = event.report

    run = run_playbook(request, collect, threading.Event())
    failed_hosts = {f.host: f.message for f in run.state.failures}
    for name, node in nodes.items():
        if name in reports:
            checks += node_checks(name, node.role, node.tailscale_ip, reports[name])
        else:
            checks += unreachable(name, failed_hosts.get(name))
    checks += tailnet_policy_checks([n.tailscale_ip for n in nodes.values() if n.tailscale_ip])
    return Diagnosis(checks, run.log)
