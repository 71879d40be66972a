"""libyaml-backed YAML: fast reads with node positions, and block-style dumps.

PyYAML resolves scalars as YAML 1.1, which is what Ansible itself reads inventories with
(``yes`` is a boolean there), so what we validate is what Ansible will see.
"""

from __future__ import annotations

from typing import Any, ClassVar

import yaml

from kubani.collector import paused
from kubani.yamlsafe import CSafeLoader


class DuplicateKeyError(yaml.YAMLError):
    def __init__(self, key: object, line: int) -> None:
        super().__init__(f"key {key!r} appears twice in one mapping (line {line})")
        self.line = line


class AnsibleTagged(str):
    """A string Ansible reads through a tag of its own; equal only to the same kind, so an
    edit that loses the tag never reads back as the file it should have written."""

    tag: ClassVar[str]

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and str.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        return not self == other

    __hash__ = str.__hash__

    def __repr__(self) -> str:
        return f"{self.tag} {str.__repr__(self)}"


class VaultValue(AnsibleTagged):
    """``!vault |``: an inline Ansible Vault ciphertext."""

    tag = "!vault"


class UnsafeValue(AnsibleTagged):
    """``!unsafe``: a string Ansible never templates."""

    tag = "!unsafe"


def _wrap_unsafe(value: Any) -> Any:
    if isinstance(value, str):
        return UnsafeValue(value)
    if isinstance(value, list):
        return [_wrap_unsafe(item) for item in value]
    if isinstance(value, dict):
        return {key: _wrap_unsafe(item) for key, item in value.items()}
    return value


_RESOLVED: dict[tuple[str, Any], str] = {}
_RESOLVED_MAX = 1 << 16


class _Loader(CSafeLoader):
    def resolve(
        self,
        kind: type[yaml.Node],
        value: Any,
        implicit: Any,
        _cached: Any = _RESOLVED.get,
        _scalar: type[yaml.Node] = yaml.ScalarNode,
    ) -> str:
        # (types-pyyaml leaves Resolver.resolve unannotated, hence the ignores below.)
        # libyaml asks Python for every scalar's tag, and an inventory repeats its keys and
        # many values thousands of times: the regular expressions run once per distinct one.
        if kind is _scalar and value.__class__ is str:
            tag: str | None = _cached((value, implicit))
            if tag is not None:
                return tag
            if len(_RESOLVED) >= _RESOLVED_MAX:
                _RESOLVED.clear()
            tag = _RESOLVED[(value, implicit)] = str(super().resolve(kind, value, implicit))  # type: ignore[no-untyped-call]
            return tag
        return str(super().resolve(kind, value, implicit))  # type: ignore[no-untyped-call]

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[tuple[str, str]] = set()
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode):
                key = (key_node.tag, key_node.value)
                if key in seen:
                    raise DuplicateKeyError(key_node.value, key_node.start_mark.line + 1)
                seen.add(key)
        return super().construct_mapping(node, deep=deep)

    def construct_vault(self, node: yaml.Node) -> VaultValue:
        if not isinstance(node, yaml.ScalarNode):
            raise yaml.constructor.ConstructorError(
                None, None, "!vault must tag a string", node.start_mark
            )
        return VaultValue(self.construct_scalar(node))

    def construct_unsafe(self, node: yaml.Node) -> Any:
        if isinstance(node, yaml.ScalarNode):
            return UnsafeValue(self.construct_scalar(node))
        if isinstance(node, yaml.SequenceNode):
            return _wrap_unsafe(self.construct_sequence(node, deep=True))
        if isinstance(node, yaml.MappingNode):
            return _wrap_unsafe(self.construct_mapping(node, deep=True))
        return self.construct_object(node)


_Loader.add_constructor(VaultValue.tag, _Loader.construct_vault)
_Loader.add_constructor(UnsafeValue.tag, _Loader.construct_unsafe)


_STR = "tag:yaml.org,2002:str"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_MERGE = "tag:yaml.org,2002:merge"


class _Unusual(Exception):
    """A document the direct builder leaves to PyYAML's constructor (merge keys)."""


def _build(loader: _Loader, root: yaml.Node) -> Any:
    """The data of a node tree, built directly: what PyYAML's constructor makes, at a third
    of its cost on plain strings, mappings and lists (most of an inventory). Other scalars
    and tags go through the constructor; a merge key hands the document back to it."""
    memo: dict[int, Any] = {}

    def build(node: yaml.Node) -> Any:
        if node.__class__ is yaml.ScalarNode:  # most nodes: no memo, strings as they are
            return node.value if node.tag == _STR else loader.construct_object(node, deep=True)
        known = memo.get(id(node), memo)
        if known is not memo:
            return known  # an alias: the same object, as PyYAML makes it
        tag = node.tag
        value: Any
        if tag == _MAP and isinstance(node, yaml.MappingNode):
            value = memo[id(node)] = {}
            for key_node, value_node in node.value:
                if key_node.tag == _MERGE:
                    raise _Unusual
                key = build(key_node)
                try:
                    present = key in value
                except TypeError:
                    raise yaml.constructor.ConstructorError(
                        "while constructing a mapping",
                        node.start_mark,
                        "found unhashable key",
                        key_node.start_mark,
                    ) from None
                if present:
                    raise DuplicateKeyError(key, key_node.start_mark.line + 1)
                value[key] = build(value_node)
        elif tag == _SEQ and isinstance(node, yaml.SequenceNode):
            value = memo[id(node)] = []
            value.extend(build(item) for item in node.value)
        else:
            value = memo[id(node)] = loader.construct_object(node, deep=True)
        return value

    return build(root)


def load_with_nodes(text: str) -> tuple[Any, yaml.Node | None]:
    """The data and the node tree (with line/column marks) of one YAML document."""
    loader = _Loader(text)
    try:
        with paused():
            node = loader.get_single_node()
            if node is None:
                return None, None
            try:
                data = _build(loader, node)
            except _Unusual:
                data = loader.construct_document(node)
    finally:
        loader.dispose()
    return data, node


# More values than this once aliases are expanded is refused: an "alias bomb" (a few lines
# that name each other thousands of times) would blow up every tool that writes the data
# out (Ansible, --json). A real inventory of 10,000 nodes has well under a million.
EXPANSION_LIMIT = 1_000_000


def expanded_size(root: yaml.Node | None) -> int:
    """How many values the document holds with every alias written out (aliases share
    nodes in the tree, so each node's size is counted once and reused)."""
    if root is None:
        return 0
    sizes: dict[int, int] = {}
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if key in sizes and not children_done:
            continue
        children: list[yaml.Node] = []
        if isinstance(node, yaml.MappingNode):
            children = [part for pair in node.value for part in pair]
        elif isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        if children_done:
            total = 1 + sum(sizes.get(id(child), 1) for child in children)
            sizes[key] = min(total, EXPANSION_LIMIT + 1)
            continue
        sizes[key] = 1  # a node reached again through itself (recursive alias) counts once
        stack.append((node, True))
        stack.extend((child, False) for child in children if id(child) not in sizes)
    return sizes[id(root)]


def load(text: str) -> Any:
    return load_with_nodes(text)[0]


class _Dumper(yaml.SafeDumper):
    """Block dumps that write Ansible's tagged strings back with their tags."""


class _IndentedSequences(_Dumper):
    """Sequences indented under their key (``key:\\n  - item``), the style most files use."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def _represent_tagged(dumper: yaml.SafeDumper, value: AnsibleTagged) -> yaml.ScalarNode:
    style = "|" if isinstance(value, VaultValue) else None
    return dumper.represent_scalar(value.tag, str(value), style=style)


_Dumper.add_representer(VaultValue, _represent_tagged)
_Dumper.add_representer(UnsafeValue, _represent_tagged)


def dump_block(data: Any, indent: int = 2, indent_sequences: bool = True) -> str:
    dumper = _IndentedSequences if indent_sequences else _Dumper
    return yaml.dump(
        data,
        Dumper=dumper,
        default_flow_style=False,
        sort_keys=False,
        indent=indent,
        width=4096,
        allow_unicode=True,
    )


def reads_back_as_string(value: str) -> bool:
    """True when ``value`` written as a plain scalar is still that string for YAML 1.1."""
    try:
        return bool(load(f"k: {value}\n") == {"k": value})
    except yaml.YAMLError:
        return False
