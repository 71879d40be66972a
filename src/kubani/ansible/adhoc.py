"""One Ansible module on some hosts (``ansible -m``), its results read from Kubani's
callback plugin.

Nothing is kept: module results (a fetched kubeconfig, facts) may hold secrets, so they
stay in memory and the output goes to a private temporary folder, unlike playbook runs.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubani.ansible.process import ansible_environment, run_ansible
from kubani.ansible.project import ansible_dir, ansible_program


@dataclass
class ModuleRun:
    rc: int
    ok: dict[str, dict[str, Any]] = field(default_factory=dict)  # host -> module result
    failed: dict[str, str] = field(default_factory=dict)  # host -> message
    # The end of Ansible's output when it failed (an inventory it could not read, ...).
    tail: str = ""

    @property
    def why(self) -> str:
        return f"ansible ended with exit status {self.rc}" + (f": {self.tail}" if self.tail else "")


def run_module(
    inventory: Path, pattern: str, module: str, args: str, become: bool = False
) -> ModuleRun:
    project = ansible_dir(near=inventory.parent)
    argv = [
        ansible_program("ansible"),
        pattern,
        "-i",
        str(inventory.resolve()),
        "-m",
        module,
        "-a",
        args,
        *(["--become"] if become else []),
    ]
    env = ansible_environment(
        {"ANSIBLE_CONFIG": str(project / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"},
        whole_results=True,
    )
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="kubani-adhoc-") as private:
        Path(private).chmod(0o700)
        log = Path(private) / "ansible.log"
        outcome = run_ansible(argv, env, project, log, results.append)
        # Only a failed run's output: a successful one shows the results (a kubeconfig).
        tail = _last_lines(log) if outcome.rc else ""
    run = ModuleRun(outcome.rc, tail=tail)
    for event in results:
        host, res = str(event.get("host")), event.get("res") or {}
        if event.get("event") == "runner_on_ok":
            run.ok[host] = res
        elif event.get("event") in ("runner_on_failed", "runner_on_unreachable"):
            run.failed[host] = " ".join(str(res.get("msg") or "no message").split())
    return run


def _last_lines(log: Path, count: int = 3) -> str:
    lines = [line.strip() for line in log.read_text(errors="replace").splitlines()]
    return " ".join([line for line in lines if line][-count:])
