"""The inventory engine: round-trip editing that keeps comments, validated atomic writes.

The modules are imported by what they hold (``kubani.inventory.document``,
``kubani.inventory.store``, ...): importing the package itself loads none of them.
"""
