"""One Ansible module on some hosts (``ansible -m``), through ansible-runner.

The run folder is private and temporary: module results (a fetched kubeconfig, facts)
may hold secrets and are not kept, unlike playbook runs.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubani.ansible.project import ansible_dir, ensure_ansible_on_path


@dataclass
class ModuleRun:
    status: str
    ok: dict[str, dict[str, Any]] = field(default_factory=dict)  # host -> module result
    failed: dict[str, str] = field(default_factory=dict)  # host -> message


def run_module(
    inventory: Path, pattern: str, module: str, args: str, become: bool = False
) -> ModuleRun:
    import ansible_runner

    ensure_ansible_on_path()
    project = ansible_dir(near=inventory.parent)
    with tempfile.TemporaryDirectory(prefix="kubani-adhoc-") as private:
        Path(private).chmod(0o700)
        result = ansible_runner.run(
            private_data_dir=private,
            host_pattern=pattern,
            module=module,
            module_args=args,
            inventory=str(inventory.resolve()),
            cmdline="--become" if become else None,
            envvars={"ANSIBLE_CONFIG": str(project / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"},
            quiet=True,
            settings={"suppress_ansible_output": True},
        )
        run = ModuleRun(str(result.status))
        for event in result.events:
            data = event.get("event_data") or {}
            host, res = str(data.get("host")), data.get("res") or {}
            if event.get("event") == "runner_on_ok":
                run.ok[host] = res
            elif event.get("event") in ("runner_on_failed", "runner_on_unreachable"):
                run.failed[host] = " ".join(str(res.get("msg") or "no message").split())
    return run
