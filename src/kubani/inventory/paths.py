"""Dotted key paths for config-get/config-set: ``a.b.c`` or ``node_labels[example.com/zone]``."""

from __future__ import annotations

import re

from kubani.errors import KubaniError

_PART = re.compile(r"([^.\[\]]+)|\[([^\]]+)\]")


def parse_key_path(text: str) -> list[str]:
    """Split a key path; brackets quote a key that itself holds dots or slashes."""
    parts: list[str] = []
    position = 0
    while position < len(text):
        if parts and text[position] == ".":
            position += 1
        match = _PART.match(text, position)
        if not match:
            raise KubaniError(
                f"bad key {text!r}",
                f"cannot read a key at position {position}",
                "use dots between keys and [brackets] around keys with dots, "
                "e.g. node_labels[topology.kubernetes.io/zone]",
            )
        parts.append(match.group(1) or match.group(2))
        position = match.end()
    if not parts:
        raise KubaniError("bad key ''", "the key is empty", "name a variable, e.g. k3s_version")
    return parts
