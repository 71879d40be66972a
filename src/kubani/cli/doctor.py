"""``cluster-mgr doctor``: every preflight check, as a checklist, changing nothing."""

from typing import Annotated

import typer

from kubani.vocabulary import Verdict

app = typer.Typer()

_MARK = {Verdict.OK: "[green]✓[/]", Verdict.WARN: "[yellow]![/]", Verdict.FAIL: "[bold red]✗[/]"}


@app.command()
def doctor(
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the checklist as JSON.")
    ] = False,
) -> None:
    """Check SSH, sudo, OS, Tailscale, tailnet paths and ports, disk, memory and time on
    every node (doctor.yml, read-only); exit 1 when any check fails."""
    from rich.markup import escape

    from kubani.cli.common import read_inventory, request_for
    from kubani.cli.output import console, emit_json
    from kubani.operations.doctor import diagnose
    from kubani.printable import printable
    from kubani.vocabulary import Playbook

    document = read_inventory()
    err = console(stderr=True)
    with err.status("looking at every node (read-only)…"):
        diagnosis = diagnose(document, request_for(Playbook.DOCTOR))
    if json_output:
        emit_json(
            {
                "ok": diagnosis.failures == 0,
                "checks": [c.as_json() for c in diagnosis.checks],
                "log": str(diagnosis.log),
            }
        )
    else:
        out = console()
        host = None
        for check in diagnosis.checks:
            if check.host != host:
                host = check.host
                out.print(f"[bold]{escape(host)}[/]")
            # Details quote what the nodes said: text, never markup or control codes.
            detail = escape(printable(check.detail))
            out.print(f"  {_MARK[check.result]} {escape(check.name)}: {detail}")
            if check.fix and check.result != Verdict.OK:
                out.print(f"      [yellow]fix:[/] {escape(printable(check.fix))}")
        err.print(
            f"{diagnosis.failures} problem(s), {diagnosis.warnings} warning(s); "
            f"log: {diagnosis.log}",
            markup=False,
        )
    if diagnosis.failures:
        raise typer.Exit(1)
