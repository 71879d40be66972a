"""YAML in two flavours: round-trip (keeps comments, order, quotes) and fast read-only."""

from __future__ import annotations

import io
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap

from kubani.inventory.style import IndentStyle, guess_style


def _round_trip(style: IndentStyle) -> YAML:
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096
    yaml.indent(mapping=style.mapping, sequence=style.sequence, offset=style.offset)
    yaml.explicit_start = style.explicit_start
    return yaml


def load_round_trip(text: str) -> tuple[Any, IndentStyle]:
    """Parse keeping comments; also note the file's indentation."""
    if not text.strip():
        return CommentedMap(), IndentStyle()
    style = guess_style(text)
    document = _round_trip(style).load(text)
    if document is None:
        document = _empty_mapping(text, style)
    return document, style


def _empty_mapping(text: str, style: IndentStyle) -> CommentedMap:
    """An empty mapping for a file with no data (``---``, comments): read with its text, so
    the comments stay, when the text can take one."""
    from ruamel.yaml.error import YAMLError

    try:
        document = _round_trip(style).load(f"{text.rstrip()}\n{{}}\n")
    except YAMLError:  # it ends the document (`...`): nothing in it to keep
        return CommentedMap()
    if not isinstance(document, CommentedMap):
        return CommentedMap()
    document.fa.set_block_style()
    return document


def dump_round_trip(data: Any, style: IndentStyle) -> str:
    buffer = io.StringIO()
    _round_trip(style).dump(data, buffer)
    return buffer.getvalue()
