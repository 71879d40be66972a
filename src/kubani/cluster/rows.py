"""Table rows of the live view, as plain strings (the TUI styles them)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from kubani.cluster.cache import WorkloadCounts
from kubani.kube.summary import summarise
from kubani.models.peer import TailscalePeer
from kubani.vocabulary import NodeState

NODE_COLUMNS = (
    "NAME", "ROLE", "STATUS", "CPU", "MEMORY", "DISK", "GPU", "TAILSCALE IP", "PATH",
    "VERSION", "AGE",
)  # fmt: skip
WORKLOAD_COLUMNS = ("NAMESPACE", "NAME", "KIND", "READY", "RESTARTS", "HEALTH")
FLUX_COLUMNS = ("KIND", "NAME", "READY", "REASON", "REVISION", "MESSAGE")
EVENT_COLUMNS = ("LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE")


def parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def age(text: str | None, now: datetime | None = None) -> str:
    moment = parse_time(text)
    if moment is None:
        return "-"
    seconds = max(0, int(((now or datetime.now(UTC)) - moment).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def gib(value: float | None, missing: str = "n/a") -> str:
    """Bytes as GiB with one decimal."""
    return missing if value is None else f"{value / 2**30:.1f}"


def peer_for_ip(peers: list[TailscalePeer] | None, address: str | None) -> TailscalePeer | None:
    if not peers or not address:
        return None
    return next((p for p in peers if address in p.tailscale_ips), None)


def disk_percent(stats: dict[str, Any] | None) -> float | None:
    fs = ((stats or {}).get("node") or {}).get("fs") or {}
    used, capacity = fs.get("usedBytes"), fs.get("capacityBytes")
    if not used or not capacity:
        return None
    return 100.0 * float(used) / float(capacity)


def node_row(
    node: dict[str, Any],
    usage: dict[str, str] | None,
    metrics_available: bool,
    stats: dict[str, Any] | None,
    peers: list[TailscalePeer] | None,
    gpu_allocated: int,
    now: datetime | None = None,
) -> tuple[str, ...]:
    summary = summarise(node, usage)
    peer = peer_for_ip(peers, summary.internal_ip)
    status = summary.status
    if peers is not None and (peer is None or not peer.online):
        status = NodeState.UNREACHABLE
    if not metrics_available or summary.cpu_percent is None:
        cpu = "n/a"
    else:
        cpu = f"{summary.cpu_percent:.0f}%"
    memory = f"{gib(summary.memory_used)}/{gib(summary.memory_allocatable)}G"
    disk = disk_percent(stats)
    if peers is None:
        path = "?"
    elif peer is None:
        path = "not on tailnet"
    elif not peer.online:
        path = "offline"
    else:
        path = f"relay:{peer.relay}" if peer.relay else "direct"
    return (
        summary.name,
        "control-plane" if "control-plane" in summary.roles else "worker",
        status,
        cpu,
        memory,
        "n/a" if disk is None else f"{disk:.0f}%",
        f"{gpu_allocated}/{summary.gpu_capacity}" if summary.gpu_capacity else "-",
        summary.internal_ip or "-",
        path,
        summary.kubelet_version or "-",
        age((node.get("metadata") or {}).get("creationTimestamp"), now),
    )


def desired_replicas(kind: str, obj: dict[str, Any] | None) -> int | None:
    if obj is None:
        return None
    if kind == "DaemonSet":
        return int((obj.get("status") or {}).get("desiredNumberScheduled") or 0)
    return int((obj.get("spec") or {}).get("replicas", 1))


def workload_row(
    kind: str, key: str, counts: WorkloadCounts, obj: dict[str, Any] | None
) -> tuple[str, ...]:
    namespace, _, name = key.partition("/")
    desired = desired_replicas(kind, obj)
    wanted = counts.total if desired is None else desired
    ready = counts.ready
    if wanted == 0:
        health = "Scaled to 0"
    elif ready >= wanted:
        health = "Healthy"
    elif ready == 0:
        health = "Down"
    else:
        health = "Degraded"
    return (namespace, name, kind, f"{ready}/{wanted}", str(counts.restarts), health)


def short_revision(revision: str | None) -> str:
    if not revision:
        return "-"
    ref, _, digest = revision.partition("@")
    digest = digest.split(":", 1)[-1]
    return f"{ref}@{digest[:8]}" if digest else ref


def flux_row(kind: str, obj: dict[str, Any]) -> tuple[str, ...]:
    from kubani.cluster.status import flux_object

    flux = flux_object(kind, obj)
    return (
        kind,
        f"{flux.namespace}/{flux.name}",
        "Suspended" if flux.suspended else flux.ready,
        flux.reason or "-",
        short_revision(flux.revision),
        "" if flux.ready == "True" else flux.message,
    )


def event_time(event: dict[str, Any]) -> str:
    return str(
        event.get("lastTimestamp")
        or event.get("eventTime")
        or event.get("firstTimestamp")
        or (event.get("metadata") or {}).get("creationTimestamp")
        or ""
    )


def event_row(event: dict[str, Any], now: datetime | None = None) -> tuple[str, ...]:
    involved = event.get("involvedObject") or {}
    namespace = involved.get("namespace")
    name = f"{namespace}/{involved.get('name')}" if namespace else str(involved.get("name"))
    return (
        age(event_time(event), now),
        str(event.get("type") or "Normal"),
        str(event.get("reason") or "-"),
        f"{involved.get('kind', '?')} {name}",
        " ".join(str(event.get("message") or "").split()),
    )
