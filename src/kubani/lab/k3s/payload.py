"""The programs the ``k3s`` stand-in carries, unpacked as K3s unpacks its own: into
``<data-dir>/data/<hash>/bin`` on first start, with ``data/current`` pointing at the folder
in use, so that an upgraded ``k3s`` brings and uses its own set."""

from __future__ import annotations

import hashlib
import shutil
import stat
import zipfile
from pathlib import Path

# Where the programs sit in the archive.
PAYLOAD_PREFIX = "payload/bin/"


def _digest(archive: zipfile.ZipFile) -> str:
    digest = hashlib.sha256()
    for info in sorted(archive.infolist(), key=lambda i: i.filename):
        if info.filename.startswith(PAYLOAD_PREFIX):
            digest.update(f"{info.filename} {info.CRC} {info.file_size}\n".encode())
    return digest.hexdigest()[:16]


def unpack(archive_path: Path, data_dir: Path) -> Path | None:
    """The folder holding the unpacked programs (unpacked now if needed), or None when the
    archive carries none."""
    with zipfile.ZipFile(archive_path) as archive:
        members = [i for i in archive.infolist() if i.filename.startswith(PAYLOAD_PREFIX)]
        if not members:
            return None
        folder = data_dir / "data" / _digest(archive)
        bin_dir = folder / "bin"
        if not (folder / ".complete").is_file():
            partial = folder.with_name(f".{folder.name}.partial")
            shutil.rmtree(partial, ignore_errors=True)
            (partial / "bin").mkdir(parents=True)
            for info in members:
                target = partial / "bin" / info.filename.removeprefix(PAYLOAD_PREFIX)
                with archive.open(info) as source, target.open("wb") as out:
                    shutil.copyfileobj(source, out, 1 << 20)
                target.chmod(
                    stat.S_IRWXU | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH
                )
            (partial / ".complete").write_text("")
            shutil.rmtree(folder, ignore_errors=True)
            partial.rename(folder)
    current = data_dir / "data" / "current"
    if not current.is_symlink() or str(current.readlink()) != folder.name:
        staged = current.with_name(".current.partial")
        staged.unlink(missing_ok=True)
        staged.symlink_to(folder.name)
        staged.replace(current)
    return bin_dir
