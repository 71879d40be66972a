"""Backups never land where `git add -A` would publish the datastore and the token."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from kubani.backups import default_backup_dir, refuse_secrets_in_git
from kubani.errors import KubaniError
from tests.conftest import run_cli


def _repo(path: Path) -> Path:
    subprocess.run(["git", "init", "-q", str(path)], check=True)
    return path


def test_the_default_is_outside_any_repository(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", "/srv/data")
    assert default_backup_dir("home") == Path("/srv/data/kubani/backups/home")
    monkeypatch.delenv("XDG_DATA_HOME")
    assert default_backup_dir("home") == Path.home() / ".local/share/kubani/backups/home"


def test_a_folder_in_a_work_tree_is_refused_unless_ignored(tmp_path: Path) -> None:
    repo = _repo(tmp_path / "homelab")
    with pytest.raises(KubaniError) as refused:
        refuse_secrets_in_git(repo / "backups")
    assert "inside the Git work tree" in str(refused.value)
    assert "server token" in str(refused.value)
    (repo / ".gitignore").write_text("/backups/\n")
    refuse_secrets_in_git(repo / "backups")  # ignored: fine
    refuse_secrets_in_git(tmp_path / "elsewhere")  # no repository: fine


def test_backup_refuses_a_folder_in_the_repository(inventory: Path, tmp_path: Path) -> None:
    repo = _repo(tmp_path / "gitops")
    result = run_cli("-i", inventory, "backup", "--output", repo / "backups")
    assert result.code == 1
    assert "will not write backups into" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (repo / "backups").exists()
