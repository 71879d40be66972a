"""Where output goes: data on stdout (one JSON document with --json), people's notes on stderr."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

_consoles: dict[bool, Console] = {}


def console(stderr: bool = False) -> Console:
    """A Rich console; Rich itself honours NO_COLOR and plain output when not a terminal."""
    if stderr not in _consoles:
        from rich.console import Console

        _consoles[stderr] = Console(stderr=stderr, highlight=False, soft_wrap=stderr)
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
