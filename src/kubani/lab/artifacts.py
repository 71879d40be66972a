"""Stand-in executables as self-contained Python zipapps, laid out like release downloads.

A K3s air-gap install takes ``k3s`` plus ``sha256sum-amd64.txt`` from a local folder and
checks the sum; the lab's stand-ins are delivered the same way.
"""

from __future__ import annotations

import hashlib
import stat
import zipfile
from pathlib import Path

import kubani

_PACKAGE_ROOT = Path(kubani.__file__).parent
# What the stand-ins may import: the lab package only (stdlib + python3-yaml/cryptography).
_INCLUDED = (
    "__init__.py",
    "quantity.py",
    "lab/__init__.py",
    "lab/tailnet.py",
    "lab/standins",
    "lab/k3s",
)
_SHEBANG = b"#!/usr/bin/python3\n"


def _files() -> list[Path]:
    found: list[Path] = []
    for entry in _INCLUDED:
        path = _PACKAGE_ROOT / entry
        if path.is_dir():
            found += sorted(p for p in path.rglob("*.py"))
        elif path.exists():
            found.append(path)
    return found


def build_zipapp(target: Path, entry_module: str, main_args: str = "") -> Path:
    """Write an executable zipapp whose ``__main__`` runs ``entry_module.main(main_args)``."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial")
    with partial.open("wb") as handle:
        handle.write(_SHEBANG)
        with zipfile.ZipFile(handle, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for path in _files():
                name = "kubani/" + path.relative_to(_PACKAGE_ROOT).as_posix()
                info = zipfile.ZipInfo(name, date_time=(2025, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(info, path.read_bytes())
            main = f"import sys\nfrom {entry_module} import main\nsys.exit(main({main_args}))\n"
            info = zipfile.ZipInfo("__main__.py", date_time=(2025, 1, 1, 0, 0, 0))
            archive.writestr(info, main)
    partial.chmod(partial.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    partial.replace(target)
    return target


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_checksums(folder: Path, names: list[str], arch: str = "amd64") -> Path:
    """``sha256sum-<arch>.txt`` in the layout of K3s release assets."""
    lines = [f"{sha256_of(folder / name)}  {name}" for name in names]
    checksum = folder / f"sha256sum-{arch}.txt"
    checksum.write_text("\n".join(lines) + "\n")
    return checksum


def build_k3s_artifacts(folder: Path, version: str) -> Path:
    """An air-gap folder for the K3s stand-in: ``k3s`` and ``sha256sum-amd64.txt``."""
    folder.mkdir(parents=True, exist_ok=True)
    build_zipapp(folder / "k3s", "kubani.lab.k3s.main", f"version={version!r}")
    write_checksums(folder, ["k3s"])
    return folder
