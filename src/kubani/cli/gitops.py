"""``cluster-mgr gitops``: check the GitOps tree before it is pushed."""

from typing import Annotated

import typer

from kubani.cli.options import TreeOption

app = typer.Typer(help="Check the GitOps tree (Flux, kustomize, schemas, secrets).")


@app.command()
def validate(
    path: TreeOption = None,
    kubernetes_version: Annotated[
        str, typer.Option("--kubernetes-version", help="Schemas of this Kubernetes minor.")
    ] = "1.31",
    json_output: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Build every kustomization and check every object; exit 1 on any problem."""
    from kubani.cli.output import console, emit_json
    from kubani.gitops.paths import find_tree
    from kubani.gitops.validate import validate_tree

    report = validate_tree(find_tree(path), kubernetes_version)
    if json_output:
        emit_json(
            {
                "path": str(report.root),
                "valid": report.ok,
                "kustomizations": report.kustomizations,
                "plain_folders": report.plain_folders,
                "objects": report.objects,
                "problems": [
                    {"file": f.file, "object": f.obj, "message": f.message} for f in report.findings
                ],
            }
        )
    else:
        err = console(stderr=True)
        for finding in report.findings:
            err.print(f"[red]error[/]: {_escape(finding.line())}", highlight=False)
        summary = (
            f"{report.root}: {report.kustomizations} kustomizations, "
            f"{report.plain_folders} folders of plain manifests, {report.objects} objects"
        )
        if report.ok:
            err.print(f"[green]✓[/] {_escape(summary)}: valid")
        else:
            err.print(f"{_escape(summary)}: {len(report.findings)} problem(s)", highlight=False)
    if not report.ok:
        raise typer.Exit(1)


def _escape(text: str) -> str:
    """Findings quote the tree's files and names: as text, never markup or control codes."""
    from rich.markup import escape

    from kubani.printable import printable

    return escape(printable(text))
