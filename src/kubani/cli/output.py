"""Where output goes: data on stdout (one JSON document with --json), people's notes on stderr."""

from __future__ import annotations

import json
import os
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

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


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
    sys.stdout.flush()


def note(message: str) -> None:
    console(stderr=True).print(message, markup=False)


def warn(message: str) -> None:
    console(stderr=True).print(f"[yellow]warning:[/] {_escape(message)}")


def success(message: str) -> None:
    console(stderr=True).print(f"[green]✓[/] {_escape(message)}")


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)
