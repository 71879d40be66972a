"""Containers that outlive the agent, as containerd's shims make them.

A real container's process is a child of its ``containerd-shim-runc-v2``, not of k3s: K3s's
unit stops only its main process (``KillMode=process``), so a restart or an upgrade of k3s
leaves the containers running, and ``k3s-killall.sh`` ends them by finding the shims under
``<data-dir>/data/*/bin/``. The stand-in does the same for the programs it runs as
containers: each runs under the carried shim (a script of that name) in a session of its
own, the shim's process id is recorded beside the container's files, and an agent that
starts again takes back the shims still running.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from kubani_lab.k3s import pki

SHIM = "containerd-shim-runc-v2"
# Carried in the payload's bin/ (``kubani_lab.lab``). With containerd's own flags only, its
# child is the pod sandbox's pause process (``traces``); after ``--``, a container's program.
# A signal to the shim goes on to its child, and the shim ends with the child's status.
SHIM_SCRIPT = """#!/bin/sh
# kubani-lab stand-in for containerd-shim-runc-v2: the parent of a pod sandbox's process or
# of one container's, outside k3s's lifetime; k3s-killall.sh finds the shims by this path.
# containerd-shim-runc-v2 -namespace NS -id ID -address SOCKET [-- PROGRAM [ARG...]]
while [ $# -gt 0 ] && [ "$1" != "--" ]; do shift; done
[ $# -gt 0 ] && shift
[ $# -gt 0 ] || set -- sleep infinity
"$@" &
child=$!
trap 'kill -TERM "$child" 2>/dev/null' TERM INT HUP
while :; do
    wait "$child"
    status=$?
    kill -0 "$child" 2>/dev/null || exit "$status"
done
"""
NAMESPACE = "k8s.io"
CONTAINERD_SOCKET = "/run/k3s/containerd/containerd.sock"
RECORD_NAME = "shim.json"
LOG_NAME = "container.log"
STOP_POLL_S = 0.1


def shim_command(shim: Path, container_id: str, command: list[str]) -> list[str]:
    """How containerd starts a shim, with the program the stand-in runs as the container."""
    return [str(shim), "-namespace", NAMESPACE, "-id", container_id,
            "-address", CONTAINERD_SOCKET, "--", *command]  # fmt: skip


def start_ticks(pid: int) -> str | None:
    """When process ``pid`` started (clock ticks since boot, from ``/proc``), or None when
    there is no such process or it has ended (a zombie waiting for its parent)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The name in parentheses may hold spaces and parentheses: fields follow the last ")".
    fields = stat[stat.rfind(")") + 2 :].split()
    if len(fields) < 20 or fields[0] in ("Z", "X"):
        return None
    return fields[19]


@dataclass
class Shim:
    """A running shim: one this agent started (``child``), or one it took back."""

    pid: int
    ticks: str
    started_at: float  # wall clock: an agent that takes it back knows its age
    folder: Path  # the container's folder, where the shim is recorded
    child: subprocess.Popen[bytes] | None = None

    def running(self) -> bool:
        if self.child is not None:
            return self.child.poll() is None
        return start_ticks(self.pid) == self.ticks

    def stop(self, grace_s: float) -> None:
        """SIGTERM (the shim passes it on to the container), then SIGKILL to both once the
        grace period is over; the record goes."""
        if self.running():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGTERM)
            deadline = time.monotonic() + grace_s
            while self.running() and time.monotonic() < deadline:
                time.sleep(STOP_POLL_S)
            if self.running():
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.pid, signal.SIGKILL)  # the shim leads its own group
        if self.child is not None:
            self.child.wait()
        (self.folder / RECORD_NAME).unlink(missing_ok=True)

    def record(self) -> None:
        record = {"pid": self.pid, "ticks": self.ticks, "started_at": self.started_at}
        pki.write_file(self.folder / RECORD_NAME, json.dumps(record).encode())


def start_shim(
    shim: Path, container_id: str, command: list[str], folder: Path, env: dict[str, str]
) -> Shim:
    """``command`` started as container ``container_id`` under ``shim``, in a session of its
    own, its output in the folder's ``container.log``; recorded in ``folder``."""
    with (folder / LOG_NAME).open("ab") as out:
        child = subprocess.Popen(
            shim_command(shim, container_id, command), cwd=folder, env=env,
            stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True,
        )  # fmt: skip
    started = Shim(child.pid, start_ticks(child.pid) or "", time.time(), folder, child)
    started.record()
    return started


def running_shim(folder: Path) -> Shim | None:
    """The shim recorded in ``folder`` if it still runs (its record goes otherwise)."""
    record = folder / RECORD_NAME
    try:
        found = json.loads(record.read_text())
        shim = Shim(int(found["pid"]), str(found["ticks"]), float(found["started_at"]), folder)
    except (OSError, ValueError, KeyError, TypeError):
        record.unlink(missing_ok=True)
        return None
    if shim.ticks and shim.running():
        return shim
    record.unlink(missing_ok=True)
    return None
