"""``cluster-mgr init``: set up a new cluster's inventory from the tailnet."""

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from kubani.cli.options import SourceOption, StatusFileOption, TailscaleBinOption
from kubani.vocabulary import DEFAULT_CLUSTER_NAME, PeerSource

if TYPE_CHECKING:
    from kubani.inventory.initial import Choice
    from kubani.models.peer import TailscalePeer

app = typer.Typer()


def _names(text: str) -> list[str]:
    return [n.strip().lower() for n in text.replace(" ", ",").split(",") if n.strip()]


def _probe(inventory: Path) -> tuple[dict[str, tuple[int, int]], dict[str, str]]:
    """CPUs and memory of each node, from Ansible facts (read-only), and why the others
    gave none."""
    from kubani.ansible.adhoc import run_module

    run = run_module(inventory, "all", "ansible.builtin.setup", "gather_subset=min,hardware")
    sizes: dict[str, tuple[int, int]] = {}
    for host, result in run.ok.items():
        facts = result.get("ansible_facts") or {}
        cpus = facts.get("ansible_processor_vcpus") or facts.get("ansible_processor_count")
        memory = facts.get("ansible_memtotal_mb")
        if cpus and memory:
            sizes[host] = (int(cpus), int(memory))
    return sizes, run.failed


def _apply_sizes(hosts: Path, choices: "list[Choice]") -> dict[str, tuple[int, int]]:
    """Reservations sized from each node's facts; defaults stay where facts are missing."""
    from kubani.cli.output import warn
    from kubani.inventory.initial import Choice, build_nodes
    from kubani.inventory.store import edit_inventory

    try:
        sized, failed = _probe(hosts)
    except Exception as exc:  # sizing is a suggestion; the inventory stands without it
        warn(f"could not read the nodes' sizes ({exc}); default reservations kept")
        return {}
    missing = [c.peer.hostname.lower() for c in choices if c.peer.hostname.lower() not in sized]
    for host in missing:
        why = failed.get(host, "no facts returned")
        warn(f"{host}: default reservations kept; its size is unknown: {why}")
    if not sized:
        return sized
    resized = [
        Choice(
            c.peer, c.role, c.gpu, c.workstation, *sized.get(c.peer.hostname.lower(), (None, None))
        )
        for c in choices
    ]
    with edit_inventory(hosts, "cannot record the reservations") as document:
        for node in build_nodes(resized, None):
            for key in ("reserved_cpu", "reserved_memory"):
                value = node.host_vars().get(key)
                if value is not None:
                    document.set(key, value, node.hostname)
    return sized


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
    from kubani.cli.output import emit_json, note, success
    from kubani.errors import KubaniError
    from kubani.inventory.initial import Choice, build_nodes, write_new_inventory
    from kubani.tailscale.discover import fetch_peers

    peers = [
        p
        for p in fetch_peers(discovery_options(source, tailscale_bin, status_file))
        if not p.is_self
    ]
    by_name: dict[str, TailscalePeer] = {p.hostname.lower(): p for p in peers}
    interactive = not control_planes and sys.stdin.isatty()
    if interactive:
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
    if not control_planes:
        raise KubaniError(
            "cannot set up the cluster",
            "no control plane chosen",
            "pass --control-plane HOST (and --worker HOST...), or run in a terminal",
        )
    chosen = [(n.lower(), "control-plane") for n in control_planes]
    chosen += [(n.lower(), "worker") for n in workers or []]
    unknown = [name for name, _ in chosen if name not in by_name]
    if unknown:
        raise KubaniError(
            "cannot set up the cluster",
            f"not on the tailnet: {', '.join(unknown)}",
            "check the names with `cluster-mgr discover`",
        )
    gpu_set, desk_set = {n.lower() for n in gpus or []}, {n.lower() for n in workstations or []}
    choices = [
        Choice(by_name[name], role, name in gpu_set, name in desk_set) for name, role in chosen
    ]
    extra = {"ansible_user": ssh_user} if ssh_user else {}
    hosts = write_new_inventory(output, cluster_name, build_nodes(choices, None), extra)
    sized = _apply_sizes(hosts, choices) if probe else {}
    if json_output:
        emit_json(
            {"inventory": str(hosts), "nodes": [n for n, _ in chosen], "sized": sorted(sized)}
        )
        return
    success(
        f"wrote {hosts}: {len(control_planes)} control plane(s), {len(workers or [])} worker(s)"
    )
    note("next: cluster-mgr doctor, then cluster-mgr provision")
