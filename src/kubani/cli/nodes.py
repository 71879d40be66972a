"""``cluster-mgr add-node`` and ``remove-node``: the inventory side of cluster membership."""

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
from kubani.vocabulary import DEFAULT_NODE_TAGS, PeerSource, Playbook, Role

if TYPE_CHECKING:
    from kubani.inventory.document import InventoryDocument
    from kubani.models.node import Node
    from kubani.operations.removal import RemovalPlan
    from kubani.tailscale.discover import DiscoveryOptions

app = typer.Typer()


def _pairs(text: str | None, flag: str) -> dict[str, str]:
    from kubani.errors import KubaniError

    out: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in (text or "").split(","))):
        key, equals, value = item.partition("=")
        if not equals or not key:
            raise KubaniError(f"bad {flag} {item!r}", "each entry must be key=value", None)
        out[key.strip()] = value.strip()
    return out


def _node_from_flags(hostname: str, address: str, role: Role, fields: dict[str, Any]) -> "Node":
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


def _address_from_discovery(hostname: str, options: "DiscoveryOptions") -> str:
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
    role: Annotated[Role, typer.Option("--role", "-r", help="Node role.")] = Role.WORKER,
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
    bootstrap_ssh: Annotated[
        str | None,
        typer.Option(
            "--bootstrap-ssh",
            metavar="HOST",
            help="The machine is not on the tailnet yet: reach it by SSH at HOST (LAN address "
            "or name), install Tailscale where missing, log it in with a single-use key minted "
            "from TAILSCALE_API_KEY / HEADSCALE_URL + HEADSCALE_API_KEY, then add it with the "
            "address it was given.",
        ),
    ] = None,
    tags: Annotated[
        list[str] | None,
        typer.Option("--tag", help="Tailnet tag for --bootstrap-ssh (repeatable; tag:k3s)."),
    ] = None,
    login_server: Annotated[
        str | None,
        typer.Option(
            "--login-server",
            help="Control server for --bootstrap-ssh (default: HEADSCALE_URL with headscale, "
            "Tailscale's own otherwise).",
        ),
    ] = None,
    provision: Annotated[
        bool,
        typer.Option(
            "--provision", help="Then join it to the cluster (add_node.yml: only new nodes change)."
        ),
    ] = False,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the added node as JSON.")
    ] = False,
) -> None:
    """Add a node to the inventory (validated, written atomically, comments kept)."""
    from kubani.cli.common import inventory_path
    from kubani.cli.output import emit_json, success, warn
    from kubani.inventory.store import edit_inventory
    from kubani.models.node import NodeTaint

    if bootstrap_ssh is not None and (from_discovery or tailscale_ip or ansible_host):
        raise typer.BadParameter(
            "--bootstrap-ssh learns the tailnet address itself: give no TAILSCALE_IP, "
            "--from-discovery or --ansible-host with it"
        )
    if from_discovery and tailscale_ip:
        raise typer.BadParameter("give TAILSCALE_IP or --from-discovery, not both")
    if bootstrap_ssh is None and not from_discovery and not tailscale_ip:
        raise typer.BadParameter(
            "missing TAILSCALE_IP (or use --from-discovery or --bootstrap-ssh)"
        )
    path = inventory_path()
    taint_list: list[NodeTaint | str] = [t.strip() for t in (taints or "").split(",") if t.strip()]
    fields = {
        "reserved_cpu": reserved_cpu,
        "reserved_memory": reserved_memory,
        "gpu": gpu or None,
        "node_labels": _pairs(labels, "--labels") or None,
        "node_taints": taint_list or None,
        "ansible_host": ansible_host,
        "ansible_user": ansible_user,
        "ansible_port": ansible_port,
    }
    joined = None
    if bootstrap_ssh is not None:
        from kubani.cli.common import bootstrap_over_ssh
        from kubani.operations.bootstrap import BootstrapTarget

        # Everything that can be refused is refused before a key is minted: the flags (checked
        # with an address of the tailnet's range), the name, the inventory.
        _node_from_flags(hostname, _ANY_TAILNET_ADDRESS, role, fields)
        _require_new_name(path, hostname)
        target = BootstrapTarget(hostname, bootstrap_ssh, role, ansible_user, ansible_port)
        [joined] = bootstrap_over_ssh(
            [target], path, path.parent, tags or list(DEFAULT_NODE_TAGS), login_server, timeout
        )
        address = joined.address
    else:
        address = tailscale_ip or _address_from_discovery(
            hostname,
            discovery_options(
                source, tailscale_bin, status_file, tailnet, api_url, headscale_url, timeout
            ),
        )
    node = _node_from_flags(hostname, address, role, fields)
    with edit_inventory(path, f"cannot add node {hostname}") as document:
        document.add_host(node.role.group, node.hostname, node.host_vars())
    assert document.problems is not None
    for problem in document.problems.warnings:
        warn(f"{problem.where}: {problem.message}")
    report: dict[str, Any] = {"added": _node_json(node), "inventory": str(path)}
    if joined is not None:
        report["tailnet"] = {"address": joined.address, "joined": joined.newly_joined}
    if not json_output:
        success(f"added {node.hostname} ({node.tailscale_ip}, {node.role}) to {path}")
    if provision:
        report["provisioned"] = _provision_new_nodes()
    if json_output:
        emit_json(report)
    if provision and not report["provisioned"]:
        raise typer.Exit(1)


# Any address of the tailnet's range: flags are checked before the real one is known.
_ANY_TAILNET_ADDRESS = "100.64.0.1"


def _require_new_name(path: Path, hostname: str) -> None:
    from kubani.cli.common import validated_inventory
    from kubani.errors import KubaniError
    from kubani.inventory.document import InventoryDocument

    validated_inventory()
    if hostname in {name for _, name, _ in InventoryDocument(path).iter_hosts()}:
        raise KubaniError(
            f"cannot add node {hostname}",
            f"{path} already has a host named {hostname}",
            "pick another name, or remove the old node first",
        )


def _provision_new_nodes() -> bool:
    """add_node.yml: nodes without K3s join the cluster; the others are only read."""
    from kubani.cli.common import request_for
    from kubani.cli.playbook_view import execute

    run = execute(request_for(Playbook.ADD_NODE.value), json_lines=False)
    return run.state.succeeded


def _node_json(node: "Node") -> dict[str, Any]:
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
    forget_device: Annotated[
        bool,
        typer.Option(
            "--forget-device",
            help="Then delete its device from the tailnet (Tailscale API or headscale, from "
            "TAILSCALE_API_KEY / HEADSCALE_URL + HEADSCALE_API_KEY).",
        ),
    ] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Drain the node (eviction API, PodDisruptionBudgets honoured), delete it from the
    cluster, uninstall K3s from it (remove_node.yml), then remove it from the inventory.
    Asks for the node's name first, unless --yes or --inventory-only."""
    from kubani.cli.common import inventory_path
    from kubani.cli.output import emit_json, success, warn
    from kubani.inventory.document import InventoryDocument
    from kubani.inventory.store import edit_inventory
    from kubani.operations.removal import check_inventory_after, plan_removal

    path = inventory_path()
    document = InventoryDocument(path)
    plan = plan_removal(document, hostname, force)
    control = None
    if forget_device:
        from kubani.operations.tailnet import require_control_credentials

        control = require_control_credentials()  # before anything changes
    address = str(document.scope_vars(hostname).get("tailscale_ip") or "")
    cluster: dict[str, Any] = {}
    if not inventory_only:
        cluster = _remove_from_cluster(document, plan, not no_drain, timeout, kubeconfig, yes)

    with edit_inventory(
        path,
        f"cannot remove node {hostname}",
        lambda problems: check_inventory_after(plan, problems),
    ) as document:
        group = document.remove_host(hostname)
    problems = document.problems
    assert problems is not None
    leftover = Path(path.parent / "host_vars")
    if any(leftover.glob(f"{hostname}.y*ml")):
        warn(f"host_vars for {hostname} are still in {leftover}; delete them if you are done")
    for problem in problems.warnings:
        warn(f"{problem.where}: {problem.message}")
    if control is not None:
        cluster["forgot_device"] = _forget(control, address, hostname)
    if json_output:
        emit_json({"removed": hostname, "group": group, "inventory": str(path), **cluster})
    else:
        success(f"removed {hostname} from {path}")


def _forget(control: str, address: str, hostname: str) -> str:
    from kubani.cli.output import note
    from kubani.errors import KubaniError
    from kubani.operations.tailnet import forget_device

    try:
        device = forget_device(control, address, hostname)
    except KubaniError as exc:
        raise KubaniError(
            f"{hostname} is removed, but its tailnet device is not",
            exc.line(),
            "delete it in the admin console (or `headscale nodes delete`)",
        ) from exc
    note(f"deleted {hostname}'s device {device} from the tailnet")
    return device


def _remove_from_cluster(
    document: "InventoryDocument",
    plan: "RemovalPlan",
    drain_first: bool,
    timeout: float,
    kubeconfig: Path | None,
    yes: bool,
) -> dict[str, Any]:
    """Ask, check and drain (operations.removal), then remove_node.yml (delete +
    uninstall). Raises on anything that should leave the inventory as it is."""
    import asyncio

    from kubani.cli.common import confirm_by_name, request_for
    from kubani.cli.output import note, warn
    from kubani.cli.playbook_view import execute
    from kubani.cluster.gather import kubeconfig_for
    from kubani.errors import KubaniError
    from kubani.operations.removal import prepare

    hostname = plan.hostname
    confirm_by_name(
        f"removing {hostname}",
        f"This drains {hostname}, deletes it from the cluster and uninstalls K3s from it"
        f"{'' if drain_first else ' (without draining it first)'}.",
        hostname,
        yes,
    )
    config = kubeconfig_for(document, kubeconfig)
    side = asyncio.run(prepare(plan, config, drain_first, timeout, note))
    for message in side.warnings:
        warn(message)
    report: dict[str, Any] = {"drained": side.drained}
    run = execute(
        request_for(Playbook.REMOVE_NODE, {"kubani_remove_node": hostname, "kubani_drain": False}),
        json_lines=False,
    )
    if not run.state.succeeded:
        if run.state.interrupted:
            raise KubaniError(
                f"removing {hostname} was interrupted",
                "the node may be deleted from the cluster but K3s may still be installed",
                f"run `cluster-mgr remove-node {hostname}` again; the inventory is unchanged",
            )
        if not plan.force:
            raise KubaniError(
                f"cannot remove {hostname} from the cluster",
                "remove_node.yml failed (see above); the inventory is unchanged",
                "fix the failure and run again, or pass --force for a machine that is gone",
            )
        warn(f"remove_node.yml failed on {hostname}; removing it from the inventory anyway")
    report["uninstalled"] = run.state.succeeded
    return report
