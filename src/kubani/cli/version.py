"""``cluster-mgr version``."""

import platform
from typing import Annotated

import typer

from kubani import __version__

app = typer.Typer()


@app.command()
def version(
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show the Kubani version."""
    if json_output:
        from kubani.cli.output import emit_json

        emit_json({"kubani": __version__, "python": platform.python_version()})
    else:
        typer.echo(f"kubani {__version__} (python {platform.python_version()})")
