"""Table rows of the live view: the text of each cell, the value it sorts by and, for the
cells a view may draw as a meter, how full it is. Plain data; the TUI styles and draws it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any, TypeGuard

from kubani.cluster.cache import WorkloadCounts
from kubani.cluster.times import event_time, parse_time
from kubani.kube.fields import at, count, optional_text, text
from kubani.kube.summary import summarise
from kubani.models.peer import TailscalePeer
from kubani.printable import printable
from kubani.vocabulary import NodeState, Role

# Sorted numbers first (by value), then texts, then what is unknown.
SortKey = tuple[int, float, str]


def number_key(value: float | None, text: str = "") -> SortKey:
    return (2, 0.0, text) if value is None else (0, float(value), text)


def text_key(text: str) -> SortKey:
    return (1, 0.0, text)


class Draw(Enum):
    """How a view may draw a cell that has a meter."""

    TEXT = "text"  # the text only
    LEVEL = "level"  # the text, coloured by how full
    BAR = "bar"  # a bar, then the text
    TREND = "trend"  # the recent samples as a sparkline, then the text
    BLOCKS = "blocks"  # one block per unit (GPUs), then the text


@dataclass(frozen=True, slots=True)
class Column:
    """A table column. ``keep``: never dropped for width (names and states); otherwise the
    highest ``drop_order`` goes first when a table is too narrow. ``flexible``: takes the
    width the others leave, its text cut short (long names, messages)."""

    name: str
    keep: bool = False
    drop_order: int = 0
    flexible: bool = False
    draw: Draw = Draw.TEXT


@dataclass(frozen=True, slots=True)
class Meter:
    """How full a cell's resource is (``used`` of ``total``): CPU, memory, disk, GPUs; with
    the recent fractions, oldest first, where a view keeps them (CPU)."""

    used: float
    total: float
    history: tuple[float, ...] = ()

    @property
    def fraction(self) -> float:
        return 0.0 if self.total <= 0 else max(0.0, min(1.0, self.used / self.total))


@dataclass(frozen=True, slots=True)
class TableRow:
    """One row: the cells' text, each cell's sort key, its meters, and the namespace the
    namespace filter reads (None: shown in every namespace)."""

    cells: tuple[str, ...]
    sort: tuple[SortKey, ...]
    meters: tuple[Meter | None, ...] = ()
    namespace: str | None = None

    def meter(self, column: int) -> Meter | None:
        return self.meters[column] if column < len(self.meters) else None


def _row(
    cells: list[tuple[str, SortKey]],
    meters: tuple[Meter | None, ...] = (),
    namespace: str | None = None,
) -> TableRow:
    return TableRow(
        tuple(printable(text) for text, _ in cells),
        tuple(key for _, key in cells),
        meters,
        namespace,
    )


NODE_COLUMNS = (
    Column("NAME", keep=True),
    Column("ROLE", drop_order=4),
    Column("STATUS", keep=True),
    Column("CPU", drop_order=1, draw=Draw.TREND),
    Column("MEMORY", drop_order=2, draw=Draw.BAR),
    Column("DISK", drop_order=3, draw=Draw.LEVEL),
    Column("GPU", drop_order=1, draw=Draw.BLOCKS),
    Column("TAILSCALE IP", drop_order=5),
    Column("PATH", drop_order=2),
    Column("VERSION", drop_order=6),
    Column("AGE", drop_order=7),
)
WORKLOAD_COLUMNS = (
    Column("NAMESPACE", drop_order=2),
    Column("NAME", keep=True, flexible=True),
    Column("KIND", drop_order=3),
    Column("READY", keep=True),
    Column("RESTARTS", drop_order=4),
    Column("HEALTH", keep=True),
)
FLUX_COLUMNS = (
    Column("KIND", drop_order=2),
    Column("NAME", keep=True),
    Column("READY", keep=True),
    Column("REASON", drop_order=1),
    Column("REVISION", drop_order=4),
    Column("MESSAGE", drop_order=3, flexible=True),
)
EVENT_COLUMNS = (
    Column("LAST SEEN", keep=True),
    Column("TYPE", keep=True),
    Column("REASON", drop_order=2),
    Column("OBJECT", drop_order=1),
    Column("MESSAGE", drop_order=3, flexible=True),
)


def age_seconds(text: str | None, now: datetime | None = None) -> int | None:
    moment = parse_time(text)
    if moment is None:
        return None
    return max(0, int(((now or datetime.now(UTC)) - moment).total_seconds()))


def age(text: str | None, now: datetime | None = None) -> str:
    seconds = age_seconds(text, now)
    if seconds is None:
        return "-"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _age_cell(text: str | None, now: datetime | None) -> tuple[str, SortKey]:
    return age(text, now), number_key(age_seconds(text, now))


def gib(value: float | None, missing: str = "n/a") -> str:
    """Bytes as GiB with one decimal."""
    return missing if value is None else f"{value / 2**30:.1f}"


def peer_for_ip(peers: list[TailscalePeer] | None, address: str | None) -> TailscalePeer | None:
    if not peers or not address:
        return None
    return next((p for p in peers if address in p.tailscale_ips), None)


def disk_percent(stats: dict[str, Any] | None) -> float | None:
    fs = at(stats, "node", "fs")
    used, capacity = fs.get("usedBytes"), fs.get("capacityBytes")
    if not _is_number(used) or not _is_number(capacity) or not capacity:
        return None
    return 100.0 * float(used) / float(capacity)


def _is_number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def node_row(
    node: dict[str, Any],
    usage: dict[str, str] | None,
    metrics_available: bool,
    stats: dict[str, Any] | None,
    peers: list[TailscalePeer] | None,
    gpu_allocated: int,
    now: datetime | None = None,
    cpu_history: tuple[float, ...] = (),
    rtt_ms: float | None = None,
) -> TableRow:
    """``cpu_history``: the node's recent CPU fractions, oldest first, for its trend;
    ``rtt_ms``: the last ping's round trip to it over the tailnet."""
    summary = summarise(node, usage)
    peer = peer_for_ip(peers, summary.internal_ip)
    status = summary.status
    if peers is not None and (peer is None or not peer.online):
        status = NodeState.UNREACHABLE
    cpu_percent = summary.cpu_percent if metrics_available else None
    cpu = "n/a" if cpu_percent is None else f"{cpu_percent:.0f}%"
    used, allocatable = summary.memory_used, summary.memory_allocatable
    memory = f"{gib(used)}/{gib(allocatable)}G"
    disk = disk_percent(stats)
    if peers is None:
        path = "?"
    elif peer is None:
        path = "not on tailnet"
    elif not peer.online:
        path = "offline"
    else:
        path = f"relay:{peer.relay}" if peer.relay else "direct"
    online = peer is not None and peer.online
    path_key = number_key(rtt_ms, path) if online and rtt_ms is not None else text_key(path)
    if online and rtt_ms is not None:
        path = f"{path} {rtt_ms:.0f}ms" if rtt_ms >= 1 else f"{path} <1ms"
    gpus = summary.gpu_capacity
    role = Role.CONTROL_PLANE if Role.CONTROL_PLANE in summary.roles else Role.WORKER
    cells = [
        (summary.name, text_key(summary.name)),
        (str(role), text_key(str(role))),
        (status, text_key(status)),
        (cpu, number_key(cpu_percent)),
        (memory, number_key(used / allocatable if used is not None and allocatable else None)),
        ("n/a" if disk is None else f"{disk:.0f}%", number_key(disk)),
        (f"{gpu_allocated}/{gpus}" if gpus else "-", number_key(gpu_allocated if gpus else None)),
        (summary.internal_ip or "-", text_key(summary.internal_ip or "")),
        (path, path_key),
        (summary.kubelet_version or "-", text_key(summary.kubelet_version or "")),
        _age_cell(optional_text(at(node, "metadata").get("creationTimestamp")), now),
    ]
    meters = (
        None, None, None,
        None if cpu_percent is None else Meter(cpu_percent, 100.0, cpu_history),
        None if used is None or not allocatable else Meter(float(used), float(allocatable)),
        None if disk is None else Meter(disk, 100.0),
        Meter(float(gpu_allocated), float(gpus)) if gpus else None,
    )  # fmt: skip
    return _row(cells, meters)


def absent_node_row(name: str, role: str, tailscale_ip: str | None) -> TableRow:
    """A node of the inventory that the cluster does not list (not joined yet)."""
    cells = [(name, text_key(name)), (role, text_key(role)),
             (NodeState.NOT_JOINED, text_key(NodeState.NOT_JOINED))]  # fmt: skip
    cells += [("-", number_key(None))] * 4
    cells += [(tailscale_ip or "-", text_key(tailscale_ip or ""))]
    cells += [("-", text_key(""))] * 2 + [("-", number_key(None))]
    return _row(cells)


def desired_replicas(kind: str, obj: dict[str, Any] | None) -> int | None:
    if obj is None:
        return None
    if kind == "DaemonSet":
        return count(at(obj, "status").get("desiredNumberScheduled"))
    replicas = at(obj, "spec").get("replicas")
    return 1 if replicas is None else count(replicas)


def reported_ready(kind: str, obj: dict[str, Any] | None) -> int | None:
    """Ready pods as the workload's own status counts them (kubectl get's READY)."""
    if obj is None:
        return None
    return count(at(obj, "status").get("numberReady" if kind == "DaemonSet" else "readyReplicas"))


def workload_row(
    kind: str,
    key: str,
    counts: WorkloadCounts,
    obj: dict[str, Any] | None,
    pods_listed: bool = True,
) -> TableRow:
    """``pods_listed``: False while the pods are still being listed; the row then shows
    what the workload's status reports (and no restarts) rather than pods not yet seen."""
    namespace, _, name = key.partition("/")
    desired = desired_replicas(kind, obj)
    wanted = counts.total if desired is None else desired
    reported = None if pods_listed else reported_ready(kind, obj)
    ready = counts.ready if reported is None else reported
    restarts = counts.restarts if reported is None else None
    if wanted == 0:
        health = "Scaled to 0"
    elif ready >= wanted:
        health = "Healthy"
    elif ready == 0:
        health = "Down"
    else:
        health = "Degraded"
    cells = [
        (namespace, text_key(namespace)),
        (name, text_key(name)),
        (kind, text_key(kind)),
        (f"{ready}/{wanted}", number_key(ready / wanted if wanted else None, f"{ready}")),
        ("-" if restarts is None else str(restarts), number_key(restarts)),
        (health, text_key(health)),
    ]
    return _row(cells, namespace=namespace)


def short_revision(revision: str | None) -> str:
    if not revision:
        return "-"
    ref, _, digest = revision.partition("@")
    digest = digest.split(":", 1)[-1]
    return f"{ref}@{digest[:8]}" if digest else ref


def flux_row(kind: str, obj: dict[str, Any]) -> TableRow:
    from kubani.cluster.status import flux_object

    flux = flux_object(kind, obj)
    name = f"{flux.namespace}/{flux.name}"
    ready = "Suspended" if flux.suspended else flux.ready
    revision = short_revision(flux.revision)
    message = "" if flux.ready == "True" else flux.message
    cells = [(kind, text_key(kind)), (name, text_key(name)), (ready, text_key(ready)),
             (flux.reason or "-", text_key(flux.reason or "")), (revision, text_key(revision)),
             (message, text_key(message))]  # fmt: skip
    return _row(cells)  # Flux's objects are shown whatever namespace is chosen


def event_row(event: dict[str, Any], now: datetime | None = None) -> TableRow:
    involved = at(event, "involvedObject")
    namespace = text(involved.get("namespace"))
    name = f"{namespace}/{text(involved.get('name'))}" if namespace else text(involved.get("name"))
    kind = text(event.get("type")) or "Normal"
    reason = text(event.get("reason")) or "-"
    about = f"{text(involved.get('kind'), '?')} {name}"
    message = " ".join(text(event.get("message")).split())
    seen = event_time(event)
    cells = [_age_cell(seen, now), (kind, text_key(kind)), (reason, text_key(reason)),
             (about, text_key(about)), (message, text_key(message))]  # fmt: skip
    meta_namespace = text(at(event, "metadata").get("namespace"))
    return _row(cells, namespace=meta_namespace or namespace)
