"""Files a user names (a saved tailnet status, a policy, ``-e @file``, an inventory to
import, the files of a GitOps tree), read whole but only when reading can end.

A device (``/dev/zero``, ``/dev/tty``), a socket or a folder is refused before it is opened
(opening some devices does something); a pipe (``<(ssh box cat hosts.ini)``) is read, as a
file is, up to ``MAX_USER_FILE_BYTES``. What is refused is an ``OSError`` whose text says
why, so a reader's usual ``except OSError`` reports it like any other unreadable file.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

MAX_USER_FILE_BYTES = 64 * 2**20
# What some Windows editors write before UTF-8 text; YAML readers skip it, others do not.
BYTE_ORDER_MARK = "\ufeff"


class UnreadableFileError(OSError):
    """A file Kubani will not read: what it is, or how large."""

    def __str__(self) -> str:
        return str(self.strerror)


def read_bytes(path: Path, limit: int = MAX_USER_FILE_BYTES) -> bytes:
    _refuse_endless(path.stat().st_mode)
    with path.open("rb") as handle:
        _refuse_endless(os.fstat(handle.fileno()).st_mode)  # replaced since the check
        data = handle.read(limit + 1)
    if len(data) > limit:
        shown = f"{limit // 2**20} MiB" if limit >= 2**20 else f"{limit} bytes"
        raise UnreadableFileError(
            errno.EFBIG, f"it holds more than {shown}, more than Kubani reads"
        )
    return data


def read_text(path: Path, limit: int = MAX_USER_FILE_BYTES) -> str:
    """The file as UTF-8 text (``UnicodeDecodeError`` when it is not)."""
    return read_bytes(path, limit).decode("utf-8")


def _refuse_endless(mode: int) -> None:
    if stat.S_ISDIR(mode):
        raise UnreadableFileError(errno.EISDIR, "it is a folder, not a file")
    kinds = (
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    )
    for test, kind in kinds:
        if test(mode):
            raise UnreadableFileError(
                errno.EINVAL, f"it is {kind}, not a file: reading it might never end"
            )
