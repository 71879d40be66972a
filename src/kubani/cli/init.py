"""``cluster-mgr init``: set up a new cluster's inventory from the tailnet."""

from pathlib import Path
from typing import Annotated

import typer

from kubani.cli.options import SourceOption, StatusFileOption, TailscaleBinOption
from kubani.vocabulary import DEFAULT_CLUSTER_NAME, PeerSource

app = typer.Typer()


def _names(text: str) -> list[str]:
    return [n.strip().lower() for n in text.replace(" ", ",").split(",") if n.strip()]


@app.command()
def init(
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Inventory folder to create.")
    ] = Path("ansible/inventory"),
    cluster_name: Annotated[
        str, typer.Option("--cluster-name", help="Cluster name.")
    ] = DEFAULT_CLUSTER_NAME,
    control_planes: Annotated[
        list[str] | None, typer.Option("--control-plane", help="Control plane (repeatable).")
    ] = None,
    workers: Annotated[
        list[str] | None, typer.Option("--worker", help="Worker (repeatable).")
    ] = None,
    gpus: Annotated[list[str] | None, typer.Option("--gpu", help="Node with a GPU.")] = None,
    workstations: Annotated[
        list[str] | None,
        typer.Option("--workstation", help="Node someone also uses as a desktop."),
    ] = None,
    ssh_user: Annotated[
        str | None, typer.Option("--ssh-user", help="SSH user Ansible logs in as.")
    ] = None,
    probe: Annotated[
        bool,
        typer.Option("--probe/--no-probe", help="Size reservations from each node's facts (SSH)."),
    ] = True,
    source: SourceOption = PeerSource.CLI,
    tailscale_bin: TailscaleBinOption = None,
    status_file: StatusFileOption = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Discover the tailnet, pick nodes and roles, and write the inventory. Asks when run
    in a terminal without --control-plane; scripts pass the flags."""
    import sys

    from kubani.cli.options import discovery_options
    from kubani.cli.output import emit_json, note, success, warn
    from kubani.operations.init import Selection, choose, create_inventory
    from kubani.tailscale.discover import fetch_peers

    peers = [
        p
        for p in fetch_peers(discovery_options(source, tailscale_bin, status_file))
        if not p.is_self
    ]
    if not control_planes and sys.stdin.isatty():
        note("Devices on the tailnet:")
        for peer in sorted(peers, key=lambda p: p.hostname):
            state = "online" if peer.online else "offline"
            note(f"  {peer.hostname:<24} {peer.ipv4 or '-':<16} {peer.os:<8} {state}")
        online = [p.hostname.lower() for p in peers if p.online]
        control_planes = _names(
            typer.prompt("Control planes (1 or 3)", default=online[0] if online else "", err=True)
        )
        rest = ",".join(n for n in online if n not in control_planes)
        workers = _names(typer.prompt("Workers", default=rest, err=True))
        gpus = _names(typer.prompt("Nodes with an NVIDIA GPU", default="", err=True))
        workstations = _names(
            typer.prompt("Nodes someone also uses as a desktop", default="", err=True)
        )
        cluster_name = typer.prompt("Cluster name", default=cluster_name, err=True)
    selection = Selection(control_planes or [], workers or [], gpus or [], workstations or [])
    created = create_inventory(output, cluster_name, choose(peers, selection), ssh_user, probe)
    for warning in created.warnings:
        warn(warning)
    if json_output:
        emit_json({"inventory": str(created.hosts), "nodes": created.nodes, "sized": created.sized})
        return
    success(
        f"wrote {created.hosts}: {len(created.control_planes)} control plane(s), "
        f"{len(created.workers)} worker(s)"
    )
    note("next: cluster-mgr doctor, then cluster-mgr provision")
