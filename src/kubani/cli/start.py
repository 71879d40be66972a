"""``cluster-mgr``'s console script: the collector paused while the CLI starts, then the CLI,
then an exit that skips tearing the interpreter down.

Kept apart from ``kubani.cli.main``, which imports Typer as it loads: the pause has to
begin before that import.
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import NoReturn

# A command that has not finished by then is a long one (a provision, a watch): it collects
# again from here on, skipping what start-up made (frozen).
STARTUP_PAUSE_S = 2.0


def run() -> NoReturn:
    from kubani.collector import pause_for

    pause_for(STARTUP_PAUSE_S)
    from kubani.cli.main import run as run_cli

    try:
        run_cli()
    except SystemExit as done:
        leave(done.code)
    leave(None)


def leave(status: str | int | None) -> NoReturn:
    """End the process with ``status`` as ``sys.exit`` would, once its output is written,
    without the interpreter's teardown: freeing every module and object one by one costs a
    command about 10 ms (a fifth of ``--help``) and does nothing the system does not do.

    Nothing of the CLI's waits for that teardown: its threads are daemons or joined, its
    temporary folders are removed by ``with`` blocks, and nothing registers ``atexit``
    work. Coverage and profilers write their results at exit, so with one attached the
    interpreter ends normally."""
    if sys.gettrace() is not None or sys.getprofile() is not None:
        sys.exit(status)
    code = _exit_code(status)
    for stream in (sys.stdout, sys.stderr):
        # A reader that went away (`| head`), a closed stream: nothing more can be written.
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)


def _exit_code(status: str | int | None) -> int:
    """The process's exit status for ``sys.exit(status)``: None is 0, an integer itself,
    anything else is printed to stderr and is 1."""
    if status is None:
        return 0
    if isinstance(status, int):
        return status & 0xFF
    with contextlib.suppress(OSError, ValueError):
        sys.stderr.write(f"{status}\n")
    return 1
