"""Where backups go: snapshots hold the whole datastore and the server token, so they never
land where ``git add -A`` would publish them."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from kubani.errors import KubaniError


def default_backup_dir(cluster_name: str) -> Path:
    """``$XDG_DATA_HOME/kubani/backups/<cluster>`` (``~/.local/share/...``): outside any
    repository the GitOps tree or the inventory lives in."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local/share")
    return Path(base) / "kubani" / "backups" / cluster_name


def _work_tree(folder: Path) -> Path | None:
    for candidate in (folder, *folder.parents):
        if (candidate / ".git").exists():
            return candidate
    return None


def _ignored(work_tree: Path, probe: Path) -> bool:
    git = shutil.which("git")
    if git is None:
        return False
    result = subprocess.run(
        [git, "-C", str(work_tree), "check-ignore", "-q", str(probe)],
        capture_output=True,
        check=False,
    )
    return result.returncode == 0


def refuse_secrets_in_git(folder: Path, what: str = "backups") -> None:
    """Refuse a folder inside a Git work tree unless Git ignores it."""
    folder = folder.resolve()
    work_tree = _work_tree(folder)
    if work_tree is None:
        return
    if _ignored(work_tree, folder / "kubani-backup.tar.gz"):
        return
    raise KubaniError(
        f"will not write {what} into {folder}",
        f"it is inside the Git work tree {work_tree} and not ignored there; {what} hold the "
        "cluster's datastore and its server token, which `git add -A` would publish",
        f"pick a folder outside the repository (`--output {default_backup_dir('CLUSTER')}`), "
        f"or ignore it in {work_tree / '.gitignore'}",
    )


# How a backup file begins: backup.yml fetches an etcd snapshot (a bbolt database, its meta
# page's magic number at byte 16; K3s may zip it) or a gzipped tar of the SQLite datastore.
_BBOLT_MAGIC = (0xED0CDAED).to_bytes(4, "little")
_ZIP = b"PK\x03\x04"
_GZIP = b"\x1f\x8b"
ETCD_SNAPSHOT = "an etcd snapshot"
SQLITE_ARCHIVE = "an archive of the SQLite datastore"


def backup_kind(path: Path) -> str | None:
    """What a backup file holds, from its first bytes; None when it is neither."""
    with path.open("rb") as file:
        head = file.read(20)
    if head[16:20] == _BBOLT_MAGIC or head.startswith(_ZIP):
        return ETCD_SNAPSHOT
    if head.startswith(_GZIP):
        return SQLITE_ARCHIVE
    return None


def check_restorable(path: Path, control_planes: int) -> None:
    """Refuse, before anything stops, a file that is not a backup of this cluster's kind
    of datastore (etcd with several control planes, SQLite with one)."""
    try:
        kind = backup_kind(path)
    except OSError as exc:
        raise KubaniError(f"cannot restore from {path}", exc.strerror or str(exc), None) from exc
    wanted = ETCD_SNAPSHOT if control_planes > 1 else SQLITE_ARCHIVE
    if kind is None:
        raise KubaniError(
            f"cannot restore from {path}",
            "it is neither an etcd snapshot nor an archive of the SQLite datastore "
            "(empty, truncated, or another file)",
            "pass a file made by `cluster-mgr backup`",
        )
    if kind != wanted:
        raise KubaniError(
            f"cannot restore from {path}",
            f"it is {kind}, and this cluster ({control_planes} control plane(s)) keeps its "
            f"datastore in {'etcd' if control_planes > 1 else 'SQLite'}",
            "pass a backup of this cluster as it is now",
        )
