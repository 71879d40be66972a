"""``cluster-mgr kubeconfig``: fetch the admin kubeconfig from a control plane."""

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer()


@app.command()
def kubeconfig(
    merge: Annotated[
        bool, typer.Option("--merge", help="Also merge it into your kubeconfig.")
    ] = False,
    context: Annotated[
        str | None,
        typer.Option("--context", "-c", help="Name of the context (default: the cluster name)."),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Where to write it (default: where provision does)."),
    ] = None,
    into: Annotated[
        Path | None,
        typer.Option(
            "--into",
            help="Kubeconfig to merge into (default: first of $KUBECONFIG, else ~/.kube/config).",
        ),
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Fetch the admin kubeconfig from the first control plane, pointed at its tailnet
    address (or api_endpoint), and write it 0600."""
    from kubani.cli.common import read_inventory
    from kubani.cli.output import emit_json, success
    from kubani.cluster.gather import kubeconfig_for
    from kubani.kube.kubeconfig import default_kubeconfig_path, default_merge_target
    from kubani.operations.kubeconfig import fetch_kubeconfig

    document = read_inventory()
    target = (
        output or kubeconfig_for(document, None) or default_kubeconfig_path(document.cluster_name)
    )
    merge_into = (into or default_merge_target()) if merge else None
    fetched = fetch_kubeconfig(document, target, context, merge_into)
    if json_output:
        emit_json(
            {
                "kubeconfig": str(fetched.written),
                "context": fetched.context,
                "server": fetched.server,
                "merged_into": str(fetched.merged_into) if fetched.merged_into else None,
            }
        )
        return
    success(f"wrote {fetched.written} (0600): context {fetched.context!r}, server {fetched.server}")
    if fetched.merged_into:
        success(f"merged context {fetched.context!r} into {fetched.merged_into}")
