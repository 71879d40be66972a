"""Stand-in artifacts are built like release downloads: one binary per release, with sums."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

from kubani.lab.artifacts import build_k3s_artifacts


def test_each_release_is_its_own_binary(tmp_path: Path) -> None:
    versions = ("v1.31.4+k3s1", "v1.32.1+k3s1")
    sums = {}
    for version in versions:
        folder = build_k3s_artifacts(tmp_path / version, version)
        binary = folder / "k3s"
        listed = (folder / "sha256sum-amd64.txt").read_text().split()
        assert listed == [hashlib.sha256(binary.read_bytes()).hexdigest(), "k3s"]
        sums[version] = listed[0]
        reported = subprocess.run(
            [sys.executable, str(binary), "--version"],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout
        assert reported.splitlines()[0].startswith(f"k3s version {version} ")
    assert sums[versions[0]] != sums[versions[1]]
