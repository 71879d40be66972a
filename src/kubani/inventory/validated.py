"""A record of the inventory last found free of errors, so that a playbook run after no
edit need not load the models (pydantic: about half of cluster-mgr's start) to check the
same files again.

The record holds a digest of each file the check read, the names in group_vars/ and
host_vars/ (a file added there is read next time), and a fingerprint of this Kubani's
code (an upgrade or an edit may check differently). An inventory holding vaulted values
is never recorded: whether they decrypt depends on the password, not on the files.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from stat import S_ISREG
from typing import TYPE_CHECKING

import kubani
from kubani.vocabulary import INVENTORY_FILE_MAX_BYTES

if TYPE_CHECKING:
    from kubani.inventory.document import InventoryDocument

RECORD_FORMAT = 1
VARS_FOLDERS = ("group_vars", "host_vars")
VAULT_MARK = b"$ANSIBLE_VAULT"


def records_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "kubani" / "validated"


def _record_path(hosts: Path) -> Path:
    key = hashlib.sha256(str(hosts.resolve()).encode()).hexdigest()[:24]
    return records_dir() / f"{key}.json"


def _code() -> str:
    package = Path(kubani.__file__).parent
    digest = hashlib.sha256(kubani.__version__.encode())
    for path in sorted(package.rglob("*.py")):
        stat = path.stat()
        digest.update(f"{path.relative_to(package)}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def _listing(root: Path) -> list[str]:
    names: list[str] = []
    for folder in VARS_FOLDERS:
        for where, dirs, files in os.walk(root / folder):
            dirs.sort()
            names += sorted(str(Path(where, f).relative_to(root)) for f in files)
    return names


def _digest(data: bytes | None) -> str | None:
    return None if data is None else hashlib.sha256(data).hexdigest()


def _read(path: Path) -> bytes | None:
    """A recorded file's bytes now (None: gone); ValueError for what the full check must
    look at (a FIFO would never end, a huge file is refused there)."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    if not S_ISREG(stat.st_mode) or stat.st_size > INVENTORY_FILE_MAX_BYTES:
        raise ValueError(f"{path} is not a file the inventory check would read")
    return path.read_bytes()


def _describe(hosts: Path, files: Iterable[tuple[Path, bytes | None]]) -> dict[str, object]:
    return {
        "format": RECORD_FORMAT,
        "code": _code(),
        "hosts": str(hosts.resolve()),
        "files": {str(path.resolve()): _digest(data) for path, data in files},
        "listing": _listing(hosts.resolve().parent),
    }


def known_valid(hosts: Path) -> bool:
    """Whether ``hosts`` and its variable files are as they were when last found valid."""
    try:
        record = json.loads(_record_path(hosts).read_text(encoding="utf-8"))
        recorded = record["files"]
        if not isinstance(recorded, dict) or str(hosts.resolve()) not in recorded:
            return False
        now = _describe(hosts, ((Path(p), _read(Path(p))) for p in recorded))
    except (OSError, ValueError, KeyError, TypeError):
        return False  # no record, or one that cannot be read: check the inventory
    return bool(record == now)


def remember_valid(document: InventoryDocument) -> None:
    """Record ``document`` (just found free of errors) as valid; best effort."""
    files = [(f.path, f.original) for f in document.files()]
    if any(data is not None and VAULT_MARK in data for _, data in files):
        return
    record = _describe(document.hosts_path, files)
    path = _record_path(document.hosts_path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        # Temporary file and rename, without fsync: a record lost to a crash costs one check.
        fd, temporary = tempfile.mkstemp(prefix=".record.", dir=path.parent)
    except OSError:
        return  # a cache: the next run checks the inventory again
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(record, out, indent=1)
        Path(temporary).replace(path)
    except OSError:
        Path(temporary).unlink(missing_ok=True)
