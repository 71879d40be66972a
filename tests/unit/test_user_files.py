"""Files a user names that are not files (a device, a folder) or never end (an endless
pipe): each is refused with what it is, instead of a hang or memory filling up; a pipe
that ends (``<(ssh box cat ...)``) reads like a file."""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
from pathlib import Path

import pytest

from kubani import userfiles
from kubani.gitops import validate
from tests.conftest import run_cli

ROOT = Path(__file__).resolve().parents[2]
DEVICE = Path("/dev/zero")


@pytest.mark.parametrize(
    "args",
    [
        ("discover", "--status-file", DEVICE),
        ("tailnet", "check", "--policy-file", DEVICE),
        ("inventory", "import", DEVICE, "--output", "imported.yml"),
        ("-i", ROOT / "tests/fixtures/inventory/hosts.yml", "provision", "-e", f"@{DEVICE}"),
    ],
)
def test_a_device_is_refused_for_what_it_is(tmp_path: Path, args: tuple[str | Path, ...]) -> None:
    result = run_cli(*args, cwd=tmp_path, timeout=30)
    assert result.code == 1, result.stderr
    assert "internal error" not in result.stderr
    assert "it is a character device, not a file" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_folder_is_refused_as_a_folder(tmp_path: Path) -> None:
    result = run_cli("discover", "--status-file", tmp_path, timeout=30)
    assert result.code == 1
    assert "it is a folder, not a file" in result.stderr


def _pipe(path: Path, data: bytes) -> Path:
    """A named pipe that a thread writes ``data`` into once it is opened."""
    os.mkfifo(path)

    def feed() -> None:
        with path.open("wb") as writer, contextlib.suppress(BrokenPipeError):
            writer.write(data)

    threading.Thread(target=feed, daemon=True).start()
    return path


def test_a_pipe_reads_like_a_file_up_to_the_limit(tmp_path: Path) -> None:
    assert userfiles.read_text(_pipe(tmp_path / "short", b'{"a": 1}')) == '{"a": 1}'
    with pytest.raises(OSError, match="it holds more than 100 bytes"):
        userfiles.read_bytes(_pipe(tmp_path / "long", b"x" * 4096), limit=100)


def test_a_tree_entry_that_is_not_a_file_is_a_finding_and_its_build_ends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tree = tmp_path / "repo" / "gitops"
    shutil.copytree(ROOT / "gitops", tree)
    app = tree / "apps/base/nginx"
    os.mkfifo(app / "pipe.yaml")  # listed: kustomize would wait on it for ever
    (app / "zero.yaml").symlink_to(DEVICE)
    kustomization = app / "kustomization.yaml"
    kustomization.write_text(
        kustomization.read_text().replace("resources:\n", "resources:\n  - pipe.yaml\n")
    )
    monkeypatch.setattr(validate, "KUSTOMIZE_TIMEOUT_S", 3.0)
    report = validate.validate_tree(tree)
    lines = [f.line() for f in report.findings]
    assert any("pipe.yaml: not a regular file" in line for line in lines), lines
    assert any("zero.yaml: not a regular file" in line for line in lines), lines
    assert any(
        "nginx/kustomization.yaml: kustomize build failed: it did not finish within 3 s" in line
        for line in lines
    ), lines
