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
