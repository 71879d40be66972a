"""The tailscale_install role's air-gap path, run by Ansible on this machine with every path
moved under a temporary folder: a release whose checksum does not match, or that is missing
for this architecture, fails with the fix and installs nothing."""

from __future__ import annotations

import hashlib
import io
import json
import os
import platform
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest
import yaml

ANSIBLE = Path(__file__).resolve().parents[2] / "ansible"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the role installs as root")


def _release(folder: Path, version: str = "1.2.3", checksum: str | None = None) -> Path:
    """A static release in pkgs.tailscale.com's layout (tiny stand-in binaries)."""
    folder.mkdir(parents=True, exist_ok=True)
    name = f"tailscale_{version}_amd64"
    archive = folder / f"{name}.tgz"
    with tarfile.open(archive, "w:gz") as tar:
        for member in ("tailscale", "tailscaled", "systemd/tailscaled.service"):
            data = b"#!/bin/sh\n"
            entry = tarfile.TarInfo(f"{name}/{member}")
            entry.size = len(data)
            tar.addfile(entry, io.BytesIO(data))
    digest = checksum if checksum is not None else hashlib.sha256(archive.read_bytes()).hexdigest()
    (folder / f"{name}.tgz.sha256").write_text(digest + "\n")
    return archive


def _run(tmp_path: Path, airgap: Path) -> dict[str, Any]:
    node = tmp_path / "node"
    paths = {
        "tailscale_install_daemon_path": str(node / "usr/sbin/tailscaled"),
        "tailscale_install_cli_path": str(node / "usr/bin/tailscale"),
        "tailscale_install_unit_path": str(node / "etc/systemd/system/tailscaled.service"),
        "tailscale_install_defaults_path": str(node / "etc/default/tailscaled"),
        "tailscale_install_work_dir": str(node / "var/lib/kubani/tailscale"),
    }
    play = [{"name": "Install", "hosts": "localhost", "gather_facts": False,
             "vars": {**paths, "tailscale_install_airgap_dir": str(airgap)},
             "roles": [{"role": "tailscale_install"}]}]  # fmt: skip
    (tmp_path / "play.yml").write_text(yaml.safe_dump(play))
    result = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), "-i", "localhost,", "-c", "local",
         str(tmp_path / "play.yml"),
         "-e", json.dumps({"ansible_python_interpreter": sys.executable})],
        cwd=ANSIBLE, env={**os.environ, "ANSIBLE_CONFIG": str(ANSIBLE / "ansible.cfg")},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    return {
        "code": result.returncode,
        "output": " ".join((result.stdout + result.stderr).split()),
        "installed": sorted(str(p.relative_to(node)) for p in node.rglob("*") if p.is_file())
        if node.exists()
        else [],
    }


def test_a_release_that_does_not_match_its_checksum_installs_nothing(tmp_path: Path) -> None:
    archive = _release(tmp_path / "airgap", checksum="0" * 64)
    run = _run(tmp_path, tmp_path / "airgap")
    assert run["code"] != 0
    assert f"{archive} does not match {archive.name}.sha256" in run["output"]
    assert "Nothing was installed" in run["output"]
    assert run["installed"] == []


def test_a_release_without_its_checksum_file_installs_nothing(tmp_path: Path) -> None:
    archive = _release(tmp_path / "airgap")
    Path(f"{archive}.sha256").unlink()
    run = _run(tmp_path, tmp_path / "airgap")
    assert run["code"] != 0
    assert "expected a SHA-256" in run["output"] and run["installed"] == []


def test_a_folder_without_a_release_for_the_architecture_says_what_to_download(
    tmp_path: Path,
) -> None:
    (tmp_path / "airgap").mkdir()
    (tmp_path / "airgap" / "tailscale_1.2.3_s390x.tgz").write_bytes(b"")
    run = _run(tmp_path, tmp_path / "airgap")
    assert run["code"] != 0
    assert f"holds no Tailscale release for {platform.machine()}" in run["output"]
    assert "https://pkgs.tailscale.com/stable/" in run["output"]
    assert run["installed"] == []
