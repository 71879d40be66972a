"""``cluster-mgr provision``: run a playbook with a live per-host view."""

from typing import Annotated

import typer

from kubani.vocabulary import GITOPS_PLAYBOOKS, PROVISION_PLAYBOOKS, Playbook

app = typer.Typer()


def _playbook(text: str) -> Playbook:
    name = text.strip().removesuffix(".yml").removesuffix(".yaml").removeprefix("playbooks/")
    if name not in PROVISION_PLAYBOOKS:
        raise typer.BadParameter(
            f"{text!r} is not one of {', '.join(p.value for p in PROVISION_PLAYBOOKS)}"
        )
    return Playbook(name)


@app.command()
def provision(
    playbook: Annotated[
        Playbook,
        typer.Option(
            "--playbook",
            "-p",
            help="Which playbook to run (with or without .yml).",
            parser=_playbook,
            metavar=f"[{'|'.join(PROVISION_PLAYBOOKS)}]",
        ),
    ] = Playbook.SITE,
    check: Annotated[bool, typer.Option("--check", help="Dry run: change nothing.")] = False,
    diff: Annotated[bool, typer.Option("--diff", help="Show what files would change.")] = False,
    limit: Annotated[
        str | None, typer.Option("--limit", "-l", help="Only these hosts (Ansible pattern).")
    ] = None,
    tags: Annotated[
        str | None,
        typer.Option(
            "--tags",
            "-t",
            help="Only these phases: prerequisites, k3s (control-plane, workers), gpu, "
            "node-config, workstation-guard, gitops.",
        ),
    ] = None,
    skip_tags: Annotated[
        str | None, typer.Option("--skip-tags", help="Every phase but these.")
    ] = None,
    extra_vars: Annotated[
        list[str] | None,
        typer.Option(
            "--extra-vars",
            "-e",
            help="Variables for this run: key=value, a JSON object or @file (repeatable).",
        ),
    ] = None,
    full: Annotated[
        bool,
        typer.Option(
            "--full",
            help="Check and apply every step, even when each node's record of the last "
            "complete run says nothing changed.",
        ),
    ] = False,
    verbose: Annotated[int, typer.Option("-v", count=True, help="More detail in the log.")] = 0,
    json_output: Annotated[
        bool, typer.Option("--json", help="Stream one JSON event per line on stdout.")
    ] = False,
) -> None:
    """Provision the cluster (site.yml by default), showing each node's progress.

    A run in which nothing changed (the same inventory, playbooks and release on nodes
    whose K3s runs) ends after reading each node's record; --full checks every step."""
    from kubani.ansible.extravars import parse_extra_vars
    from kubani.cli.common import request_for, validated_inventory
    from kubani.cli.playbook_view import execute, finish
    from kubani.vocabulary import FULL_RUN_VARIABLE

    validated_inventory()
    variables = parse_extra_vars(extra_vars or [])
    if full:
        variables[FULL_RUN_VARIABLE] = True
    request = request_for(
        playbook.value,
        variables,
        limit=limit,
        tags=tags,
        skip_tags=skip_tags,
        check=check,
        diff=diff,
        verbosity=verbose,
    )
    run = execute(request, json_output)
    if run.state.succeeded and not check and playbook in GITOPS_PLAYBOOKS:
        _report_flux(json_output, bool(variables.get("git_repo_url")))
    finish(run, json_output)


def _report_flux(json_output: bool, repository_given: bool) -> None:
    """A loud warning, with the fix, for every Flux object that is not Ready once the run
    is over (the playbook waits for flux-system only; the rest follows from the repository)."""
    from kubani.cli.common import read_inventory

    document = read_inventory()
    if not (repository_given or document.scope_vars("all").get("git_repo_url")):
        return
    # Loaded only now: asyncio, the API client and Flux's health cost a run without Flux a
    # tenth of a second.
    import asyncio
    import json
    import sys

    from kubani.cli.output import console, warn
    from kubani.cluster.flux_health import describe, flux_not_ready
    from kubani.cluster.gather import api_alternatives, kubeconfig_for
    from kubani.errors import KubaniError

    err = console(stderr=True)
    try:
        pending = asyncio.run(
            flux_not_ready(kubeconfig_for(document, None), None, api_alternatives(document))
        )
    except KubaniError as exc:
        warn(f"cannot read Flux's state: {exc.line()}")
        return
    if json_output:
        event = {"kind": "flux", "not_ready": [o.as_json() for o in pending]}
        sys.stdout.write(json.dumps(event) + "\n")
    if not pending:
        return
    warn(f"Flux reports {len(pending)} object(s) not Ready yet:")
    for obj in pending:
        err.print(f"  {describe(obj)}", markup=False, highlight=False)
    err.print(
        "  fix: `cluster-mgr status` follows them; a missing path, a dependency that is not "
        "Ready, an unreachable source or a missing decryption Secret (sops-age) are the usual "
        "causes (docs/GITOPS.md)",
        markup=False,
        highlight=False,
    )
