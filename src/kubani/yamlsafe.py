"""YAML read with PyYAML's safe constructors, where a value they cannot convert is a
``yaml.YAMLError`` like any other fault of the file.

PyYAML lets Python's own errors out of those constructors: ``!!int x`` (ValueError),
``!!bool maybe`` (KeyError), ``!!timestamp x`` (AttributeError), ``!!float ''``
(IndexError), and a date that does not exist written plainly, ``2001-02-30``, which YAML
1.1 reads as a timestamp (ValueError). Every reader here catches ``yaml.YAMLError`` to say
which file is wrong and where; these loaders make sure that is what it gets.
"""

from __future__ import annotations

from typing import Any

import yaml

# What PyYAML's safe constructors raise on a value they cannot convert (see above).
_CONVERSION_ERRORS = (ValueError, TypeError, KeyError, AttributeError, IndexError, OverflowError)
_TAG_PREFIX = "tag:yaml.org,2002:"


class UnreadableValueError(yaml.constructor.ConstructorError):
    """A value its tag (written, or implied as for dates) cannot hold."""


class NestedTooDeeplyError(yaml.composer.ComposerError):
    """Collections nested more deeply than PyYAML's Python reader can follow: it recurses
    once per level (libyaml, PyYAML's C reader, stops at 1,000 levels on its own)."""


def _plain_value(loader: yaml.SafeLoader | yaml.CSafeLoader, node: yaml.Node) -> Any:
    """YAML 1.1 resolves a lone ``=`` to its "value" type, which PyYAML cannot construct;
    YAML 1.2 (kubectl, Go) reads it as the text it is (AlertmanagerConfig's ``matchType: =``)."""
    return loader.construct_scalar(node) if isinstance(node, yaml.ScalarNode) else None


class ReadableValues(yaml.constructor.SafeConstructor):
    """Mixed in before a PyYAML loader class (whose constructor is the safe one): conversion
    failures become ``UnreadableValueError`` with the value's position, and nesting too deep
    to follow ``NestedTooDeeplyError`` where the reader had got to."""

    def get_single_data(self) -> Any:
        try:
            return super().get_single_data()
        except RecursionError:
            raise self._too_deep() from None

    def get_data(self) -> Any:
        try:
            return super().get_data()
        except RecursionError:
            raise self._too_deep() from None

    def _too_deep(self) -> NestedTooDeeplyError:
        get_mark = getattr(self, "get_mark", None)  # the Python reader's; libyaml has none
        return NestedTooDeeplyError(
            None,
            None,
            "its collections are nested too deeply to read",
            get_mark() if callable(get_mark) else None,
        )

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except yaml.YAMLError:
            raise
        except _CONVERSION_ERRORS as exc:
            raise unreadable(node, exc) from exc


ReadableValues.add_constructor("tag:yaml.org,2002:value", _plain_value)


def unreadable(node: yaml.Node, exc: BaseException) -> UnreadableValueError:
    tag = str(node.tag)
    kind = f"!!{tag.removeprefix(_TAG_PREFIX)}" if tag.startswith(_TAG_PREFIX) else tag
    shown = repr(node.value) if isinstance(node, yaml.ScalarNode) else "the value"
    # ValueError says why (``day is out of range for month``); the others name internals.
    why = str(exc) if isinstance(exc, ValueError | OverflowError) else "not written as one"
    return UnreadableValueError(
        None,
        None,
        f"{shown} cannot be read as {kind} ({why}); quote it to keep it as text",
        node.start_mark,
    )


class SafeLoader(ReadableValues, yaml.SafeLoader):
    """``yaml.SafeLoader``, its conversion failures made ``yaml.YAMLError``."""


class CSafeLoader(ReadableValues, yaml.CSafeLoader):
    """The same on libyaml, PyYAML's C reader: several times faster."""


def safe_load(text: str) -> Any:
    """``yaml.safe_load`` whose every failure is a ``yaml.YAMLError``."""
    return yaml.load(text, Loader=SafeLoader)


def safe_load_c(text: str) -> Any:
    """``safe_load`` on libyaml, for files read on every run (its errors' positions are
    the same; the Python reader's extras, such as the mark it had got to when nesting went
    too deep, are not kept)."""
    return yaml.load(text, Loader=CSafeLoader)


def safe_load_all(text: str) -> list[Any]:
    """Every document of ``text``, as ``yaml.safe_load_all`` reads them."""
    return list(yaml.load_all(text, Loader=SafeLoader))
