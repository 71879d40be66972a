"""``cluster-mgr status``: the inventory, the tailnet and the API in one view."""

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from kubani.cli.options import SourceOption, TailscaleBinOption
from kubani.vocabulary import NODE_STATE_STYLES, PeerSource

if TYPE_CHECKING:
    from rich.console import RenderableType

    from kubani.cluster.status import ClusterStatus

app = typer.Typer()

_STATE_STYLE = NODE_STATE_STYLES


_KEEP_WHOLE = frozenset({"NODE", "STATE", "TAILNET IP", "KIND", "READY"})


def render(status: "ClusterStatus") -> "RenderableType":
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    from kubani.cli.output import plain
    from kubani.cluster.rows import gib, short_revision

    parts: list[RenderableType] = []
    title = f"{status.cluster_name}  {status.api_server or ''}"
    table = Table(title=title, title_justify="left", box=None, pad_edge=False)
    for column in (
        "NODE", "ROLE", "STATE", "TAILNET IP", "PATH", "VERSION", "CPU", "MEMORY GiB", "GPU",
        "NOTES",
    ):  # fmt: skip
        table.add_column(column, no_wrap=column in _KEEP_WHOLE, overflow="fold")
    for machine in status.machines:
        node = machine.node
        cpu = (
            f"{node.cpu_percent:.0f}%"
            if node is not None and node.cpu_percent is not None
            else "n/a"
        )
        memory = (
            f"{gib(node.memory_used, '-')}/{gib(node.memory_allocatable, '-')}"
            if node is not None and node.memory_used is not None
            else (f"-/{gib(node.memory_allocatable, '-')}" if node is not None else "-")
        )
        gpu = (
            f"{machine.gpu_allocated}/{node.gpu_capacity}"
            if node is not None and node.gpu_capacity
            else "-"
        )
        notes = list(machine.flags)
        if machine.tailnet in ("offline", "missing"):
            notes.insert(0, f"tailnet: {machine.tailnet}")
        if node is not None and node.unschedulable:
            notes.append("cordoned")
        if node is not None and node.held is not None:
            notes.append(node.held.describe())
        table.add_row(
            plain(machine.name),
            plain(machine.role or "-"),
            plain(machine.state, style=_STATE_STYLE.get(machine.state, "")),
            plain(machine.tailscale_ip or "-"),
            plain(machine.path or "-"),
            plain((node.kubelet_version if node else "-") or "-"),
            plain(cpu),
            plain(memory),
            plain(gpu),
            plain("; ".join(notes)),
        )
    parts.append(table)
    if status.flux:
        flux = Table(title="Flux", title_justify="left", box=None, pad_edge=False)
        for column in ("KIND", "NAME", "READY", "REASON", "REVISION", "MESSAGE"):
            flux.add_column(column, no_wrap=column in _KEEP_WHOLE, overflow="fold")
        for obj in status.flux:
            flux.add_row(
                plain(obj.kind),
                plain(f"{obj.namespace}/{obj.name}"),
                plain(obj.ready, style="green" if obj.ready == "True" else "bold red"),
                plain(obj.reason + (" (suspended)" if obj.suspended else "")),
                plain(short_revision(obj.revision)),
                plain(obj.message if obj.ready != "True" else ""),
            )
        parts.append(flux)
    if status.pods is not None:
        parts.append(_pods_table(status))
    for problem in (status.api_error, status.tailnet_error):
        if problem:
            parts.append(plain(f"warning: {problem}", style="yellow"))
    if status.api_error is None and not status.metrics_available:
        parts.append(Text("metrics-server is not serving: CPU and memory use are n/a", style="dim"))
    return Group(*parts)


def _pods_table(status: "ClusterStatus") -> "RenderableType":
    from rich.table import Table

    from kubani.cli.output import plain
    from kubani.cluster.rows import age

    pods = status.pods or []
    table = Table(title=f"Pods ({len(pods)})", title_justify="left", box=None, pad_edge=False)
    for column in ("NAMESPACE", "NAME", "READY", "STATUS", "RESTARTS", "NODE", "AGE"):
        table.add_column(column, no_wrap=column != "NAME", overflow="fold")
    for pod in pods:
        healthy = pod.status in ("Running", "Succeeded", "Completed")
        table.add_row(
            plain(pod.namespace),
            plain(pod.name),
            plain(pod.ready),
            plain(pod.status, style="" if healthy else "bold red"),
            plain(str(pod.restarts)),
            plain(pod.node or "-"),
            plain(age(pod.created)),
        )
    return table


@app.command()
def status(
    json_output: Annotated[bool, typer.Option("--json", help="Print the status as JSON.")] = False,
    watch: Annotated[bool, typer.Option("--watch", "-w", help="Keep refreshing.")] = False,
    interval: Annotated[float, typer.Option("--interval", help="Seconds between refreshes.")] = 5.0,
    kubeconfig: Annotated[
        Path | None,
        typer.Option("--kubeconfig", help="Kubeconfig (default: the one provision fetched)."),
    ] = None,
    context: Annotated[
        str | None, typer.Option("--context", "-c", help="Kubeconfig context.")
    ] = None,
    source: SourceOption = PeerSource.CLI,
    tailscale_bin: TailscaleBinOption = None,
    pods: Annotated[
        bool, typer.Option("--pods", "-p", help="Also list the pods (every namespace's).")
    ] = False,
    namespace: Annotated[
        str | None,
        typer.Option("--namespace", "-n", help="List the pods of this namespace (implies --pods)."),
    ] = None,
) -> None:
    """Nodes as the inventory, the tailnet and the API see them, and Flux's state."""
    import asyncio

    from kubani.cli.common import read_inventory
    from kubani.cli.options import discovery_options
    from kubani.cli.output import console, emit_json
    from kubani.cluster.gather import PodSelection, gather, kubeconfig_for

    document = read_inventory()
    discovery = discovery_options(source, tailscale_bin)
    config = kubeconfig_for(document, kubeconfig)
    pods_of = PodSelection(namespace) if pods or namespace else None

    def collect() -> "ClusterStatus":
        return asyncio.run(gather(document, discovery, config, context, pods_of))

    if json_output and not watch:
        emit_json(collect().as_json())
        return
    if json_output:
        import json
        import sys
        import time

        while True:
            sys.stdout.write(json.dumps(collect().as_json()) + "\n")
            sys.stdout.flush()
            time.sleep(interval)
    out = console()
    if not watch:
        out.print(render(collect()))
        return
    import time

    from rich.live import Live

    with Live(render(collect()), console=out, refresh_per_second=2, screen=False) as live:
        while True:
            time.sleep(interval)
            live.update(render(collect()))
