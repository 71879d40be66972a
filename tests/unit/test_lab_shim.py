"""The K3s stand-in's containers outlive the agent under shims, as containerd's do: taken back
by the next start, stopped with their container, found by the product's k3s-killall.sh."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from kubani_lab.k3s.podruntime import PodRuntime
from kubani_lab.k3s.shim import (
    RECORD_NAME,
    SHIM,
    SHIM_SCRIPT,
    Shim,
    running_shim,
    start_shim,
    start_ticks,
)

KILLALL = Path(__file__).parents[2] / "ansible/roles/k3s_common/templates/k3s-killall.sh.j2"
ENV = {"PATH": "/usr/bin:/bin"}


def group(pgid: int) -> set[int]:
    """Live processes of process group ``pgid``."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            found.add(int(stat.parent.name))
    return found


def wait_for(condition: Any, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    container = tmp_path / "agent" / "pods" / "uid-1" / "manager"
    container.mkdir(parents=True)
    return container


@pytest.fixture
def shim(tmp_path: Path) -> Path:
    """The carried shim, where the stand-in unpacks its payload."""
    path = tmp_path / "data" / "0123abcd" / "bin" / SHIM
    path.parent.mkdir(parents=True)
    path.write_text(SHIM_SCRIPT)
    path.chmod(0o755)
    return path


def started_by_another_process(shim: Path, folder: Path, command: list[str]) -> Shim:
    """A shim started by a process that then ends, as an agent that stops or restarts."""
    script = (
        "from pathlib import Path; from kubani_lab.k3s.shim import start_shim; "
        f"start_shim(Path({str(shim)!r}), 'c1', {command!r}, Path({str(folder)!r}), {ENV!r})"
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=30)
    found = running_shim(folder)
    assert found is not None, "the shim did not outlive the process that started it"
    return found


def test_a_container_outlives_its_starter_and_stops_with_its_shim(shim: Path, folder: Path) -> None:
    started = started_by_another_process(shim, folder, ["sleep", "60"])
    wait_for(lambda: len(group(started.pid)) == 2)  # the shim and its container
    started.stop(grace_s=5)
    wait_for(lambda: not group(started.pid))
    assert not (folder / RECORD_NAME).exists()
    assert running_shim(folder) is None


def test_the_shim_passes_sigterm_on_and_ends_with_the_container_status(
    shim: Path, folder: Path
) -> None:
    trap = "trap 'echo stopped > got; exit 3' TERM; while :; do sleep 0.05; done"
    started = start_shim(shim, "c1", ["sh", "-c", trap], folder, ENV)
    time.sleep(0.3)  # the trap is set
    started.stop(grace_s=5)
    assert started.child is not None and started.child.returncode == 3
    assert (folder / "got").read_text() == "stopped\n"


def test_a_container_that_ignores_sigterm_is_killed_with_its_shim(shim: Path, folder: Path) -> None:
    started = started_by_another_process(shim, folder, ["sh", "-c", "trap '' TERM; sleep 60"])
    wait_for(lambda: len(group(started.pid)) >= 2)
    started.stop(grace_s=0.3)
    wait_for(lambda: not group(started.pid))


def test_the_container_output_goes_to_its_log(shim: Path, folder: Path) -> None:
    started = start_shim(shim, "c1", ["sh", "-c", "echo out; echo err >&2"], folder, ENV)
    assert started.child is not None and started.child.wait(10) == 0
    assert (folder / "container.log").read_text().splitlines() == ["out", "err"]


@pytest.mark.parametrize(
    "record",
    ["not json", json.dumps({"pid": "x"}), json.dumps({"pid": 1, "ticks": "0", "started_at": 0})],
)
def test_a_record_of_no_running_shim_is_dropped(folder: Path, record: str) -> None:
    # pid 1 with ticks 0 stands for a process id used again by another process.
    (folder / RECORD_NAME).write_text(record)
    assert running_shim(folder) is None
    assert not (folder / RECORD_NAME).exists()


def test_a_record_of_an_ended_shim_is_dropped(shim: Path, folder: Path) -> None:
    started = start_shim(shim, "c1", ["true"], folder, ENV)
    assert started.child is not None
    started.child.wait(10)
    assert start_ticks(started.pid) is None
    assert running_shim(folder) is None


def test_the_product_killall_script_finds_the_shims(shim: Path, folder: Path) -> None:
    data_dir = shim.parents[3]
    text = KILLALL.read_text()
    match = re.search(r"^getshims\(\) \{.*?^\}", text, re.S | re.M)
    assert match is not None, "k3s-killall.sh has no getshims"
    getshims = match.group(0).replace("{{ k3s_common_data_dir }}", str(data_dir))
    started = start_shim(shim, "c1", ["sleep", "60"], folder, ENV)

    def listed() -> list[str]:
        # As from a terminal of 80 columns: ps would cut the shims' long paths.
        return subprocess.run(
            ["sh", "-c", f"{getshims}\ngetshims"],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "COLUMNS": "80"},
        ).stdout.split()

    try:
        wait_for(lambda: len(group(started.pid)) == 2)  # the shim runs its script by now
        assert listed() == [str(started.pid)]
    finally:
        started.stop(grace_s=5)


def test_an_agent_that_starts_again_takes_its_containers_back(shim: Path, folder: Path) -> None:
    started = started_by_another_process(shim, folder, ["sleep", "60"])
    agent = cast(Any, SimpleNamespace(agent_dir=folder.parents[2]))
    try:
        runtime = PodRuntime(agent, shim.parent)
        assert list(runtime.running) == ["uid-1/manager"]
        assert runtime.running["uid-1/manager"].shim.pid == started.pid
        assert not runtime.running["uid-1/manager"].stale()
    finally:
        started.stop(grace_s=5)
