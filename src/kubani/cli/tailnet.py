"""``cluster-mgr tailnet``: the tailnet policy the cluster needs, and whether it has it."""

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from kubani.cli.options import ApiUrlOption, HeadscaleUrlOption, TailnetOption, TimeoutOption
from kubani.vocabulary import DEFAULT_NODE_TAGS

app = typer.Typer(help="The tailnet policy a K3s cluster needs.", no_args_is_help=True)


class PolicyStyle(StrEnum):
    GRANTS = "grants"
    ACLS = "acls"


class PolicySource(StrEnum):
    API = "api"
    HEADSCALE = "headscale"


TagOption = Annotated[
    str, typer.Option("--tag", help="The tag the cluster's nodes carry.", show_default=True)
]
AdminOption = Annotated[
    str,
    typer.Option(
        "--admin",
        help="Who manages the cluster (policy source: a user, group:…, autogroup:… or an IP).",
        show_default=True,
    ),
]


@app.command("policy")
def policy(
    tag: TagOption = DEFAULT_NODE_TAGS[0],
    admin: AdminOption = "autogroup:admin",
    style: Annotated[
        PolicyStyle, typer.Option("--format", help="Tailscale's grants, or the older acls.")
    ] = PolicyStyle.GRANTS,
    json_output: Annotated[bool, typer.Option("--json", help="Plain JSON, no comments.")] = False,
) -> None:
    """Print the policy entries (HuJSON) that let the cluster's nodes and the management
    machine reach exactly the ports K3s needs: merge them into the tailnet policy file."""
    from kubani.cli.output import emit_json
    from kubani.tailscale.policy import as_hujson, needed_paths, policy_snippet

    paths = needed_paths(tag, admin)
    snippet = policy_snippet(paths, style.value)
    if json_output:
        emit_json(snippet)
    else:
        typer.echo(as_hujson(snippet, paths), nl=False)


@app.command("check")
def check(
    source: Annotated[
        PolicySource,
        typer.Option(
            "--source",
            "-s",
            help="api: the Tailscale API (TAILSCALE_API_KEY or an OAuth client); headscale: "
            "HEADSCALE_URL + HEADSCALE_API_KEY.",
        ),
    ] = PolicySource.API,
    policy_file: Annotated[
        Path | None,
        typer.Option("--policy-file", help="Check this policy file instead of the live one."),
    ] = None,
    tag: TagOption = DEFAULT_NODE_TAGS[0],
    admin: AdminOption = "autogroup:admin",
    tailnet: TailnetOption = "-",
    api_url: ApiUrlOption = None,
    headscale_url: HeadscaleUrlOption = None,
    timeout: TimeoutOption = 10.0,
    json_output: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Read the tailnet's policy and say which paths K3s needs it blocks; exit 1 if any."""
    from kubani.cli.common import inventory_path
    from kubani.cli.output import console, emit_json
    from kubani.errors import KubaniError
    from kubani.operations.tailnet import addresses_of_inventory, read_policy
    from kubani.tailscale.policy import check_policy, needed_paths

    loaded = read_policy(policy_file, source.value, tailnet, api_url, headscale_url, timeout)
    try:
        addresses = addresses_of_inventory(inventory_path())
    except KubaniError:
        addresses = []  # no inventory: rules written with IP ranges cannot be judged
    verdicts = check_policy(loaded, needed_paths(tag, admin), addresses)
    blocked = [v for v in verdicts if not v.allowed]
    if json_output:
        emit_json(
            {
                "ok": not blocked,
                "paths": [
                    {
                        "what": v.path.what,
                        "src": v.path.src,
                        "dst": v.path.dst,
                        "proto": v.path.proto,
                        "ports": v.path.ports,
                        "allowed": v.allowed,
                    }
                    for v in verdicts
                ],
            }
        )
    else:
        err = console(stderr=True)
        for verdict in verdicts:
            path = verdict.path
            mark = "[green]✓[/]" if verdict.allowed else "[bold red]✗ blocked[/]"
            err.print(
                f"{mark} {path.what}: {path.src} → {path.dst} {path.proto}/{path.ports}",
                highlight=False,
            )
        if blocked:
            err.print(
                f"{len(blocked)} path(s) blocked: add the entries `cluster-mgr tailnet policy` "
                "prints to the policy file",
                highlight=False,
            )
    if blocked:
        raise typer.Exit(1)
