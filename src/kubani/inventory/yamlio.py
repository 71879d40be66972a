"""YAML in two flavours: round-trip (keeps comments, order, quotes) and fast read-only."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.util import load_yaml_guess_indent


@dataclass(frozen=True)
class IndentStyle:
    """The indentation a file already uses, so that rewriting it keeps its look."""

    mapping: int = 2
    sequence: int = 4
    offset: int = 2


def _round_trip(style: IndentStyle) -> YAML:
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096
    yaml.indent(mapping=style.mapping, sequence=style.sequence, offset=style.offset)
    return yaml


def load_round_trip(text: str) -> tuple[Any, IndentStyle]:
    """Parse keeping comments; also guess the file's indentation."""
    if not text.strip():
        return CommentedMap(), IndentStyle()
    _, indent, block_seq_indent = load_yaml_guess_indent(text)
    mapping = indent or 2
    offset = block_seq_indent if block_seq_indent is not None else mapping
    style = IndentStyle(mapping=mapping, sequence=max(offset + 2, mapping), offset=offset)
    return _round_trip(style).load(text), style


def dump_round_trip(data: Any, style: IndentStyle) -> str:
    buffer = io.StringIO()
    _round_trip(style).dump(data, buffer)
    return buffer.getvalue()


def plain(value: Any) -> Any:
    """Round-trip containers as plain dicts and lists (for models and JSON)."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def to_round_trip(value: Any) -> Any:
    """Plain data as round-trip containers, so that it dumps in block style."""
    if isinstance(value, dict):
        out = CommentedMap()
        for key, item in value.items():
            out[key] = to_round_trip(item)
        return out
    if isinstance(value, list | tuple):
        return CommentedSeq(to_round_trip(item) for item in value)
    return value
