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
