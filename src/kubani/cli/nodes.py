"""``cluster-mgr add-node`` and ``remove-node``: the inventory side of cluster membership."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

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
    from kubani.inventory.document import InventoryDocument
    from kubani.models.node import Node
    from kubani.tailscale.discover import DiscoveryOptions

app = typer.Typer()


class RoleChoice(StrEnum):
    control_plane = "control-plane"
    worker = "worker"


def _pairs(text: str | None, flag: str) -> dict[str, str]:
    from kubani.errors import KubaniError

    out: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in (text or "").split(","))):
        key, equals, value = item.partition("=")
        if not equals or not key:
            raise KubaniError(f"bad {flag} {item!r}", "each entry must be key=value", None)
        out[key.strip()] = value.strip()
    return out


def _node_from_flags(hostname: str, address: str, role: RoleChoice, fields: dict[str, Any]) -> Node:
    from pydantic import ValidationError

    from kubani.errors import KubaniError
    from kubani.models.node import Node

    data = {k: v for k, v in fields.items() if v is not None}
    try:
        return Node.model_validate(
            {"hostname": hostname, "tailscale_ip": address, "role": role.value, **data}
        )
    except ValidationError as exc:
        from kubani.models.messages import readable_errors

        reasons = [f"{field or 'node'}: {message}" for field, message in readable_errors(exc)]
        raise KubaniError(f"cannot add node {hostname}", "; ".join(reasons), None) from None


def _address_from_discovery(hostname: str, options: DiscoveryOptions) -> str:
    from kubani.cli.output import warn
    from kubani.errors import KubaniError
    from kubani.tailscale.discover import fetch_peers, pick_device

    peer = pick_device(fetch_peers(options), hostname)
    if peer.ipv4 is None:
        raise KubaniError(f"cannot add node {hostname}", "the device has no IPv4 address", None)
    if not peer.online:
        warn(f"{hostname} is offline on the tailnet; it is added, but cannot be provisioned yet")
    return peer.ipv4


@app.command("add-node")
def add_node(
    hostname: Annotated[str, typer.Argument(help="Node name (an RFC 1123 label).")],
    tailscale_ip: Annotated[
        str | None,
        typer.Argument(
            help="The node's Tailscale IP (omit with --from-discovery).", show_default=False
        ),
    ] = None,
    role: Annotated[
        RoleChoice, typer.Option("--role", "-r", help="Node role.")
    ] = RoleChoice.worker,
    reserved_cpu: Annotated[
        str | None, typer.Option("--reserved-cpu", help="CPU kept for the desktop user, e.g. 500m.")
    ] = None,
    reserved_memory: Annotated[
        str | None, typer.Option("--reserved-memory", help="Memory kept back, e.g. 2Gi.")
    ] = None,
    gpu: Annotated[
        bool, typer.Option("--gpu", help="The node has an NVIDIA GPU to share.")
    ] = False,
    labels: Annotated[
        str | None, typer.Option("--labels", help="Node labels: key=value,key=value.")
    ] = None,
    taints: Annotated[
        str | None, typer.Option("--taints", help="Node taints: key=value:Effect,...")
    ] = None,
    ansible_host: Annotated[
        str | None,
        typer.Option("--ansible-host", help="Address to SSH to (default: the Tailscale IP)."),
    ] = None,
    ansible_user: Annotated[str | None, typer.Option("--ansible-user", help="SSH user.")] = None,
    ansible_port: Annotated[int | None, typer.Option("--ansible-port", help="SSH port.")] = None,
    from_discovery: Annotated[
        bool, typer.Option("--from-discovery", help="Take the IP from tailnet discovery.")
    ] = False,
    source: SourceOption = PeerSource.CLI,
    tailscale_bin: TailscaleBinOption = None,
    status_file: StatusFileOption = None,
    tailnet: TailnetOption = "-",
    api_url: ApiUrlOption = None,
    headscale_url: HeadscaleUrlOption = None,
    timeout: TimeoutOption = 10.0,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the added node as JSON.")
    ] = False,
) -> None:
    """Add a node to the inventory (validated, written atomically, comments kept)."""
    from kubani.cli.common import inventory_path
    from kubani.cli.output import emit_json, success, warn
    from kubani.inventory.store import edit_inventory
    from kubani.models.node import NodeTaint

    if from_discovery and tailscale_ip:
        raise typer.BadParameter("give TAILSCALE_IP or --from-discovery, not both")
    if not from_discovery and not tailscale_ip:
        raise typer.BadParameter("missing TAILSCALE_IP (or use --from-discovery)")
    path = inventory_path()
    address = tailscale_ip or _address_from_discovery(
        hostname,
        discovery_options(
            source, tailscale_bin, status_file, tailnet, api_url, headscale_url, timeout
        ),
    )
    taint_list: list[NodeTaint | str] = [t.strip() for t in (taints or "").split(",") if t.strip()]
    node = _node_from_flags(
        hostname,
        address,
        role,
        {
            "reserved_cpu": reserved_cpu,
            "reserved_memory": reserved_memory,
            "gpu": gpu or None,
            "node_labels": _pairs(labels, "--labels") or None,
            "node_taints": taint_list or None,
            "ansible_host": ansible_host,
            "ansible_user": ansible_user,
            "ansible_port": ansible_port,
        },
    )
    with edit_inventory(path, f"cannot add node {hostname}") as document:
        document.add_host(node.role.group, node.hostname, node.host_vars())
    assert document.problems is not None
    for problem in document.problems.warnings:
        warn(f"{problem.where}: {problem.message}")
    if json_output:
        emit_json({"added": _node_json(node), "inventory": str(path)})
    else:
        success(f"added {node.hostname} ({node.tailscale_ip}, {node.role}) to {path}")


def _node_json(node: Node) -> dict[str, Any]:
    return {"hostname": node.hostname, "role": node.role.value, **node.host_vars()}


@app.command("remove-node")
def remove_node(
    hostname: Annotated[str, typer.Argument(help="Node to remove.")],
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Remove even the last control plane, one whose loss breaks etcd quorum, or a "
            "node whose drain timed out or whose uninstall failed.",
        ),
    ] = False,
    no_drain: Annotated[
        bool, typer.Option("--no-drain", help="Do not evict its pods first.")
    ] = False,
    inventory_only: Annotated[
        bool,
        typer.Option(
            "--inventory-only", help="Only edit the inventory (a node never provisioned)."
        ),
    ] = False,
    timeout: Annotated[
        float, typer.Option("--timeout", help="Seconds to wait for the drain.")
    ] = 120.0,
    kubeconfig: Annotated[
        Path | None, typer.Option("--kubeconfig", help="Kubeconfig (default: provision's).")
    ] = None,
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Do not ask; for scripts (the node name is used).")
    ] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Drain the node (eviction API, PodDisruptionBudgets honoured), delete it from the
    cluster, uninstall K3s from it (remove_node.yml), then remove it from the inventory.
    Asks for the node's name first, unless --yes or --inventory-only."""
    from kubani.cli.common import inventory_path
    from kubani.cli.output import emit_json, success, warn
    from kubani.errors import KubaniError
    from kubani.inventory.store import edit_inventory
    from kubani.models.problems import Problems

    path = inventory_path()
    removed_group: list[str] = []
    cluster: dict[str, Any] = {}
    if not inventory_only:
        cluster = _remove_from_cluster(
            path, hostname, force, not no_drain, timeout, kubeconfig, yes
        )

    def keep_quorum(problems: Problems) -> None:
        quorum = [p for p in problems.warnings if "control planes" in p.message]
        if removed_group == ["control_plane"] and quorum and not force:
            raise KubaniError(
                f"refusing to remove control plane {hostname}",
                quorum[0].message,
                "add another control plane first, or pass --force",
            )

    with edit_inventory(path, f"cannot remove node {hostname}", keep_quorum) as document:
        removed_group.append(document.remove_host(hostname))
    group = removed_group[0]
    problems = document.problems
    assert problems is not None
    leftover = Path(path.parent / "host_vars")
    if any(leftover.glob(f"{hostname}.y*ml")):
        warn(f"host_vars for {hostname} are still in {leftover}; delete them if you are done")
    for problem in problems.warnings:
        warn(f"{problem.where}: {problem.message}")
    if json_output:
        emit_json({"removed": hostname, "group": group, "inventory": str(path), **cluster})
    else:
        success(f"removed {hostname} from {path}")


def _removable(document: InventoryDocument, hostname: str, force: bool) -> tuple[list[Any], bool]:
    """The inventory's control planes, and whether ``hostname`` is one; raises when it is not
    in the inventory or is the last control plane (unless forced)."""
    from kubani.cluster.gather import inventory_nodes
    from kubani.errors import KubaniError

    nodes = {n.name: n for n in inventory_nodes(document)}
    if hostname not in nodes:
        raise KubaniError(
            f"cannot remove node {hostname}",
            f"{hostname} is not in the inventory",
            "see the nodes with `cluster-mgr status`",
        )
    control_planes = [n for n in nodes.values() if n.role == "control-plane"]
    removing_cp = nodes[hostname].role == "control-plane"
    if removing_cp and len(control_planes) == 1 and not force:
        raise KubaniError(
            f"refusing to remove {hostname}",
            "it is the last control plane: the cluster would be gone",
            "use `cluster-mgr reset` to take the cluster down, or pass --force",
        )
    return control_planes, removing_cp


def _remove_from_cluster(
    path: Path,
    hostname: str,
    force: bool,
    drain_first: bool,
    timeout: float,
    kubeconfig: Path | None,
    yes: bool,
) -> dict[str, Any]:
    """Checks, drain, then remove_node.yml (delete + uninstall). Raises on anything that
    should leave the inventory as it is."""
    import asyncio

    from kubani.cli.common import confirm_by_name, request_for
    from kubani.cli.output import note, warn
    from kubani.cli.playbook_view import execute
    from kubani.cluster.gather import kubeconfig_for
    from kubani.errors import KubaniError
    from kubani.inventory.document import InventoryDocument
    from kubani.kube.client import Kube
    from kubani.kube.drain import drain
    from kubani.kube.summary import summarise

    document = InventoryDocument(path)
    control_planes, removing_cp = _removable(document, hostname, force)
    confirm_by_name(
        f"removing {hostname}",
        f"This drains {hostname}, deletes it from the cluster and uninstalls K3s from it"
        f"{'' if drain_first else ' (without draining it first)'}.",
        hostname,
        yes,
    )

    async def in_cluster() -> dict[str, Any]:
        report: dict[str, Any] = {"drained": None}
        try:
            kube = Kube(kubeconfig_for(document, kubeconfig), timeout=10.0)
        except KubaniError as exc:
            warn(f"cannot check the cluster first: {exc.line()}")
            return report
        async with kube:
            try:
                api_nodes = {n.name: n for n in map(summarise, await kube.nodes())}
            except KubaniError as exc:
                warn(f"the API is not reachable, so {hostname} is not drained: {exc.line()}")
                return report
            if removing_cp and len(control_planes) > 1:
                remaining = [n.name for n in control_planes if n.name != hostname]
                ready = [n for n in remaining if api_nodes.get(n) and api_nodes[n].ready == "True"]
                needed = len(remaining) // 2 + 1
                if len(ready) < needed and not force:
                    raise KubaniError(
                        f"refusing to remove control plane {hostname}",
                        f"etcd would keep {len(remaining)} members of which only {len(ready)} are "
                        f"Ready, below the quorum of {needed}",
                        "bring the other control planes back first, or pass --force",
                    )
            if hostname not in api_nodes or not drain_first:
                return report
            result = await drain(kube, hostname, timeout, note)
            report["drained"] = {
                "evicted": result.evicted,
                "blocked": result.blocked,
                "kept": result.kept,
            }
            if not result.complete and not force:
                raise KubaniError(
                    f"cannot drain {hostname}",
                    f"PodDisruptionBudgets still refuse to evict {', '.join(result.blocked)} "
                    f"after {timeout:.0f}s (the node stays cordoned)",
                    "scale those workloads up, relax their PDBs, or pass --force",
                )
            return report

    report = asyncio.run(in_cluster())
    run = execute(
        request_for("remove_node", {"kubani_remove_node": hostname, "kubani_drain": False}),
        json_lines=False,
    )
    if not run.state.succeeded:
        if run.state.interrupted:
            raise KubaniError(
                f"removing {hostname} was interrupted",
                "the node may be deleted from the cluster but K3s may still be installed",
                f"run `cluster-mgr remove-node {hostname}` again; the inventory is unchanged",
            )
        if not force:
            raise KubaniError(
                f"cannot remove {hostname} from the cluster",
                "remove_node.yml failed (see above); the inventory is unchanged",
                "fix the failure and run again, or pass --force for a machine that is gone",
            )
        warn(f"remove_node.yml failed on {hostname}; removing it from the inventory anyway")
    report["uninstalled"] = run.state.succeeded
    return report
