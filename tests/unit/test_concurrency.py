"""Several cluster-mgr processes at once, and writers killed mid-write."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from pathlib import Path

from ruamel.yaml import YAML

from kubani.inventory.document import InventoryDocument
from kubani.inventory.store import atomic_write
from tests.conftest import BIN


def _spawn(inventory: Path, *args: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "NO_COLOR": "1"}
    return subprocess.Popen(
        [str(BIN / "cluster-mgr"), "-i", str(inventory), *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
    )


def test_twenty_concurrent_add_nodes_lose_nothing(inventory: Path) -> None:
    procs = [_spawn(inventory, "add-node", f"par-{i}", f"100.64.1.{i + 1}") for i in range(20)]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()
    model, problems = InventoryDocument(inventory).validate()
    assert model is not None and not problems.errors
    assert {f"par-{i}" for i in range(20)} <= model.hostnames()
    assert len(model.nodes) == 5 + 20
    assert not list(inventory.parent.glob(".*.tmp"))


def _big_inventory(path: Path, nodes: int) -> None:
    lines = [
        "all:",
        "  children:",
        "    control_plane:",
        "      hosts:",
        "        cp-0:",
        "          tailscale_ip: 100.64.0.1",
        "    workers:",
        "      hosts:",
    ]
    for i in range(nodes):
        lines += [
            f"        # worker {i}",
            f"        w-{i}:",
            f"          tailscale_ip: 100.65.{i // 250}.{i % 250 + 1}",
            "          reserved_cpu: 500m",
        ]
    path.write_text("\n".join(lines) + "\n")


def _valid_old_or_new(path: Path, old: bytes, added: str) -> bool:
    """The file parses and validates, and is either the old bytes or old + the new node."""
    data = path.read_bytes()
    YAML(typ="safe").load(data)
    model, problems = InventoryDocument(path).validate()
    assert model is not None and not problems.errors
    if data == old:
        return False
    assert added in model.hostnames()
    return True


def test_sigkill_mid_write_leaves_old_or_new(tmp_path: Path) -> None:
    path = tmp_path / "hosts.yml"
    _big_inventory(path, 400)
    rng = random.Random(7)
    killed_in_write_window = 0
    for attempt in range(12):
        old = path.read_bytes()
        name = f"k-{attempt}"
        proc = _spawn(path, "add-node", name, f"100.66.0.{attempt + 1}")
        if attempt % 2 == 0:
            # Kill the moment the temp file appears: inside write/fsync/rename.
            deadline = time.monotonic() + 30
            while proc.poll() is None and time.monotonic() < deadline:
                if any(p.name.endswith(".tmp") for p in os.scandir(tmp_path)):
                    proc.send_signal(signal.SIGKILL)
                    killed_in_write_window += 1
                    break
        else:
            time.sleep(rng.uniform(0.05, 0.8))
            proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        _valid_old_or_new(path, old, name)
    assert killed_in_write_window >= 1
    # The next writer clears whatever a killed one left behind.
    result = _spawn(path, "add-node", "after", "100.66.1.1")
    assert result.wait(timeout=60) == 0
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert "# worker 399" in path.read_text()


def test_a_backup_left_as_a_link_to_the_file_leaves_no_temp_file(tmp_path: Path) -> None:
    """A writer killed between its two renames leaves ``hosts.yml.bak`` a hard link to
    ``hosts.yml``; the next write's backup rename is then a no-op for the kernel."""
    path = tmp_path / "hosts.yml"
    path.write_text("old\n")
    os.link(path, tmp_path / "hosts.yml.bak")
    atomic_write(path, b"new\n")
    assert path.read_text() == "new\n" and (tmp_path / "hosts.yml.bak").read_text() == "old\n"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
