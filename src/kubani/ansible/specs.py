"""What the roles' argument specs (``roles/*/meta/argument_specs.yml``) declare about the
variables users set in the inventory, read as the kinds a command-line value can take."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from kubani import userfiles
from kubani.errors import KubaniError
from kubani.vocabulary import ValueKind
from kubani.yamlsafe import safe_load

# Ansible's argument spec types, as a value typed on the command line is read for them.
_KINDS = {
    "bool": ValueKind.BOOL,
    "int": ValueKind.INT,
    "float": ValueKind.JSON,
    "list": ValueKind.JSON,
    "dict": ValueKind.JSON,
}


def _options(spec: Any) -> dict[str, Any]:
    """Every entry point's options of one role's specs (main, checks, …)."""
    found: dict[str, Any] = {}
    entry_points = spec.get("argument_specs") if isinstance(spec, dict) else None
    for entry in (entry_points or {}).values() if isinstance(entry_points, dict) else ():
        options = entry.get("options") if isinstance(entry, dict) else None
        if isinstance(options, dict):
            found.update({str(k): v for k, v in options.items() if isinstance(v, dict)})
    return found


def role_variable_kinds(ansible_folder: Path) -> dict[str, ValueKind]:
    """Variable name to kind, over every role; a variable two roles declare differently is
    left out (no one kind is right for it)."""
    kinds: dict[str, ValueKind] = {}
    disputed: set[str] = set()
    for path in sorted(ansible_folder.glob("roles/*/meta/argument_specs.yml")):
        try:
            spec = safe_load(userfiles.read_text(path))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            if isinstance(exc, UnicodeDecodeError):
                why = "it is not UTF-8 text"
            elif isinstance(exc, yaml.YAMLError):
                why = f"it is not valid YAML: {' '.join(str(exc).split())}"
            else:
                why = str(exc)
            raise KubaniError(
                f"cannot read {path}",
                why,
                "mend the file, or say how to read the value with --type",
            ) from None
        for name, option in _options(spec).items():
            kind = _KINDS.get(str(option.get("type", "str")), ValueKind.STRING)
            if kinds.setdefault(name, kind) is not kind:
                disputed.add(name)
    return {name: kind for name, kind in kinds.items() if name not in disputed}
