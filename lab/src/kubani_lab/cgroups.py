"""A cgroup of its own for each lab node.

``systemd-nspawn --keep-unit`` runs a container in nspawn's own cgroup, and the container's
systemd manages the tree it finds there as its own. Nodes started by one process therefore
shared one tree (``payload/system.slice/ssh.service`` held every node's sshd): each node's
systemd created, emptied and removed the same unit cgroups, and a unit of one node could fail
to start because another node's systemd had just removed its cgroup ("Failed at step CGROUP
spawning ...: No such file or directory"), leaving that node half booted, for instance with
``systemd-user-sessions`` failed and every login but root's refused. Each node now starts
in a cgroup of its own, beside the lab process's, in the hierarchies nspawn and the
container's systemd use: systemd's named one (cgroup v1) and the unified one (v2).
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import time
from pathlib import Path

_SYSTEMD_HIERARCHY = "name=systemd"


def _hierarchies() -> list[tuple[Path, str]]:
    """Each hierarchy that matters here: its mount point and this process's cgroup in it."""
    roots: dict[str, Path] = {}
    for line in Path("/proc/self/mounts").read_text().splitlines():
        fields = line.split()
        if len(fields) < 4:
            continue
        point, kind, options = fields[1], fields[2], fields[3].split(",")
        if kind == "cgroup2":
            roots.setdefault("", Path(point))
        elif kind == "cgroup" and _SYSTEMD_HIERARCHY in options:
            roots.setdefault(_SYSTEMD_HIERARCHY, Path(point))
    found = []
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _number, controllers, path = line.split(":", 2)
        if controllers in roots:
            found.append((roots[controllers], path))
    return found


def make(name: str) -> list[Path]:
    """A cgroup called ``name`` beside this process's, in each hierarchy: its folders."""
    folders = []
    for root, path in _hierarchies():
        folder = root / path.lstrip("/") / name
        folder.mkdir(exist_ok=True)
        folders.append(folder)
    return folders


def entered(folders: list[Path], command: list[str]) -> list[str]:
    """``command`` started inside ``folders`` (the shell moves itself there, then execs it,
    so the command's PID is the one the caller gets)."""
    moves = " && ".join(f"echo $$ > {shlex.quote(str(f / 'cgroup.procs'))}" for f in folders)
    if not moves:
        return command
    return ["sh", "-c", f'{moves} && exec "$0" "$@"', *command]


def members(folder: Path) -> list[int]:
    """Every process in a cgroup and the ones under it."""
    pids: list[int] = []
    for inner, _dirs, _files in os.walk(folder):
        with contextlib.suppress(OSError, ValueError):
            pids += [int(p) for p in (Path(inner) / "cgroup.procs").read_text().split()]
    return pids


def kill_all(folder: Path, wait_s: float = 10.0) -> None:
    """Kill what is left in a node's cgroup: its systemd and every process it started, if
    nspawn, killed before its container shut down, left them running."""
    deadline = time.monotonic() + wait_s
    while (pids := members(folder)) and time.monotonic() < deadline:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.1)


def remove(folder: Path) -> bool:
    """Remove a cgroup and the ones the container's systemd made in it, deepest first (a
    cgroup is removed with rmdir once no process is left in it). False if one remains."""
    if not folder.exists():
        return True
    for inner, _dirs, _files in os.walk(folder, topdown=False):
        with contextlib.suppress(OSError):
            Path(inner).rmdir()
    return not folder.exists()


def leftovers(prefix: str) -> list[Path]:
    """Cgroups beside this process's whose names start with ``prefix`` (of a lab whose state
    was lost)."""
    found: list[Path] = []
    for root, path in _hierarchies():
        found += sorted((root / path.lstrip("/")).glob(f"{prefix}*"))
    return found
