"""Edit a YAML file as text, using parser positions: keep every byte that is not changed.

Used for the common edits (append a host to a block mapping, delete a host). The caller
re-parses the result and checks it against the expected data; anything unusual falls
back to the round-trip editor.
"""

from __future__ import annotations

from typing import Any

import yaml

from kubani.inventory.fastyaml import dump_block


def child(node: yaml.Node | None, key: str) -> yaml.Node | None:
    if not isinstance(node, yaml.MappingNode):
        return None
    for key_node, value_node in node.value:
        if isinstance(key_node, yaml.ScalarNode) and key_node.value == key:
            found: yaml.Node = value_node
            return found
    return None


def walk(node: yaml.Node | None, *keys: str) -> yaml.Node | None:
    for key in keys:
        node = child(node, key)
    return node


def _last_content_line(node: yaml.Node) -> int:
    """0-based index of the last line that holds part of ``node`` (not trailing comments)."""
    while isinstance(node, yaml.MappingNode | yaml.SequenceNode) and not node.flow_style:
        if not node.value:
            break
        last = node.value[-1]
        node = last[1] if isinstance(node, yaml.MappingNode) else last
    end = node.end_mark
    line: int = end.line
    if end.column == 0 and line > node.start_mark.line:
        line -= 1
    return line


def _is_block_mapping(node: yaml.Node | None) -> bool:
    return isinstance(node, yaml.MappingNode) and not node.flow_style and bool(node.value)


def append_entry(
    text: str, mapping: yaml.Node | None, key: str, value: Any, indent: int, offset: int
) -> str | None:
    """Text with ``key: value`` added after the last entry of a non-empty block mapping."""
    if not _is_block_mapping(mapping):
        return None
    assert isinstance(mapping, yaml.MappingNode)
    column = mapping.value[0][0].start_mark.column
    lines = text.splitlines(keepends=True)
    after = _last_content_line(mapping) + 1
    if after > len(lines):
        return None
    if after == len(lines) and lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    block = dump_block({key: value}, indent=indent, indent_sequences=offset > 0)
    pad = " " * column
    insert = [pad + line if line.strip() else line for line in block.splitlines(keepends=True)]
    return "".join(lines[:after] + insert + lines[after:])


def remove_entry(text: str, mapping: yaml.Node | None, key: str) -> str | None:
    """Text without ``key`` and its value; None unless other entries remain in block style."""
    if not _is_block_mapping(mapping):
        return None
    assert isinstance(mapping, yaml.MappingNode)
    if len(mapping.value) < 2:
        return None
    for key_node, value_node in mapping.value:
        if isinstance(key_node, yaml.ScalarNode) and key_node.value == key:
            first = key_node.start_mark.line
            line_start = text.rfind("\n", 0, key_node.start_mark.index) + 1
            if text[line_start : key_node.start_mark.index].strip():
                return None  # the key shares its line with something else
            last = _last_content_line(value_node) if value_node.value not in (None, "") else first
            lines = text.splitlines(keepends=True)
            if any(
                line.strip() and not line.lstrip().startswith("#")
                for line in lines[first : last + 1][1:]
                if len(line) - len(line.lstrip()) <= key_node.start_mark.column
            ):
                return None  # something at the key's own level inside the span: be safe
            return "".join(lines[:first] + lines[last + 1 :])
    return None
