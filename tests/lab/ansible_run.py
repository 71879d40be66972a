"""Run the project's playbooks against a lab, as `ansible-playbook` from the ansible/ folder."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from kubani.lab.lab import Lab

ANSIBLE_DIR = Path(__file__).resolve().parents[2] / "ansible"
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


def run_playbook(lab: Lab, playbook: str, *args: str, timeout: float = 600) -> PlaybookRun:
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
    result = subprocess.run(
        command,
        cwd=ANSIBLE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return PlaybookRun(result.returncode, result.stdout + result.stderr)


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
