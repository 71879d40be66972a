"""Run the project's playbooks against a lab, as `ansible-playbook` from the ansible/ folder."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubani_lab.lab import K3S_VERSION, K3S_VERSIONS, Lab
from tests.conftest import run_cli

ANSIBLE_DIR = Path(__file__).resolve().parents[2] / "ansible"
NODES = ("cp-1", "w-1", "w-2")
# The release the lab carries beside the installed one: the upgrade target.
K3S_UPGRADE = next(v for v in K3S_VERSIONS if v != K3S_VERSION)
_RECAP = re.compile(
    r"^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M
)


@dataclass
class PlaybookRun:
    code: int
    output: str

    def failures(self) -> str:
        """Every task that failed, then the recap: what an assertion should show."""
        sections = self.output.split("\nTASK [")
        failed = ["TASK [" + section[:1500] for section in sections[1:] if "fatal: [" in section]
        return "\n".join(failed) + "\n" + self.output[self.output.rfind("PLAY RECAP") :]

    def recap(self) -> dict[str, dict[str, int]]:
        return {
            m.group(1): {
                "ok": int(m.group(2)),
                "changed": int(m.group(3)),
                "unreachable": int(m.group(4)),
                "failed": int(m.group(5)),
            }
            for m in _RECAP.finditer(self.output)
        }


def run_playbook(
    lab: Lab,
    playbook: str,
    *args: str,
    timeout: float = 600,
    on_line: tuple[str, Callable[[], None]] | None = None,
) -> PlaybookRun:
    """``ansible-playbook`` from the ansible/ folder. ``on_line`` (text, action): the action
    runs once, as soon as a line of the output contains the text."""
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(ANSIBLE_DIR / "ansible.cfg"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        "ANSIBLE_CACHE_PLUGIN_CONNECTION": str(lab.folder / "facts"),
    }
    command = [
        str(Path(sys.executable).parent / "ansible-playbook"),
        "-i",
        str(lab.inventory),
        f"playbooks/{playbook}",
        *args,
    ]
    lines: list[str] = []
    with subprocess.Popen(
        command,
        cwd=ANSIBLE_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as process:
        timer = threading.Timer(timeout, process.kill)
        timer.start()
        try:
            assert process.stdout is not None
            for line in process.stdout:
                lines.append(line)
                if on_line is not None and on_line[0] in line:
                    on_line[1]()
                    on_line = None
        finally:
            timer.cancel()
    if process.returncode < 0:
        raise subprocess.TimeoutExpired(command, timeout, "".join(lines))
    return PlaybookRun(process.returncode, "".join(lines))


def kubectl(lab: Lab, *args: str) -> subprocess.CompletedProcess[str]:
    """The real kubectl against a lab's cluster."""
    return subprocess.run(
        ["kubectl", "--kubeconfig", str(lab.folder / "kubeconfig"), *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def tmux_screen(session: str) -> str:
    """What a tmux session shows now, as text."""
    return subprocess.run(
        ["tmux", "capture-pane", "-p", "-t", session], capture_output=True, text=True, check=False
    ).stdout


def provision(lab: Lab, extra_nodes: int = 0) -> None:
    """Boot ``lab`` (1 control plane, 2 workers) and build the cluster with site.yml, with
    the per-node settings the Ansible tests check: labels and a taint on w-1, a CPU
    reservation on w-2. The run's output is kept as ``site-1.log`` in the lab's folder."""
    lab.up(nodes=3, control_planes=1, extra_nodes=extra_nodes)
    settings = [
        ("node_labels", '{"kubani.io/tier": "edge"}', "json", "w-1"),
        ("node_taints", '["kubani.io/desk=true:PreferNoSchedule"]', "json", "w-1"),
        ("reserved_cpu", "1", "string", "w-2"),
    ]
    for key, value, kind, scope in settings:
        result = run_cli(
            "-i", lab.inventory, "config-set", key, value, "--type", kind, "--scope", scope
        )
        assert result.code == 0, result.stderr
    first = run_playbook(lab, "site.yml")
    (lab.folder / "site-1.log").write_text(first.output)
    assert first.code == 0, first.failures()


def nodes_by_name(lab: Lab) -> dict[str, Any]:
    result = kubectl(lab, "get", "nodes", "-o", "json")
    assert result.returncode == 0, result.stderr
    return {n["metadata"]["name"]: n for n in json.loads(result.stdout)["items"]}


def start_times(lab: Lab) -> dict[str, str]:
    """When each node's K3s unit last started (a restart changes it)."""
    times = {}
    for node in lab.require_state().nodes:
        unit = "k3s" if node.role == "control-plane" else "k3s-agent"
        result = lab.ssh_run(
            node.name, f"systemctl show -p ActiveEnterTimestampMonotonic --value {unit}"
        )
        times[node.name] = result.stdout.strip()
    return times
