"""Helpers that several commands share."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from kubani.cli.state import options

if TYPE_CHECKING:
    from kubani.inventory.document import InventoryDocument


def inventory_path() -> Path:
    from kubani.inventory.locate import find_inventory

    return find_inventory(options.inventory)


def read_inventory() -> InventoryDocument:
    from kubani.inventory.document import InventoryDocument

    return InventoryDocument(inventory_path())


def confirm_by_name(action: str, warning: str, name: str, yes: bool) -> None:
    """Ask the user to type ``name`` before something that cannot be undone; ``--yes``
    skips the question, and without a terminal to ask on it must be given."""
    import sys

    import typer

    from kubani.errors import KubaniError

    if yes:
        return
    if not sys.stdin.isatty():
        raise KubaniError(
            f"{action} needs a confirmation",
            "there is no terminal to ask on",
            "pass --yes to confirm in a script",
        )
    typed = typer.prompt(f"{warning}\nType {name!r} to confirm", err=True)
    if typed.strip() != name:
        raise KubaniError(f"{action} cancelled", f"{typed.strip()!r} is not {name!r}", None)
