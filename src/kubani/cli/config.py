"""``cluster-mgr config-get`` / ``config-set``: read and change inventory variables."""

from typing import Annotated

import typer

from kubani.vocabulary import ValueKind

app = typer.Typer()

ScopeOption = Annotated[
    str,
    typer.Option(
        "--scope", help="all, control_plane, workers, or a hostname (its effective value)."
    ),
]


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
        ValueKind | None,
        typer.Option(
            "--type",
            help="How to read VALUE (default: as the setting is declared, else as text).",
        ),
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Set an inventory variable (validated first, written atomically, comments kept)."""
    from kubani.cli.common import inventory_path
    from kubani.cli.output import emit_json, success, warn
    from kubani.inventory.store import edit_inventory
    from kubani.operations.settings import read_value

    path = inventory_path()
    converted = read_value(value, kind, key, near=path.parent)
    with edit_inventory(path, f"cannot set {key}") as document:
        written = document.set(key, converted, scope)
        hidden = document.overridden_below(key, scope, converted)
    if hidden:
        warn(f"{key} is overridden for {', '.join(hidden)} (set closer to those hosts)")
    if json_output:
        emit_json({"key": key, "scope": scope, "value": converted, "file": str(written)})
    else:
        success(f"{key} = {converted!r} at scope {scope} in {written}")
