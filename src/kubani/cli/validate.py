"""``cluster-mgr validate``: every problem of the inventory at once."""

from typing import Annotated

import typer

app = typer.Typer()


@app.command()
def validate(
    json_output: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Check the inventory; exit 1 if there is any error (warnings alone pass)."""
    from rich.markup import escape

    from kubani.cli.common import inventory_path
    from kubani.cli.output import console, emit_json
    from kubani.inventory.document import InventoryDocument
    from kubani.printable import printable

    path = inventory_path()
    inventory, problems = InventoryDocument(path).validate()
    if json_output:
        emit_json(
            {
                "inventory": str(path),
                "valid": not problems.errors,
                "nodes": len(inventory.nodes) if inventory else None,
                "problems": [
                    {"severity": str(p.severity), "where": p.where, "message": p.message}
                    for p in problems.items
                ],
            }
        )
    else:
        out = console()
        for problem in problems.items:
            colour = "red" if problem.severity == "error" else "yellow"
            # The inventory's own text (host names, values) is shown as written, never as
            # markup or control codes.
            out.print(
                f"[{colour}]{problem.severity}[/]: {escape(printable(problem.where))}: "
                f"{escape(printable(problem.message))}",
                markup=True,
                highlight=False,
            )
        summary = (
            f"{path}: {_count(len(problems.errors), 'error')}, "
            f"{_count(len(problems.warnings), 'warning')}"
            if problems
            else f"{path}: valid"
        )
        if inventory is not None:
            summary += (
                f" ({_count(len(inventory.control_planes), 'control plane')}, "
                f"{_count(len(inventory.workers), 'worker')})"
            )
        console(stderr=True).print(summary, markup=False)
    if problems.errors:
        raise typer.Exit(1)


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"
