"""YAML in two flavours: round-trip (keeps comments, order, quotes) and fast read-only."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq


@dataclass(frozen=True)
class IndentStyle:
    """The indentation a file already uses, so that rewriting it keeps its look."""

    mapping: int = 2
    sequence: int = 4
    offset: int = 2
    explicit_start: bool = False


def _round_trip(style: IndentStyle) -> YAML:
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096
    yaml.indent(mapping=style.mapping, sequence=style.sequence, offset=style.offset)
    yaml.explicit_start = style.explicit_start
    return yaml


def guess_style(text: str) -> IndentStyle:
    """Mapping indent from the first nested key; dash offset from the first block sequence."""
    mapping: int | None = None
    offset: int | None = None
    previous_key_indent: int | None = None
    for line in text.splitlines():
        stripped = line.lstrip(" ")
        if not stripped or stripped.startswith(("#", "---", "...", "%")):
            continue
        indent = len(line) - len(stripped)
        if stripped.startswith("- ") or stripped == "-":
            if offset is None and previous_key_indent is not None:
                offset = max(indent - previous_key_indent, 0)
            continue
        if mapping is None and previous_key_indent is not None and indent > previous_key_indent:
            mapping = indent - previous_key_indent
        if stripped.rstrip().endswith(":") or ": " in stripped:
            previous_key_indent = indent
        if mapping is not None and offset is not None:
            break
    mapping = mapping or 2
    offset = mapping if offset is None else offset
    return IndentStyle(
        mapping=mapping,
        sequence=offset + 2,
        offset=offset,
        explicit_start=_has_document_start(text),
    )


def load_round_trip(text: str) -> tuple[Any, IndentStyle]:
    """Parse keeping comments; also note the file's indentation."""
    if not text.strip():
        return CommentedMap(), IndentStyle()
    style = guess_style(text)
    return _round_trip(style).load(text), style


def _has_document_start(text: str) -> bool:
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("---"):
            return True
        if stripped and not stripped.startswith(("#", "%")):
            return False
    return False


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
