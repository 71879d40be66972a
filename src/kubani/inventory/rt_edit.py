"""Comment-aware edits on ruamel round-trip documents: the general path for any shape."""

from __future__ import annotations

from typing import Any

from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.scalarstring import DoubleQuotedScalarString

from kubani.inventory.comments import (
    append_leading,
    put_following_after,
    take_following_after,
    take_leading,
)
from kubani.inventory.fastyaml import AnsibleTagged, VaultValue, reads_back_as_string


def _child(parent: CommentedMap, key: str) -> CommentedMap:
    if parent.get(key) is None:
        parent[key] = CommentedMap()
    child: CommentedMap = parent[key]
    return child


def to_round_trip(value: Any) -> Any:
    """Plain data as round-trip nodes; strings that YAML 1.1 would misread get quotes."""
    if isinstance(value, dict):
        out = CommentedMap()
        for key, item in value.items():
            out[key] = to_round_trip(item)
        return out
    if isinstance(value, list | tuple):
        from ruamel.yaml.comments import CommentedSeq

        return CommentedSeq(to_round_trip(item) for item in value)
    if isinstance(value, AnsibleTagged):
        from ruamel.yaml.comments import TaggedScalar

        style = "|" if isinstance(value, VaultValue) else "'"
        return TaggedScalar(str(value), style=style, tag=value.tag)
    if isinstance(value, str) and not reads_back_as_string(value):
        return DoubleQuotedScalarString(value)
    return value


def _body(document: CommentedMap, keys: tuple[str, ...]) -> CommentedMap:
    node = document
    for key in keys:
        node = _child(node, key)
    return node


def add_host(
    document: CommentedMap, group_keys: tuple[str, ...], hostname: str, variables: dict[str, Any]
) -> None:
    """Add ``hostname`` to the group whose body is at ``group_keys``."""
    body = _body(document, group_keys)
    following = take_following_after(body, "hosts") if "hosts" in body else ""
    hosts = _child(body, "hosts")
    hosts[hostname] = to_round_trip(variables)
    put_following_after(body, "hosts", following)


def remove_host(document: CommentedMap, group_keys: tuple[str, ...], hostname: str) -> None:
    body = _body(document, group_keys)
    hosts: CommentedMap = body["hosts"]
    names = list(hosts)
    index = names.index(hostname)
    following = take_following_after(hosts, hostname)
    del hosts[hostname]
    if index > 0:
        put_following_after(hosts, names[index - 1], following)
    elif len(hosts):
        append_leading(hosts, following)
    else:
        # An empty mapping would be written as `{}` after the comments; null reads the same.
        following = take_leading(hosts) + following
        body["hosts"] = None
        put_following_after(body, "hosts", following)


def set_path(document: CommentedMap, path: list[str], value: Any) -> None:
    node = document
    for part in path[:-1]:
        node = _child(node, part)
    node[path[-1]] = to_round_trip(value)
