"""``cluster-mgr discover``: list the tailnet's devices and which of them are in the cluster."""

from typing import TYPE_CHECKING, Annotated

import typer

from kubani.cli.options import (
    ApiUrlOption,
    HeadscaleUrlOption,
    SourceOption,
    StatusFileOption,
    TailnetOption,
    TailscaleBinOption,
    TimeoutOption,
    discovery_options,
)
from kubani.vocabulary import PeerSource

if TYPE_CHECKING:
    from kubani.models.peer import TailscalePeer

app = typer.Typer()


def _inventory_members() -> tuple[set[str], set[str]] | None:
    from kubani.cli.state import options
    from kubani.errors import KubaniError
    from kubani.inventory.document import InventoryDocument
    from kubani.inventory.locate import find_inventory

    try:
        path = find_inventory(options.inventory)
    except KubaniError:
        if options.inventory is not None:
            raise
        return None
    document = InventoryDocument(path)
    hostnames, addresses = set(), set()
    for entry in document.host_entries():
        hostnames.add(entry.hostname)
        if "tailscale_ip" in entry.variables:
            addresses.add(str(entry.variables["tailscale_ip"]))
    return hostnames, addresses


@app.command()
def discover(
    online_only: Annotated[
        bool, typer.Option("--online-only", help="Only devices online now.")
    ] = False,
    pattern: Annotated[
        str | None,
        typer.Option("--filter", "-f", help="Glob on hostname or DNS name, e.g. 'k3s-*'."),
    ] = None,
    source: SourceOption = PeerSource.CLI,
    json_output: Annotated[bool, typer.Option("--json", help="Print a JSON array.")] = False,
    tailscale_bin: TailscaleBinOption = None,
    status_file: StatusFileOption = None,
    tailnet: TailnetOption = "-",
    api_url: ApiUrlOption = None,
    headscale_url: HeadscaleUrlOption = None,
    timeout: TimeoutOption = 10.0,
) -> None:
    """List the devices on the tailnet, and which are already in the inventory."""
    from kubani.cli.output import emit_json, note
    from kubani.tailscale.discover import discover as run_discovery

    members = _inventory_members()
    if members is None:
        note("no inventory found: in_cluster is false for every device")
    hostnames, addresses = members or (set(), set())
    peers = run_discovery(
        discovery_options(
            source, tailscale_bin, status_file, tailnet, api_url, headscale_url, timeout
        ),
        hostnames,
        addresses,
        online_only=online_only,
        pattern=pattern,
    )
    if json_output:
        emit_json([peer.to_json() for peer in peers])
        return
    _print_table(peers)


def _print_table(peers: "list[TailscalePeer]") -> None:
    from rich.table import Table

    from kubani.cli.output import console, plain

    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("HOSTNAME", "IPV4", "OS", "STATUS", "PATH", "IN CLUSTER", "TAGS"):
        table.add_column(column)
    for peer in peers:
        if peer.online:
            status = plain("online", style="green")
        elif peer.last_seen:
            status = plain(f"offline (seen {peer.last_seen:%Y-%m-%d %H:%M})", style="red")
        else:
            status = plain("offline", style="red")
        if peer.is_self:
            path = plain("self")
        elif peer.relay:
            path = plain(f"relay {peer.relay}", style="yellow")
        else:
            path = plain("direct" if peer.online else "-")
        table.add_row(
            plain(peer.hostname),
            plain(peer.ipv4 or "-"),
            plain(peer.os or "-"),
            status,
            path,
            plain("yes" if peer.in_cluster else ""),
            plain(",".join(peer.tags)),
        )
    console().print(table)
    online = sum(1 for p in peers if p.online)
    console(stderr=True).print(
        f"{len(peers)} devices, {online} online, {sum(p.in_cluster for p in peers)} in the cluster"
    )
