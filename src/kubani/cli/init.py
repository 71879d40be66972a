"""``cluster-mgr init``: set up a new cluster's inventory from the tailnet."""

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from kubani.cli.options import SourceOption, StatusFileOption, TailscaleBinOption
from kubani.vocabulary import DEFAULT_CLUSTER_NAME, PeerSource, Role

if TYPE_CHECKING:
    from kubani.models.peer import TailscalePeer
    from kubani.tailscale.discover import DiscoveryOptions

app = typer.Typer()


def _peers_with(options: "DiscoveryOptions", names: list[str]) -> "list[TailscalePeer]":
    """The tailnet's devices, once those just joined (``names``) show in it (the control
    server tells the other devices within seconds)."""
    import time

    from kubani.errors import KubaniError
    from kubani.tailscale.discover import fetch_peers

    deadline = time.monotonic() + JOINED_VISIBLE_WAIT_S
    while True:
        peers = fetch_peers(options)
        missing = set(names) - {p.hostname.lower() for p in peers}
        if not missing:
            return peers
        if time.monotonic() > deadline:
            raise KubaniError(
                "the machines joined, but the tailnet does not list them yet",
                f"{', '.join(sorted(missing))} not among the devices after "
                f"{JOINED_VISIBLE_WAIT_S:.0f} s",
                "run the same init again without --bootstrap-ssh for them",
            )
        time.sleep(1)


# How long init waits for machines it has just joined to be listed by the tailnet.
JOINED_VISIBLE_WAIT_S = 30.0


def _bootstrap_pair(text: str) -> tuple[str, str]:
    from kubani.models.names import is_dns_label

    name, equals, host = text.partition("=")
    name, host = name.strip().lower(), host.strip()
    if not equals or not host or not is_dns_label(name):
        raise typer.BadParameter(
            f"{text!r}: give NAME=HOST, NAME the node's name (an RFC 1123 label), HOST where "
            "SSH reaches it now",
            param_hint="--bootstrap-ssh",
        )
    return name, host


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
    bootstrap_ssh: Annotated[
        list[str] | None,
        typer.Option(
            "--bootstrap-ssh",
            metavar="NAME=HOST",
            help="A machine not on the tailnet yet, reached by SSH at HOST (repeatable): "
            "Tailscale is installed where missing and logged in as NAME with a single-use key "
            "(TAILSCALE_API_KEY, or HEADSCALE_URL + HEADSCALE_API_KEY) before the tailnet is "
            "read; it becomes a worker unless named as a control plane.",
        ),
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Discover the tailnet, pick nodes and roles, and write the inventory. Asks when run
    in a terminal without --control-plane; scripts pass the flags."""
    import sys

    from kubani.cli.options import discovery_options
    from kubani.cli.output import emit_json, note, success, warn
    from kubani.operations.init import Selection, choose, create_inventory

    options = discovery_options(source, tailscale_bin, status_file)
    joined: list[str] = []
    if bootstrap_ssh:
        from kubani.cli.common import bootstrap_over_ssh
        from kubani.operations.bootstrap import BootstrapTarget

        named_control = set(_names(",".join(control_planes or [])))
        targets = [
            BootstrapTarget(
                name,
                host,
                Role.CONTROL_PLANE if name in named_control else Role.WORKER,
                ssh_user,
            )
            for name, host in map(_bootstrap_pair, bootstrap_ssh)
        ]
        joined = [j.hostname for j in bootstrap_over_ssh(targets, None, output)]
        listed = {*(control_planes or []), *(workers or [])}
        workers = [*(workers or []), *(name for name in joined if name not in listed)]
    peers = _peers_with(options, joined)  # this machine too, for choose() to name it
    candidates = [p for p in peers if not p.is_self]
    if not control_planes and sys.stdin.isatty():
        note("Devices on the tailnet:")
        for peer in sorted(candidates, key=lambda p: p.node_name or p.hostname):
            state = "online" if peer.online else "offline"
            name = peer.node_name or peer.hostname
            called = f" ({peer.hostname})" if name != peer.hostname.lower() else ""
            note(f"  {name:<24} {peer.ipv4 or '-':<16} {peer.os:<8} {state}{called}")
        online = [p.node_name for p in candidates if p.online and p.node_name]
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
