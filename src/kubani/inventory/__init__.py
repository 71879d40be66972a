"""The inventory engine: round-trip editing that keeps comments, validated atomic writes."""

from kubani.inventory.document import InventoryDocument, InventoryFormatError
from kubani.inventory.locate import find_inventory
from kubani.inventory.store import InventoryInvalid, atomic_write, edit_inventory, inventory_lock

__all__ = [
    "InventoryDocument",
    "InventoryFormatError",
    "InventoryInvalid",
    "atomic_write",
    "edit_inventory",
    "find_inventory",
    "inventory_lock",
]
