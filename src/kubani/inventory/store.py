"""Safe writes: validate first, then replace each file atomically under a lock."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from kubani.errors import KubaniError
from kubani.inventory.document import InventoryDocument
from kubani.models.problems import Problems

LOCK_TIMEOUT_S = 60.0


class InventoryInvalid(KubaniError):
    """The change would leave an invalid inventory; nothing was written."""

    def __init__(self, problems: Problems, action: str) -> None:
        self.problems = problems
        first = problems.errors[0]
        more = len(problems.errors) - 1
        extra = f" (and {more} more; run `cluster-mgr validate`)" if more else ""
        super().__init__(action, f"{first.where}: {first.message}{extra}", None)


@contextmanager
def inventory_lock(hosts_path: Path, timeout: float = LOCK_TIMEOUT_S) -> Iterator[None]:
    """An exclusive advisory lock beside the inventory; released even if the holder dies."""
    lock_path = hosts_path.parent / f".{hosts_path.name}.lock"
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:  # read-only folder or file system, or no such folder
        raise _not_writable(lock_path, exc) from None
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                if time.monotonic() > deadline:
                    raise KubaniError(
                        f"cannot lock {hosts_path}",
                        f"another cluster-mgr has held {lock_path.name} for {timeout:.0f} s",
                        "wait for it to finish, or stop it",
                    ) from None
                time.sleep(0.02)
        yield
    finally:
        os.close(fd)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_stale_temp_files(path: Path) -> None:
    """Temp files left by a writer that died; only call with the lock held."""
    path = Path(os.path.realpath(path))  # they are written beside a link's target
    for leftover in path.parent.glob(f".{path.name}.*.tmp"):
        leftover.unlink(missing_ok=True)


def _not_writable(path: Path, exc: OSError) -> KubaniError:
    return KubaniError(
        f"cannot write {path}",
        f"{exc.strerror or exc} in {path.parent}",
        f"check that you may write to {path.parent} (a file is written beside the old one, "
        "then renamed over it)",
    )


def write_target(path: Path) -> Path:
    """The file a write to ``path`` must replace: through symbolic links (an inventory or
    kubeconfig kept in a dotfiles repository stays a link to it, and that file changes).
    A read-only file is refused rather than replaced."""
    target = Path(os.path.realpath(path)) if path.is_symlink() else path
    try:
        mode = target.stat().st_mode
    except FileNotFoundError:
        return target
    if target.is_dir():
        raise KubaniError(
            f"cannot write {path}", "it is a folder, not a file", "give the path of a file"
        )
    if not mode & stat.S_IWUSR:
        shown = f"{path} (a link to {target})" if target != path else str(path)
        raise KubaniError(
            f"cannot write {shown}",
            f"the file is read-only (mode {stat.S_IMODE(mode):04o}), so it is left as it is",
            f"make it writable (`chmod u+w {target}`) if it is meant to change",
        )
    return target


def atomic_write(path: Path, data: bytes, backup: bool = True, mode: int | None = None) -> None:
    """Replace ``path`` with ``data`` so that readers see the old or the new file, never half.

    A symbolic link is written through: its target is replaced, the link stays. The previous
    version is kept as ``<name>.bak`` beside the file replaced, a regular file. New files are
    created 0600: inventories and group_vars can hold secrets. ``mode`` forces the mode (set
    before the rename).
    """
    path = write_target(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except PermissionError as exc:
        raise _not_writable(path, exc) from None
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if mode is not None:
            tmp.chmod(mode)
        elif path.exists():
            tmp.chmod(stat.S_IMODE(path.stat().st_mode))
        if path.exists() and backup:
            backup_tmp = path.parent / f".{path.name}.bak.{os.getpid()}.tmp"
            backup_tmp.unlink(missing_ok=True)
            os.link(path, backup_tmp)
            backup_tmp.replace(path.parent / f"{path.name}.bak")
            # A writer killed between the two renames leaves the backup a link to the file
            # itself; renaming a link onto another link of the same file does nothing.
            backup_tmp.unlink(missing_ok=True)
        tmp.replace(path)
        _fsync_dir(path.parent)
    except PermissionError as exc:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise _not_writable(path, exc) from None
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


@contextmanager
def edit_inventory(
    hosts_path: Path, action: str, check: Callable[[Problems], None] | None = None
) -> Iterator[InventoryDocument]:
    """Lock, read, let the caller change the document, validate, write what changed.

    ``check`` may refuse the change on warnings. If the caller or ``check`` raises, or the
    result is invalid, no file is touched.
    """
    with inventory_lock(hosts_path):
        remove_stale_temp_files(hosts_path)
        document = InventoryDocument(hosts_path)
        yield document
        _, problems = document.validate()
        document.problems = problems
        if problems.errors:
            raise InventoryInvalid(problems, action)
        if check is not None:
            check(problems)
        for changed in document.changed_files():
            remove_stale_temp_files(changed.path)
            atomic_write(changed.path, changed.render())
