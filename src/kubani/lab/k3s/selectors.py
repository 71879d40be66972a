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


def label_matcher(selector: str | None) -> Matcher:
    if not selector:
        return lambda _obj: True
    tests: list[Callable[[dict[str, str]], bool]] = []
    for term in _split(selector):
        set_match = _SET.match(term)
        if set_match:
            key, op, values = set_match.group(1), set_match.group(2), {
                v.strip() for v in set_match.group(3).split(",")}
            if op == "in":
                tests.append(lambda labels, k=key, vs=values: labels.get(k) in vs)
            else:
                tests.append(lambda labels, k=key, vs=values: labels.get(k) not in vs)
        elif "!=" in term:
            key, value = (s.strip() for s in term.split("!=", 1))
            tests.append(lambda labels, k=key, v=value: labels.get(k) != v)
        elif "=" in term:
            key, value = (s.strip() for s in term.replace("==", "=").split("=", 1))
            tests.append(lambda labels, k=key, v=value: labels.get(k) == v)
        elif term.startswith("!"):
            tests.append(lambda labels, k=term[1:].strip(): k not in labels)
        else:
            tests.append(lambda labels, k=term: k in labels)

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


def field_matcher(selector: str | None) -> Matcher:
    if not selector:
        return lambda _obj: True
    tests: list[Callable[[dict[str, Any]], bool]] = []
    for term in _split(selector):
        if "!=" in term:
            path, value = term.split("!=", 1)
            tests.append(lambda o, p=path.strip(), v=value.strip(): _field(o, p) != v)
        else:
            path, value = term.replace("==", "=").split("=", 1)
            tests.append(lambda o, p=path.strip(), v=value.strip(): _field(o, p) == v)
    return lambda obj: all(test(obj) for test in tests)
