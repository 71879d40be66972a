"""``-e/--extra-vars`` as ansible-playbook takes them: ``key=value`` pairs (shell-quoted
values), a JSON or YAML object, or ``@FILE`` holding one. Later ones win."""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from kubani import jsonsafe, userfiles
from kubani.errors import KubaniError


def _bad(text: str, why: str) -> KubaniError:
    return KubaniError(
        f"cannot read the extra variables {text!r}",
        why,
        "use key=value, a JSON object ('{\"key\": 1}') or @file.yml",
    )


def _from_file(text: str) -> dict[str, Any]:
    import yaml  # PyYAML only for the variables that need it

    from kubani.yamlsafe import safe_load

    path = Path(text[1:]).expanduser()
    try:
        loaded = safe_load(userfiles.read_text(path))
    except OSError as exc:
        raise _bad(text, f"{path}: {exc.strerror or exc}") from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise _bad(text, f"{path} is not YAML or JSON: {exc}") from None
    if not isinstance(loaded, dict):
        raise _bad(text, f"{path} does not hold a mapping of variables")
    return loaded


def parse_extra_vars(items: Iterable[str]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for text in items:
        stripped = text.strip()
        if not stripped:
            continue
        if stripped.startswith("@"):
            merged.update(_from_file(stripped))
        elif stripped.startswith("{"):
            try:
                loaded = jsonsafe.loads(stripped)
            except json.JSONDecodeError:
                import yaml

                from kubani.yamlsafe import safe_load

                try:
                    loaded = safe_load(stripped)
                except yaml.YAMLError as exc:
                    raise _bad(text, f"not a JSON or YAML object: {exc}") from None
            if not isinstance(loaded, dict):
                raise _bad(text, "not an object")
            merged.update(loaded)
        else:
            try:
                words = shlex.split(stripped)
            except ValueError as exc:
                raise _bad(text, str(exc)) from None
            for word in words:
                key, equals, value = word.partition("=")
                if not equals or not key.isidentifier():
                    raise _bad(text, f"{word!r} is not key=value")
                merged[key] = value
    return merged
