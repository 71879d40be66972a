"""pydantic's validation errors in the user's words: the field's path as written in the
inventory (no validator names), one line per field (a union's alternatives joined), what
was expected and what was given."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pydantic import ValidationError

# What was expected, by pydantic's error type.
_EXPECTED = {
    "bool_parsing": "true or false",
    "bool_type": "true or false",
    "dict_type": "a mapping (key: value)",
    "list_type": "a list",
    "int_parsing": "a whole number",
    "int_type": "a whole number",
    "int_from_float": "a whole number",
    "float_parsing": "a number",
    "float_type": "a number",
    "string_type": "text",
    "ip_any_address": "an IP address",
    "ip_v4_address": "an IPv4 address",
    "ip_v6_address": "an IPv6 address",
}
_MAX_SHOWN = 60


def _where(location: tuple[Any, ...]) -> str:
    """The dotted path of field names and list indexes, without pydantic's own steps
    (``lax-or-strict[...]``, ``function-after[...]``, a union member's type name)."""
    parts = []
    for part in location:
        if isinstance(part, int):
            parts.append(str(part))
        elif isinstance(part, str) and "[" not in part and "(" not in part:
            parts.append(part)
    return ".".join(parts)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 3] + "..."


def _message(error: dict[str, Any]) -> str:
    kind, message = str(error.get("type")), str(error.get("msg") or "invalid")
    if kind == "missing":
        return "required, but missing"
    if kind == "extra_forbidden":
        return "not a setting Kubani knows (a typo?)"
    if kind == "value_error":
        return message.removeprefix("Value error, ")
    expected = _EXPECTED.get(kind)
    if expected is None:
        message = message.removeprefix("Input should be ").removeprefix("Input is ")
        expected = message
    given = error.get("input")
    if isinstance(given, dict | list) and len(repr(given)) > _MAX_SHOWN:
        return f"expected {expected}, got a {type(given).__name__}"
    return f"expected {expected}, got {_shown(given)}"


def readable_errors(exc: ValidationError) -> list[tuple[str, str]]:
    """(path, message) per field, in pydantic's order."""
    found: dict[str, list[str]] = {}
    for error in exc.errors(include_url=False):
        where = _where(tuple(error.get("loc") or ()))
        message = _message(dict(error))
        messages = found.setdefault(where, [])
        if message not in messages:
            messages.append(message)
    return [(where, _join(messages)) for where, messages in found.items()]


def _join(messages: list[str]) -> str:
    """A union's alternatives as one message: "expected an IPv4 address or an IPv6
    address, got [1, 2]"."""
    if len(messages) == 1:
        return messages[0]
    heads, tails = zip(*(m.rpartition(", got ")[::2] for m in messages), strict=True)
    if all(m.startswith("expected ") for m in heads) and len(set(tails)) == 1:
        options = " or ".join(h.removeprefix("expected ") for h in heads)
        return f"expected {options}, got {tails[0]}"
    return "; or ".join(messages)
