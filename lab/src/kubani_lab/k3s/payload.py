"""The programs the ``k3s`` stand-in carries, unpacked as K3s unpacks its own: into
``<data-dir>/data/<hash>/`` on first start (programs in ``bin/``, their data files beside),
with ``data/current`` pointing at the folder in use, so that an upgraded ``k3s`` brings and
uses its own set.

What a real K3s does not unpack is unpacked when first used (``program``): the control
plane's programs (compiled into the real ``k3s`` binary, so an agent never writes them out)
and the container images the lab runs for real (pulled by a node when a pod needs them).
Unpacking everything on every node made each agent's first start write about 400 MB.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import threading
import zipfile
from pathlib import Path, PurePosixPath

# Where the carried files sit in the archive; ``bin/`` under it holds the programs.
PAYLOAD_PREFIX = "payload/"
BIN = "bin"
EXECUTABLE = stat.S_IRWXU | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH
# Programs unpacked on first use (see above): the control plane's, and Flux's controllers.
ON_DEMAND = frozenset({"kube-components", "source-controller", "kustomize-controller"})
# Beside bin/: the archive the folder was unpacked from, for what is unpacked later.
ARCHIVE_NOTE = ".archive"


def _digest(members: list[zipfile.ZipInfo]) -> str:
    digest = hashlib.sha256()
    for info in sorted(members, key=lambda i: i.filename):
        digest.update(f"{info.filename} {info.CRC} {info.file_size}\n".encode())
    return digest.hexdigest()[:16]


def _relative(info: zipfile.ZipInfo) -> PurePosixPath:
    relative = PurePosixPath(info.filename.removeprefix(PAYLOAD_PREFIX))
    if relative.is_absolute() or ".." in relative.parts:
        raise ValueError(f"refusing to unpack {info.filename}: outside the payload")
    return relative


def _members(archive: zipfile.ZipFile) -> list[zipfile.ZipInfo]:
    return [
        i for i in archive.infolist() if i.filename.startswith(PAYLOAD_PREFIX) and not i.is_dir()
    ]


def _on_demand(relative: PurePosixPath) -> bool:
    return len(relative.parts) == 2 and relative.parts[0] == BIN and relative.name in ON_DEMAND


def _extract(archive: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path) -> None:
    """``info`` written to ``target`` whole or not at all (a temporary name, then a rename:
    two threads or processes unpacking the same program both end with the whole file)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}")
    with archive.open(info) as source, partial.open("wb") as out:
        shutil.copyfileobj(source, out, 1 << 20)
    partial.chmod(EXECUTABLE if _relative(info).parts[0] == BIN else 0o644)
    partial.replace(target)


def unpack(archive_path: Path, data_dir: Path) -> Path | None:
    """The folder holding the unpacked programs (unpacked now if needed, but for those
    ``program`` unpacks on first use), or None when the archive carries none."""
    with zipfile.ZipFile(archive_path) as archive:
        members = _members(archive)
        if not members:
            return None
        folder = data_dir / "data" / _digest(members)
        if not (folder / ".complete").is_file():
            partial = folder.with_name(f".{folder.name}.partial")
            shutil.rmtree(partial, ignore_errors=True)
            (partial / BIN).mkdir(parents=True)
            for info in members:
                relative = _relative(info)
                if not _on_demand(relative):
                    _extract(archive, info, partial.joinpath(*relative.parts))
            (partial / ".complete").write_text("")
            shutil.rmtree(folder, ignore_errors=True)
            partial.rename(folder)
        (folder / ARCHIVE_NOTE).write_text(str(archive_path.resolve()))
    current = data_dir / "data" / "current"
    if not current.is_symlink() or str(current.readlink()) != folder.name:
        staged = current.with_name(".current.partial")
        staged.unlink(missing_ok=True)
        staged.symlink_to(folder.name)
        staged.replace(current)
    return folder / BIN


def program(bin_dir: Path | None, name: str) -> Path | None:
    """The path of the carried program ``name``, unpacked now if it was left for its first
    use; None when this ``k3s`` does not carry it (or its archive on disk is no longer the
    one the folder came from: an upgrade replaced it, and the next start unpacks anew)."""
    if bin_dir is None:
        return None
    path = bin_dir / name
    if path.is_file():
        return path
    if name not in ON_DEMAND:
        return None
    note = bin_dir.parent / ARCHIVE_NOTE
    try:
        with zipfile.ZipFile(Path(note.read_text().strip())) as archive:
            members = _members(archive)
            if _digest(members) != bin_dir.parent.name:
                return None
            wanted = f"{PAYLOAD_PREFIX}{BIN}/{name}"
            for info in members:
                if info.filename == wanted:
                    _extract(archive, info, path)
                    return path
    except (OSError, zipfile.BadZipFile):
        return None
    return None
