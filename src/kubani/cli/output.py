"""Where output goes: data on stdout (one JSON document with --json), people's notes on stderr."""

from __future__ import annotations

import json
import os
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text

_consoles: dict[bool, Console] = {}


def console(stderr: bool = False) -> Console:
    """A Rich console; Rich itself honours NO_COLOR and plain output when not a terminal."""
    if stderr not in _consoles:
        from rich.console import Console

        out = Console(stderr=stderr, highlight=False, soft_wrap=stderr)
        if not out.is_terminal and "COLUMNS" not in os.environ:
            # Logs and pipes: tables as wide as they need, not folded at 80 columns.
            out = Console(stderr=stderr, highlight=False, soft_wrap=stderr, width=160)
        _consoles[stderr] = out
    return _consoles[stderr]


def plain(text: str, style: str = "") -> Text:
    """Text from outside (the API, the tailnet) as a Rich cell: never read as markup (a plain
    string cell is, and "[/]" in a message would fail to render), its control characters
    written out (an escape sequence would steer the terminal)."""
    from rich.text import Text

    from kubani.printable import printable

    return Text(printable(text), style=style)


def emit_json(data: Any) -> None:
    """One JSON document on stdout: indented for a person at a terminal, on one line for a
    pipe or a file (as gh does). Python's fast C encoder only writes the latter: indenting
    1,000 peers costs more than discovering them."""
    indent = 2 if sys.stdout.isatty() else None
    sys.stdout.write(json.dumps(data, indent=indent, default=str) + "\n")
    sys.stdout.flush()


# One-line messages are written without Rich: loading it costs more than most commands'
# own work. The colours follow Rich's rules (NO_COLOR wins, FORCE_COLOR forces, a terminal).
_GREEN, _YELLOW, _BOLD_RED = "32", "33", "1;31"


def _colour() -> bool:
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    if os.environ.get("TERM") in ("dumb", "unknown"):
        return False
    return sys.stderr.isatty()


def _line(mark: str, colour: str, message: str) -> None:
    from kubani.printable import printable  # messages quote files, names and tools

    if mark and _colour():
        mark = f"\x1b[{colour}m{mark}\x1b[0m"
    message = printable(message)
    sys.stderr.write(f"{mark} {message}\n" if mark else f"{message}\n")
    sys.stderr.flush()


def note(message: str) -> None:
    _line("", "", message)


def warn(message: str) -> None:
    _line("warning:", _YELLOW, message)


def success(message: str) -> None:
    _line("✓", _GREEN, message)


def error(message: str) -> None:
    _line("error:", _BOLD_RED, message)
