"""JSON read with nesting too deep for Python's parser reported as bad JSON.

``json.loads`` recurses once per level of nesting and lets ``RecursionError`` out on a text
such as ``[[[[...]]]]`` a few thousand levels deep (a hostile file, a broken API reply).
Every reader here catches ``json.JSONDecodeError`` (a ``ValueError``) to say which input is
wrong and where; ``loads`` makes sure that is what it gets, at the place the nesting grows
too deep.
"""

from __future__ import annotations

import json
from typing import Any


class NestedTooDeeplyError(json.JSONDecodeError):
    """JSON nested more deeply than Python's parser can follow."""


def loads(text: str | bytes) -> Any:
    """``json.loads``, raising ``NestedTooDeeplyError`` where it would recurse too deep."""
    try:
        return json.loads(text)
    except RecursionError:
        document = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
        depth, position = deepest(document)
        raise NestedTooDeeplyError(
            f"nested too deeply ({depth:,} levels of arrays and objects)", document, position
        ) from None


def deepest(document: str) -> tuple[int, int]:
    """The greatest nesting of arrays and objects in ``document`` (outside its strings) and
    the position of the bracket that first reaches it."""
    depth = most = position = 0
    in_string = escaped = False
    for index, char in enumerate(document):
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > most:
                most, position = depth, index
        elif char in "]}":
            depth -= 1
    return most, position
