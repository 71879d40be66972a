"""Kubernetes resource quantities (``500m``, ``2``, ``1.5Gi``, ``1e3``), parsed exactly."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

# ASCII digits only: Python's \d (and Decimal) also take other scripts' digits (U+FF11), which
# Kubernetes does not.
_QUANTITY = re.compile(
    r"^(?P<number>[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))"
    r"(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?[0-9]+)?$"
)
# Kubernetes holds no quantity larger than this (it caps them silently).
_LARGEST = Decimal(2**63 - 1)

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": Decimal(1),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
}


class QuantityError(ValueError):
    """A string that is not a Kubernetes quantity."""


def parse_quantity(text: str | int | float) -> Decimal:
    """Return the value of a Kubernetes quantity as an exact Decimal."""
    raw = str(text).strip()
    match = _QUANTITY.match(raw)
    if not match:
        raise QuantityError(f"{raw!r} is not a Kubernetes quantity")
    number = Decimal(match["number"])
    suffix = match["suffix"] or ""
    try:
        if suffix in _BINARY:
            value = number * _BINARY[suffix]
        elif suffix in _DECIMAL:
            value = number * _DECIMAL[suffix]
        else:
            value = number.scaleb(int(suffix[1:]))
    except (InvalidOperation, ValueError) as exc:  # an exponent past Decimal's own range
        raise QuantityError(f"{raw!r} has an exponent out of any range") from exc
    if abs(value) > _LARGEST:
        raise QuantityError(f"{raw!r} is beyond what a Kubernetes quantity holds (±2^63 - 1)")
    return value


def cpu_quantity(text: str | int | float) -> str:
    """Validate a CPU amount (cores or millicores) and return it as a string."""
    raw = str(text).strip()
    value = parse_quantity(raw)
    if value < 0:
        raise QuantityError(f"{raw!r} is negative")
    if raw.endswith(tuple(_BINARY)):
        raise QuantityError(f"{raw!r} uses a memory suffix; CPU is given in cores (2) or m (500m)")
    return raw


def memory_quantity(text: str | int | float) -> str:
    """Validate a memory amount and return it as a string.

    A bare ``m`` suffix is rejected: ``512m`` is 0.512 bytes, a classic slip for ``512Mi``.
    """
    raw = str(text).strip()
    value = parse_quantity(raw)
    if value < 0:
        raise QuantityError(f"{raw!r} is negative")
    if raw.endswith(("m", "u", "n")):
        number = raw.rstrip("mun")
        raise QuantityError(f"{raw!r} is a fraction of a byte; did you mean {number}Mi?")
    return raw
