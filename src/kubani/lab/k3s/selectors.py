"""Label and field selectors, as the list and watch calls take them."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

Matcher = Callable[[dict[str, Any]], bool]
_SET = re.compile(r"^\s*([^\s!=]+)\s+(in|notin)\s+\(([^)]*)\)\s*$")


def _split(selector: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for char in selector:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    if current.strip():
        parts.append(current)
    return [p.strip() for p in parts if p.strip()]


def _label_test(term: str) -> Callable[[dict[str, str]], bool]:
    set_match = _SET.match(term)
    if set_match:
        key, op = set_match.group(1), set_match.group(2)
        values = {v.strip() for v in set_match.group(3).split(",")}
        if op == "in":
            return lambda labels: labels.get(key) in values
        return lambda labels: labels.get(key) not in values
    if "!=" in term:
        key, value = (s.strip() for s in term.split("!=", 1))
        return lambda labels: labels.get(key) != value
    if "=" in term:
        key, value = (s.strip() for s in term.replace("==", "=").split("=", 1))
        return lambda labels: labels.get(key) == value
    if term.startswith("!"):
        absent = term[1:].strip()
        return lambda labels: absent not in labels
    return lambda labels: term in labels


def label_matcher(selector: str | None) -> Matcher:
    if not selector:
        return lambda _obj: True
    tests = [_label_test(term) for term in _split(selector)]

    def matches(obj: dict[str, Any]) -> bool:
        labels = (obj.get("metadata") or {}).get("labels") or {}
        return all(test(labels) for test in tests)

    return matches


def _field(obj: dict[str, Any], path: str) -> str:
    node: Any = obj
    for part in path.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    if node is None:
        return ""
    if isinstance(node, bool):
        return "true" if node else "false"
    return str(node)


def _field_test(term: str) -> Matcher:
    negate = "!=" in term
    path, value = (s.strip() for s in term.replace("!=", "=").replace("==", "=").split("=", 1))
    return lambda obj: (_field(obj, path) == value) != negate


def field_matcher(selector: str | None) -> Matcher:
    if not selector:
        return lambda _obj: True
    tests = [_field_test(term) for term in _split(selector)]
    return lambda obj: all(test(obj) for test in tests)
