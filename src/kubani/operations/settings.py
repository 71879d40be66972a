"""Reading a value typed on the command line for an inventory variable: as the caller says,
else as the setting is declared (the cluster and node models, then the roles' argument
specs), else as text."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kubani import jsonsafe
from kubani.errors import KubaniError
from kubani.vocabulary import BOOLEAN_WORDS, ValueKind


def setting_kind(key: str, near: Path | None) -> ValueKind | None:
    """The kind the models or the roles (of the Ansible tree found from ``near``) declare."""
    from kubani.ansible.project import ansible_dir
    from kubani.ansible.specs import role_variable_kinds
    from kubani.inventory.paths import parse_key_path
    from kubani.models.declared import declared_kind

    path = parse_key_path(key)
    kind = declared_kind(path)
    if kind is not None or len(path) > 1:
        return kind
    try:
        folder = ansible_dir(near)
    except KubaniError:
        return None  # no Ansible tree here: nothing more is declared
    return role_variable_kinds(folder).get(path[0])


def read_value(raw: str, kind: ValueKind | None, key: str, near: Path | None = None) -> Any:
    """``raw`` as ``kind``; with no kind, as declared for ``key``, else as text."""
    declared = kind is None
    if kind is None:
        kind = setting_kind(key, near) or ValueKind.STRING
    because = f"{key} is declared {kind.value}; " if declared else ""
    fix = "pass the value as that kind, or say how to read it with --type" if declared else None
    if kind is ValueKind.STRING:
        return raw
    if kind is ValueKind.INT:
        try:
            return int(raw.strip())
        except ValueError:
            raise KubaniError(
                f"bad value for {key}", f"{because}{raw!r} is not an integer", fix
            ) from None
    if kind is ValueKind.BOOL:
        word = raw.strip().lower()
        if word in BOOLEAN_WORDS:
            return BOOLEAN_WORDS[word]
        raise KubaniError(f"bad value for {key}", f"{because}{raw!r} is not true or false", fix)
    try:
        return jsonsafe.loads(raw)
    except json.JSONDecodeError as exc:
        raise KubaniError(f"bad value for {key}", f"{because}not JSON: {exc.msg}", fix) from None
