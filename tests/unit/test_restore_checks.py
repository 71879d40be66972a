"""`cluster-mgr restore` stops K3s on every control plane and replaces the datastore: a file
that is not a backup of this cluster's kind is refused before anything runs."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import pytest

from kubani.backups import ETCD_SNAPSHOT, SQLITE_ARCHIVE, backup_kind
from tests.conftest import run_cli

ETCD = b"\0" * 16 + struct.pack("<I", 0xED0CDAED) + b"\0" * 4076  # a bbolt meta page
ZIPPED_ETCD = b"PK\x03\x04" + b"\0" * 60  # K3s's compressed snapshots
SQLITE_TGZ = gzip.compress(b"db/state.db" + b"\0" * 500)


@pytest.mark.parametrize(
    ("content", "kind"),
    [(ETCD, ETCD_SNAPSHOT), (ZIPPED_ETCD, ETCD_SNAPSHOT), (SQLITE_TGZ, SQLITE_ARCHIVE),
     (b"", None), (b"SQLite format 3\0" + b"\0" * 90, None), (b"hello\n", None)],
    ids=["etcd", "etcd-zip", "sqlite-tgz", "empty", "bare-sqlite", "text"],
)  # fmt: skip
def test_a_backup_is_known_by_its_first_bytes(
    tmp_path: Path, content: bytes, kind: str | None
) -> None:
    path = tmp_path / "backup"
    path.write_bytes(content)
    assert backup_kind(path) == kind


def _inventory(tmp_path: Path, control_planes: int) -> Path:
    hosts = "".join(
        f"        cp-{i}: {{tailscale_ip: 100.64.0.{i + 1}}}\n" for i in range(control_planes)
    )
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(f"all:\n  children:\n    control_plane:\n      hosts:\n{hosts}")
    return inventory


@pytest.mark.parametrize(
    ("control_planes", "content", "said"),
    [
        (1, b"", "it is neither an etcd snapshot nor an archive of the SQLite datastore"),
        (1, ETCD, "it is an etcd snapshot, and this cluster (1 control plane(s)) keeps its "
                  "datastore in SQLite"),
        (3, SQLITE_TGZ, "it is an archive of the SQLite datastore, and this cluster (3 control "
                        "plane(s)) keeps its datastore in etcd"),
    ],
)  # fmt: skip
def test_restore_refuses_what_is_not_a_backup_of_this_cluster_before_running(
    tmp_path: Path, control_planes: int, content: bytes, said: str
) -> None:
    snapshot = tmp_path / "snapshot"
    snapshot.write_bytes(content)
    inventory = _inventory(tmp_path, control_planes)
    result = run_cli("-i", inventory, "restore", snapshot, "--json", timeout=60)
    assert result.code == 1
    assert said in result.stderr
    assert result.stdout == ""  # no playbook event: nothing ran


def test_restore_names_a_folder_as_what_it_is(tmp_path: Path) -> None:
    result = run_cli("-i", _inventory(tmp_path, 1), "restore", tmp_path, timeout=60)
    assert result.code == 1 and "it is not a regular file" in result.stderr
