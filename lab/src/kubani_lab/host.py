"""What the lab needs from the machine it runs on, and running its commands."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from kubani.errors import KubaniError

REQUIRED_TOOLS = {
    "debootstrap": "debootstrap",
    "systemd-nspawn": "systemd-container",
    "ip": "iproute2",
    "ssh": "openssh-client",
    "ssh-keygen": "openssh-client",
    "nft": "nftables",
}


class LabError(KubaniError):
    """The lab could not do what was asked."""


def require_lab_host() -> None:
    """Root on Linux with the tools installed, or a message saying what is missing."""
    if platform.system() != "Linux":
        raise LabError(
            "the lab needs Linux",
            f"this is {platform.system()}: lab nodes are systemd-nspawn containers",
            "run the lab on a Linux machine (a VM is fine), or provision real machines",
        )
    if os.geteuid() != 0:
        raise LabError(
            "the lab needs root",
            "it creates network namespaces, a bridge and containers",
            "run it with sudo (e.g. `sudo -E uv run cluster-mgr lab up`)",
        )
    missing = sorted({pkg for tool, pkg in REQUIRED_TOOLS.items() if not shutil.which(tool)})
    if missing:
        raise LabError(
            "the lab needs more tools",
            f"missing Debian packages: {', '.join(missing)}",
            f"apt-get install -y {' '.join(missing)}",
        )


def capture(
    command: Sequence[str], timeout: float, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a command with its output captured; no input unless ``stdin`` is given."""
    return subprocess.run(
        list(command),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
    )


def start_daemon(
    command: Sequence[str],
    log: Path,
    ready: Callable[[], bool],
    what: str,
    wait_s: float,
    env: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """Start a long-running lab process in a session of its own, its output in ``log``, and
    wait until ``ready()``; a process that stops first fails with the end of its log."""
    with log.open("ab") as handle:
        process = subprocess.Popen(
            list(command),
            stdin=subprocess.DEVNULL,
            stdout=handle,
            stderr=handle,
            env=env,
            start_new_session=True,
        )
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise LabError(f"{what} stopped while starting", log.read_text()[-600:].strip(), None)
        if ready():
            return process
        time.sleep(0.2)
    raise LabError(f"{what} did not start", f"no answer within {wait_s:.0f} s; see {log}", None)


def run(
    command: Sequence[str],
    what: str,
    check: bool = True,
    timeout: float = 600,
    stdin: str | None = None,
) -> subprocess.CompletedProcess[str]:
    try:
        result = capture(command, timeout, stdin)
    except subprocess.TimeoutExpired:
        raise LabError(what, f"`{' '.join(command)}` ran past {timeout:.0f} s", None) from None
    if check and result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()
        raise LabError(what, detail[-1] if detail else f"exit code {result.returncode}", None)
    return result


def process_tree(pid: int) -> list[int]:
    """``pid`` and every process below it, from ``/proc``'s parent links (a node: its
    ``systemd-nspawn`` and everything running in it)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue  # ended meanwhile
        children.setdefault(parent, []).append(int(entry.name))
    found, stack = [], [pid]
    while stack:
        current = stack.pop()
        found.append(current)
        stack += children.get(current, [])
    return found
