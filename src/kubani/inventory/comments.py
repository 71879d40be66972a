"""Keep comment lines where a reader expects them when entries are appended or removed.

ruamel.yaml stores the comment lines that follow an entry on the deepest last key of
that entry (slot 2 of ``ca.items[key]``), together with that line's own end-of-line
comment. Those following lines visually belong to whatever comes next, so when the
last entry changes they must move with the end of the mapping.
"""

from __future__ import annotations

from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import CommentMark
from ruamel.yaml.tokens import CommentToken


def _last_leaf(node: Any) -> tuple[Any, Any, int] | None:
    """The container, key and comment slot that hold the comments after ``node``."""
    leaf: tuple[Any, Any, int] | None = None
    while True:
        if isinstance(node, CommentedMap) and len(node):
            key = next(reversed(node))
            leaf = (node, key, 2)
            node = node[key]
        elif isinstance(node, CommentedSeq) and len(node):
            index = len(node) - 1
            leaf = (node, index, 0)
            node = node[index]
        else:
            return leaf


def take_following(node: Any) -> str:
    """Detach and return the comment lines after ``node`` (its own end-of-line comment stays)."""
    leaf = _last_leaf(node)
    if leaf is None:
        return ""
    container, key, slot = leaf
    entry = container.ca.items.get(key)
    if not entry or entry[slot] is None:
        return ""
    token = entry[slot]
    own_line, newline, following = token.value.partition("\n")
    if not following:
        return ""
    if own_line.strip():
        token.value = own_line + newline
    else:
        entry[slot] = None
    return str(following)


def put_following(node: Any, text: str) -> bool:
    """Attach comment lines after ``node``; False when ``node`` has nothing to attach to."""
    if not text:
        return True
    leaf = _last_leaf(node)
    if leaf is None:
        return False
    container, key, slot = leaf
    entry = container.ca.items.setdefault(key, [None, None, None, None])
    while len(entry) <= slot:
        entry.append(None)
    token = entry[slot]
    if token is None:
        entry[slot] = CommentToken("\n" + text, CommentMark(0), None)
    else:
        token.value = token.value + text
    return True


def _slot(parent: CommentedMap, key: Any) -> list[Any]:
    entry: list[Any] = parent.ca.items.setdefault(key, [None, None, None, None])
    while len(entry) < 4:
        entry.append(None)
    return entry


def take_following_after(parent: CommentedMap, key: Any) -> str:
    """The comment lines after ``parent[key]``, wherever ruamel keeps them."""
    value = parent[key]
    if isinstance(value, CommentedMap | CommentedSeq) and len(value):
        return take_following(value)
    entry = parent.ca.items.get(key)
    if not entry or len(entry) < 3 or entry[2] is None:
        return ""
    token = entry[2]
    own_line, newline, following = token.value.partition("\n")
    if not following:
        return ""
    if own_line.strip():
        token.value = own_line + newline
    else:
        entry[2] = None
    return str(following)


def put_following_after(parent: CommentedMap, key: Any, text: str) -> None:
    if not text:
        return
    if put_following(parent[key], text):
        return
    entry = _slot(parent, key)
    if entry[2] is None:
        entry[2] = CommentToken("\n" + text, CommentMark(0), None)
    else:
        entry[2].value += text


def take_leading(mapping: CommentedMap) -> str:
    """Detach the comment lines before the first key of ``mapping``, as indented text."""
    comment = mapping.ca.comment
    if not comment or len(comment) < 2 or not comment[1]:
        return ""
    text = "".join(" " * t.start_mark.column + t.value for t in comment[1] if t is not None)
    comment[1] = []
    return text


def append_leading(mapping: CommentedMap, text: str) -> None:
    """Add comment lines (already indented) just before the first key of ``mapping``."""
    if not text:
        return
    if mapping.ca.comment is None:
        mapping.ca.comment = [None, []]
    while len(mapping.ca.comment) < 2:
        mapping.ca.comment.append([])
    if mapping.ca.comment[1] is None:
        mapping.ca.comment[1] = []
    for line in text.splitlines(keepends=True):
        stripped = line.lstrip(" ")
        column = len(line) - len(stripped)
        mapping.ca.comment[1].append(CommentToken(stripped, CommentMark(column), None))
