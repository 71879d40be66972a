"""A host as the inventory lists it, before validation (standard library only: reading an
inventory does not import pydantic; validating it does)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class HostEntry:
    """A host as found in the inventory, with its effective variables."""

    group: str
    hostname: str
    variables: Mapping[str, Any]
    where: str
