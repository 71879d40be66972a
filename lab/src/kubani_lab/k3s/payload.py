"""The programs the ``k3s`` stand-in carries, unpacked as K3s unpacks its own: into
``<data-dir>/data/<hash>/`` on first start (programs in ``bin/``, their data files beside),
with ``data/current`` pointing at the folder in use, so that an upgraded ``k3s`` brings and
uses its own set."""

from __future__ import annotations

import hashlib
import shutil
import stat
import zipfile
from pathlib import Path, PurePosixPath

# Where the carried files sit in the archive; ``bin/`` under it holds the programs.
PAYLOAD_PREFIX = "payload/"
BIN = "bin"
EXECUTABLE = stat.S_IRWXU | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH


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


def unpack(archive_path: Path, data_dir: Path) -> Path | None:
    """The folder holding the unpacked programs (unpacked now if needed), or None when the
    archive carries none."""
    with zipfile.ZipFile(archive_path) as archive:
        members = [
            i
            for i in archive.infolist()
            if i.filename.startswith(PAYLOAD_PREFIX) and not i.is_dir()
        ]
        if not members:
            return None
        folder = data_dir / "data" / _digest(members)
        if not (folder / ".complete").is_file():
            partial = folder.with_name(f".{folder.name}.partial")
            shutil.rmtree(partial, ignore_errors=True)
            (partial / BIN).mkdir(parents=True)
            for info in members:
                relative = _relative(info)
                target = partial.joinpath(*relative.parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                with archive.open(info) as source, target.open("wb") as out:
                    shutil.copyfileobj(source, out, 1 << 20)
                target.chmod(EXECUTABLE if relative.parts[0] == BIN else 0o644)
            (partial / ".complete").write_text("")
            shutil.rmtree(folder, ignore_errors=True)
            partial.rename(folder)
    current = data_dir / "data" / "current"
    if not current.is_symlink() or str(current.readlink()) != folder.name:
        staged = current.with_name(".current.partial")
        staged.unlink(missing_ok=True)
        staged.symlink_to(folder.name)
        staged.replace(current)
    return folder / BIN
