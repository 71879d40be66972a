"""``cluster-mgr provision``: run a playbook with a live per-host view."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

import typer

app = typer.Typer()


class Playbook(StrEnum):
    site = "site"
    provision_cluster = "provision_cluster"
    preflight = "preflight"
    add_node = "add_node"
    gitops = "gitops"


def _playbook(text: str) -> Playbook:
    name = text.strip().removesuffix(".yml").removesuffix(".yaml").removeprefix("playbooks/")
    try:
        return Playbook(name)
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is not one of {', '.join(p.value for p in Playbook)}"
        ) from None


def request_for(playbook: str, extravars: dict[str, Any] | None = None, **kwargs: Any) -> Any:
    from kubani.ansible.project import ansible_dir
    from kubani.ansible.runner import PlaybookRequest
    from kubani.cli.common import inventory_path

    inventory = inventory_path()
    return PlaybookRequest(
        playbook=playbook,
        inventory=inventory,
        project=ansible_dir(near=inventory.parent),
        extravars=extravars or {},
        **kwargs,
    )


def validated_inventory() -> None:
    """Refuse to run against an inventory with errors (nothing would go well)."""
    from kubani.cli.common import read_inventory
    from kubani.errors import KubaniError

    document = read_inventory()
    _inventory, problems = document.validate()
    if problems.errors:
        first = problems.errors[0]
        raise KubaniError(
            f"the inventory {document.hosts_path} has {len(problems.errors)} error(s)",
            f"{first.where}: {first.message}",
            "run `cluster-mgr validate` and fix them",
        )


@app.command()
def provision(
    playbook: Annotated[
        Playbook,
        typer.Option(
            "--playbook",
            "-p",
            help="Which playbook to run (with or without .yml).",
            parser=_playbook,
            metavar="[site|provision_cluster|preflight|add_node|gitops]",
        ),
    ] = Playbook.site,
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
            "node-config, gitops.",
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
    verbose: Annotated[int, typer.Option("-v", count=True, help="More detail in the log.")] = 0,
    json_output: Annotated[
        bool, typer.Option("--json", help="Stream one JSON event per line on stdout.")
    ] = False,
) -> None:
    """Provision the cluster (site.yml by default), showing each node's progress."""
    from kubani.ansible.extravars import parse_extra_vars
    from kubani.cli.playbook_view import execute, finish

    validated_inventory()
    request = request_for(
        playbook.value,
        parse_extra_vars(extra_vars or []),
        limit=limit,
        tags=tags,
        skip_tags=skip_tags,
        check=check,
        diff=diff,
        verbosity=verbose,
    )
    finish(execute(request, json_output), json_output)
