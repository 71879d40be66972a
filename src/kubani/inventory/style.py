"""How a YAML file is laid out, so that rewriting it keeps its look."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class IndentStyle:
    """The indentation a file already uses, so that rewriting it keeps its look."""

    mapping: int = 2
    sequence: int = 4
    offset: int = 2
    explicit_start: bool = False


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


def _has_document_start(text: str) -> bool:
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("---"):
            return True
        if stripped and not stripped.startswith(("#", "%")):
            return False
    return False
