"""``cluster-mgr config-get`` / ``config-set``: read and change inventory variables."""

from enum import StrEnum
from typing import Annotated, Any

import typer

app = typer.Typer()

ScopeOption = Annotated[
    str,
    typer.Option(
        "--scope", help="all, control_plane, workers, or a hostname (its effective value)."
    ),
]


class ValueType(StrEnum):
    string = "string"
    int = "int"
    bool = "bool"
    json = "json"


def _convert(raw: str, kind: ValueType, key: str) -> Any:
    import json

    from kubani import jsonsafe
    from kubani.errors import KubaniError

    if kind is ValueType.string:
        return raw
    if kind is ValueType.int:
        try:
            return int(raw)
        except ValueError:
            raise KubaniError(f"bad value for {key}", f"{raw!r} is not an integer", None) from None
    if kind is ValueType.bool:
        lowered = raw.strip().lower()
        if lowered in ("true", "yes", "on", "1"):
            return True
        if lowered in ("false", "no", "off", "0"):
            return False
        raise KubaniError(f"bad value for {key}", f"{raw!r} is not true or false", None)
    try:
        return jsonsafe.loads(raw)
    except json.JSONDecodeError as exc:
        raise KubaniError(f"bad value for {key}", f"not JSON: {exc.msg}", None) from None


@app.command("config-get")
def config_get(
    key: Annotated[
        str, typer.Argument(help="Variable, dotted for nested keys: a.b, labels[x.y/z].")
    ],
    scope: ScopeOption = "all",
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Print the effective value of an inventory variable at a scope."""
    from kubani.cli.common import read_inventory
    from kubani.cli.output import emit_json

    value = read_inventory().get(key, scope)
    if json_output:
        emit_json({"key": key, "scope": scope, "value": value})
    elif isinstance(value, dict | list):
        import json

        typer.echo(json.dumps(value, indent=2))
    elif isinstance(value, bool):
        typer.echo("true" if value else "false")
    else:
        typer.echo("null" if value is None else str(value))


@app.command("config-set")
def config_set(
    key: Annotated[str, typer.Argument(help="Variable, dotted for nested keys.")],
    value: Annotated[str, typer.Argument(help="New value (see --type).")],
    scope: ScopeOption = "all",
    kind: Annotated[
        ValueType, typer.Option("--type", help="How to read VALUE.")
    ] = ValueType.string,
    json_output: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Set an inventory variable (validated first, written atomically, comments kept)."""
    from kubani.cli.common import inventory_path
    from kubani.cli.output import emit_json, success, warn
    from kubani.inventory.store import edit_inventory

    converted = _convert(value, kind, key)
    path = inventory_path()
    with edit_inventory(path, f"cannot set {key}") as document:
        written = document.set(key, converted, scope)
        hidden = document.overridden_below(key, scope, converted)
    if hidden:
        warn(f"{key} is overridden for {', '.join(hidden)} (set closer to those hosts)")
    if json_output:
        emit_json({"key": key, "scope": scope, "value": converted, "file": str(written)})
    else:
        success(f"{key} = {converted!r} at scope {scope} in {written}")
