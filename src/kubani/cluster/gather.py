"""Collecting the three views (inventory, tailnet, API) for `status` and the TUI."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubani.cluster.live import FLUX_KINDS, list_served
from kubani.cluster.status import (
    ClusterStatus,
    InventoryNode,
    flux_object,
    gpu_requests,
    merge,
    pod_status,
)
from kubani.errors import KubaniError
from kubani.inventory.document import InventoryDocument
from kubani.kube.client import Kube, KubeError
from kubani.kube.summary import summarise
from kubani.models.cluster import K3S_API_PORT
from kubani.models.peer import TailscalePeer
from kubani.tailscale.discover import DiscoveryOptions, fetch_peers
from kubani.vocabulary import Role


def inventory_nodes(document: InventoryDocument) -> list[InventoryNode]:
    nodes = []
    for entry in document.host_entries():
        ip = entry.variables.get("tailscale_ip")
        nodes.append(
            InventoryNode(
                name=entry.hostname,
                role=Role.from_group(entry.group).value,
                tailscale_ip=str(ip) if ip else None,
                gpu=bool(entry.variables.get("gpu")),
            )
        )
    return nodes


def api_alternatives(document: InventoryDocument | None, port: int = K3S_API_PORT) -> list[str]:
    """The API server's URL on every control plane of the inventory (by tailnet address),
    for when the kubeconfig's server does not answer."""
    if document is None:
        return []
    return [
        f"https://{node.tailscale_ip}:{port}"
        for node in inventory_nodes(document)
        if node.role == Role.CONTROL_PLANE and node.tailscale_ip
    ]


def kubeconfig_for(document: InventoryDocument, explicit: Path | None) -> Path | None:
    """--kubeconfig, else where the playbooks put it (k3s_control_plane_kubeconfig_path, or
    its default ~/.kube/kubani-<cluster>.yaml), else None (KUBECONFIG / ~/.kube/config)."""
    if explicit is not None:
        return explicit
    settings = document.scope_vars("all")
    configured = settings.get("k3s_control_plane_kubeconfig_path")
    if isinstance(configured, str) and "{{" not in configured:
        return Path(configured).expanduser()
    from kubani.kube.kubeconfig import default_kubeconfig_path

    default = default_kubeconfig_path(document.cluster_name)
    return default if default.exists() else None


@dataclass(frozen=True)
class PodSelection:
    """Which pods ``status`` lists: every namespace's (None) or one namespace's."""

    namespace: str | None = None


async def served_objects(kube: Kube, plural: str) -> list[dict[str, Any]]:
    """Every object of a Flux kind; none when the kind is not served (Flux not installed)."""
    try:
        return (await list_served(kube, plural))[0]
    except KubeError as exc:
        if exc.status == 404:
            return []
        raise


def _peers(discovery: DiscoveryOptions) -> tuple[list[TailscalePeer] | None, str | None]:
    try:
        return fetch_peers(discovery), None
    except KubaniError as exc:
        return None, exc.line()


async def gather(
    document: InventoryDocument,
    discovery: DiscoveryOptions,
    kubeconfig: Path | None,
    context: str | None = None,
    pods_of: PodSelection | None = None,
) -> ClusterStatus:
    status = ClusterStatus(document.cluster_name, None, None, None)
    peers_task = asyncio.create_task(asyncio.to_thread(_peers, discovery))
    nodes = pods = None
    metrics: dict[str, dict[str, str]] | None = None
    try:
        alternatives = api_alternatives(document)
        async with Kube(kubeconfig, context, timeout=5.0, alternatives=alternatives) as kube:
            status.api_server = kube.server
            nodes, pods, metrics = await asyncio.gather(
                kube.nodes(), kube.pods(), kube.node_metrics()
            )
            listed = await asyncio.gather(*(served_objects(kube, plural) for plural in FLUX_KINDS))
            for kind, objects in zip(FLUX_KINDS.values(), listed, strict=True):
                status.flux += [flux_object(kind, obj) for obj in objects]
    except KubaniError as exc:
        status.api_error = exc.line()
    peers, status.tailnet_error = await peers_task
    status.metrics_available = metrics is not None
    summaries = (
        [summarise(n, (metrics or {}).get(n["metadata"]["name"])) for n in nodes]
        if nodes is not None
        else None
    )
    status.machines = merge(inventory_nodes(document), peers, summaries, gpu_requests(pods or []))
    if pods_of is not None and pods is not None:
        status.pods = sorted(
            (
                pod_status(p)
                for p in pods
                if pods_of.namespace is None
                or (p.get("metadata") or {}).get("namespace") == pods_of.namespace
            ),
            key=lambda p: (p.namespace, p.name),
        )
    return status
