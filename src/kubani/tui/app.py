"""cluster-tui's application: live tables fed by watch workers and polls."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, ClassVar

from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.timer import Timer
from textual.widgets import DataTable, Footer, Static

from kubani.cluster.cache import Changes, ClusterCache, WorkloadCounts
from kubani.cluster.live import FLUX_KINDS, WATCHED, ClusterSource
from kubani.cluster.rows import (
    EVENT_COLUMNS,
    FLUX_COLUMNS,
    NODE_COLUMNS,
    WORKLOAD_COLUMNS,
    event_row,
    event_time,
    flux_row,
    node_row,
    parse_time,
    workload_row,
)
from kubani.cluster.status import InventoryNode
from kubani.errors import KubaniError
from kubani.models.peer import TailscalePeer
from kubani.tui.widgets import LiveTable, Row, StatusBar
from kubani.vocabulary import NodeState

MIN_WIDTH, MIN_HEIGHT = 80, 24
MAX_EVENTS = 200
STATS_BATCH = 50
PANES = ("nodes", "workloads", "flux", "events")


def _now() -> datetime:
    return datetime.now(UTC)


class ClusterApp(App[None]):
    CSS_PATH = "app.tcss"
    TITLE = "cluster-tui"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit"),
        Binding("r", "refresh", "Refresh"),
        Binding("slash", "filter", "Filter"),
        Binding("n", "namespace", "Namespace"),
        Binding("tab", "next_pane", "Next pane"),
        Binding("enter", "details", "Details", show=False),
        Binding("d", "details", "Describe"),
        Binding("l", "logs", "Logs"),
        Binding("s", "sort", "Sort"),
        Binding("question_mark", "help", "Help"),
    ]

    def __init__(
        self,
        source: ClusterSource,
        refresh_s: float = 5.0,
        namespace: str | None = None,
        inventory: list[InventoryNode] | None = None,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        super().__init__()
        self.source = source
        self.refresh_s = refresh_s
        self.namespace = namespace
        self.inventory = inventory or []
        self.clock = clock
        self.cache = ClusterCache()
        self.metrics: dict[str, dict[str, str]] | None = None
        self.metrics_available = False
        self.stats: dict[str, dict[str, Any]] = {}
        self.peers: list[TailscalePeer] | None = None
        self.connection = "connecting"
        self.updated: datetime | None = None
        self.problem = ""
        self.filter_text = ""
        self.flux_missing = False
        self._stats_cursor = 0
        self._poll_timers: dict[str, Timer] = {}
        self._status = StatusBar(id="status")

    # ---- layout --------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield self._status
        with Vertical(id="main"):
            yield LiveTable(NODE_COLUMNS, id="nodes")
            with Horizontal(id="middle"):
                yield LiveTable(WORKLOAD_COLUMNS, id="workloads")
                yield LiveTable(FLUX_COLUMNS, id="flux")
            yield LiveTable(EVENT_COLUMNS, id="events")
        yield Static(id="too-small")
        yield Footer()

    @property
    def closing(self) -> bool:
        """The app is shutting down (its screens, or the main screen's widgets, are gone)
        while a worker or a timer still finishes: nothing is left to update."""
        # is_attached is false once the app exits or the widget is removed (no DOM query on
        # every change).
        return not self.screen_stack or not self._status.is_attached

    def table(self, name: str) -> LiveTable:
        # The main screen's table, also while a details or logs screen is on top (polls and
        # watches keep updating it; the active screen has no such table).
        return self.screen_stack[0].query_one(f"#{name}", LiveTable)

    def on_mount(self) -> None:
        titles = {"nodes": "Nodes", "workloads": "Workloads", "flux": "Flux", "events": "Events"}
        for name, title in titles.items():
            self.table(name).border_title = title
        self.table("nodes").focus()
        self._check_size()
        self._show_status()
        self.set_interval(1.0, self._show_status)
        self.start_watches()
        self.poll_metrics()
        self.poll_tailnet()
        self.poll_stats()

    def on_resize(self) -> None:
        self._check_size()

    def _check_size(self) -> None:
        width, height = self.size
        small = width < MIN_WIDTH or height < MIN_HEIGHT
        self.set_class(small, "too-small")
        if small:
            self.screen_stack[0].query_one("#too-small", Static).update(
                f"cluster-tui needs a terminal of at least {MIN_WIDTH}x{MIN_HEIGHT}; "
                f"this one is {width}x{height}."
            )

    def _show_status(self) -> None:
        if self.closing:
            return
        note = []
        if self.filter_text:
            note.append(f"filter: {self.filter_text}")
        if self.namespace:
            note.append(f"namespace: {self.namespace}")
        if self.problem and self.connection == "stale":
            note.append(f"retrying: {self.problem}")
        self._status.show(
            self.source.cluster_name,
            self.source.server,
            self.connection,
            self.updated,
            self.clock(),
            "  ".join(note),
        )

    # ---- watches ---------------------------------------------------------------------------

    def start_watches(self) -> None:
        for kind in WATCHED:
            self.run_worker(self._watch(kind), name=f"watch {kind}", group="watch", exclusive=False)

    async def _watch(self, kind: str) -> None:
        from kubani.kube.client import KubeError

        backoff = 1.0
        while True:
            try:
                items, version = await self.source.fetch(kind)
                self.apply_changes(self.cache.replace(kind, items, version))
                self._connected()
                backoff = 1.0
                while True:
                    since = self.cache.versions.get(kind, version)
                    async for event, obj in self.source.watch(kind, since):
                        self.apply_changes(self.cache.apply(kind, event, obj))
                        self._connected()
            except KubeError as exc:
                if exc.status == 410:
                    continue  # too old: list again
                if exc.status == 404 and kind in FLUX_KINDS:
                    self.flux_missing = True
                    if not self.closing:
                        self.table("flux").border_subtitle = "Flux not installed"
                    return
                self._disconnected(exc.line())
            except (KubaniError, OSError) as exc:
                self._disconnected(str(exc))
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 30.0)

    def _connected(self) -> None:
        changed = self.connection != "live"
        self.connection = "live"
        self.updated = self.clock()
        self.problem = ""
        if changed:
            self._show_status()

    def _disconnected(self, problem: str) -> None:
        if self.updated is not None or self.connection != "connecting":
            self.connection = "stale"
        self.problem = problem
        self._show_status()

    # ---- polls (each schedules the next when it has finished) ------------------------------

    def _again(self, name: str, seconds: float, action: Callable[[], object]) -> None:
        self._poll_timers[name] = self.set_timer(seconds, action)

    @work(exclusive=True, group="metrics")
    async def poll_metrics(self) -> None:
        try:
            self.metrics = await self.source.node_metrics()
            self.metrics_available = self.metrics is not None
        except KubaniError:
            pass  # the watches report the connection
        self.refresh_nodes()
        self.refresh_events()
        self._again("metrics", self.refresh_s, self.poll_metrics)

    @work(exclusive=True, group="tailnet")
    async def poll_tailnet(self) -> None:
        try:
            self.peers = await self.source.tailnet()
        except KubaniError:
            self.peers = None
        self.refresh_nodes()
        self._again("tailnet", self.refresh_s * 2, self.poll_tailnet)

    @work(exclusive=True, group="stats")
    async def poll_stats(self) -> None:
        names = sorted(self.cache.of("nodes"))
        batch = names[self._stats_cursor : self._stats_cursor + STATS_BATCH]
        self._stats_cursor = 0 if len(batch) < STATS_BATCH else self._stats_cursor + STATS_BATCH
        limit = asyncio.Semaphore(10)

        async def one(name: str) -> None:
            async with limit:
                try:
                    stats = await self.source.node_stats(name)
                except KubaniError:
                    return
                if stats is not None:
                    self.stats[name] = stats

        await asyncio.gather(*(one(name) for name in batch))
        self.refresh_nodes()
        # Disk use changes slowly: every few refreshes, but soon while no node is known yet.
        self._again("stats", self.refresh_s * (6 if names else 1), self.poll_stats)

    # ---- rows --------------------------------------------------------------------------------

    def _passes(self, row: Row, namespace: str | None = None) -> bool:
        if self.namespace and namespace is not None and namespace != self.namespace:
            return False
        return not self.filter_text or self.filter_text.lower() in " ".join(row).lower()

    def node_rows(self) -> dict[str, Row]:
        rows: dict[str, Row] = {}
        now = self.clock()
        for name, node in self.cache.of("nodes").items():
            rows[name] = self._node_row(name, node, now)
        for entry in self.inventory:
            if entry.name not in rows:
                rows[entry.name] = (
                    entry.name, entry.role, NodeState.NOT_JOINED, "-", "-", "-", "-",
                    entry.tailscale_ip or "-", "-", "-", "-",
                )  # fmt: skip
        return {k: r for k, r in rows.items() if self._passes(r)}

    def _node_row(self, name: str, node: dict[str, Any], now: datetime) -> Row:
        return node_row(
            node,
            (self.metrics or {}).get(name),
            self.metrics_available,
            self.stats.get(name),
            self.peers,
            self.cache.gpu_allocated(name),
            now,
        )

    def workload_row_for(self, row_key: str) -> Row | None:
        found = self.cache.workload(row_key)
        if found is None:
            return None
        (kind, key), counts = found
        obj = self.cache.workload_object(kind, key)
        if kind == "Pod" and obj is None:
            return None
        return workload_row(kind, key, counts, obj)

    def workload_rows(self) -> dict[str, Row]:
        rows = {}
        for (kind, key), counts in self.cache.workloads.items():
            row = self._workload(kind, key, counts)
            if row is not None and self._passes(row, row[0]):
                rows[f"{kind}:{key}"] = row
        return rows

    def _workload(self, kind: str, key: str, counts: WorkloadCounts) -> Row | None:
        obj = self.cache.workload_object(kind, key)
        if kind in ("Deployment", "StatefulSet", "DaemonSet") and obj is None and not counts.pods:
            return None
        return workload_row(kind, key, counts, obj)

    def flux_rows(self) -> dict[str, Row]:
        rows = {}
        for plural, kind in FLUX_KINDS.items():
            for key, obj in self.cache.of(plural).items():
                row = flux_row(kind, obj)
                if self._passes(row):
                    rows[f"{plural}:{key}"] = row
        return rows

    @staticmethod
    def _moment(event: dict[str, Any] | None) -> datetime:
        return parse_time(event_time(event or {})) or datetime.min.replace(tzinfo=UTC)

    def event_rows(self) -> dict[str, Row]:
        events = sorted(
            self.cache.of("events").items(), key=lambda item: self._moment(item[1]), reverse=True
        )
        now = self.clock()
        rows = {}
        for key, event in events:
            namespace = (event.get("metadata") or {}).get("namespace")
            row = event_row(event, now)
            if self._passes(row, namespace):
                rows[key] = row
            if len(rows) >= MAX_EVENTS:
                break
        return rows

    def apply_changes(self, changes: Changes) -> None:
        """Update only the rows a change touched; rebuild a table only after a list."""
        if self.closing:
            return
        builders = {
            "nodes": self.node_rows,
            "workloads": self.workload_rows,
            "flux": self.flux_rows,
            "events": self.event_rows,
        }
        for name in changes.reset:
            if name in builders:
                self._sync(name, builders[name]())
        for name, keys in changes.touched.items():
            if name in changes.reset or name not in builders:
                continue
            if name == "events":
                self._touch_events(keys)
                continue
            table, changed = self.table(name), False
            for key in keys:
                row = self._row(name, key)
                namespace = row[0] if row is not None and name == "workloads" else None
                if row is not None and self._passes(row, namespace):
                    changed |= table.upsert(key, row)
                else:
                    changed |= table.drop(key)
            if changed:
                table.apply_sort()
        for name, keys in changes.removed.items():
            if name in builders:
                for key in keys:
                    self.table(name).drop(key)

    def _row(self, table: str, key: str) -> Row | None:
        if table == "nodes":
            node = self.cache.of("nodes").get(key)
            return self._node_row(key, node, self.clock()) if node is not None else None
        if table == "workloads":
            return self.workload_row_for(key)
        if table == "flux":
            plural, _, object_key = key.partition(":")
            obj = self.cache.of(plural).get(object_key)
            return flux_row(FLUX_KINDS[plural], obj) if obj is not None else None
        return None

    def _touch_events(self, keys: set[str]) -> None:
        """Place changed events among the newest shown, without sorting every event."""
        if self.closing:
            return
        table, events, now = self.table("events"), self.cache.of("events"), self.clock()
        changed = False
        for key in keys:
            event = events.get(key)
            row = event_row(event, now) if event is not None else None
            namespace = ((event or {}).get("metadata") or {}).get("namespace")
            if row is not None and self._passes(row, namespace):
                changed |= table.upsert(key, row)
            else:
                changed |= table.drop(key)
        excess = table.row_count - MAX_EVENTS
        if excess > 0:
            oldest = sorted(table.row_keys(), key=lambda k: self._moment(events.get(k)))
            for key in oldest[:excess]:
                table.drop(key)
        if changed:
            table.sort("LAST SEEN", key=lambda cell: _age_seconds(cell.plain))

    def _sync(self, name: str, rows: dict[str, Row]) -> None:
        if self.closing:
            return
        table = self.table(name)
        if table.sync(rows):
            if name == "events":
                table.sort("LAST SEEN", key=lambda cell: _age_seconds(cell.plain))
            else:
                table.apply_sort()

    def refresh_nodes(self) -> None:
        self._sync("nodes", self.node_rows())

    def refresh_events(self) -> None:
        self._sync("events", self.event_rows())

    def refilter(self) -> None:
        self._sync("nodes", self.node_rows())
        self._sync("workloads", self.workload_rows())
        self._sync("flux", self.flux_rows())
        self._sync("events", self.event_rows())
        self._show_status()

    # ---- actions --------------------------------------------------------------------------

    def focused_table(self) -> LiveTable | None:
        focused = self.focused
        return focused if isinstance(focused, LiveTable) else None

    def action_next_pane(self) -> None:
        current = self.focused_table()
        index = PANES.index(str(current.id)) if current is not None and current.id in PANES else -1
        self.table(PANES[(index + 1) % len(PANES)]).focus()

    def action_refresh(self) -> None:
        for timer in self._poll_timers.values():
            timer.stop()
        self.workers.cancel_group(self, "watch")
        self.start_watches()
        self.poll_metrics()
        self.poll_tailnet()
        self.poll_stats()
        self.notify("Refreshing", timeout=2)

    def action_sort(self) -> None:
        table = self.focused_table()
        if table is not None:
            self.notify(f"sorted by {table.next_sort()}", timeout=2)

    def action_filter(self) -> None:
        from kubani.tui.screens import FilterScreen

        def done(text: str | None) -> None:
            if text is not None:
                self.filter_text = text.strip()
                self.refilter()

        self.push_screen(FilterScreen(self.filter_text), done)

    def action_namespace(self) -> None:
        from kubani.tui.screens import NamespaceScreen

        namespaces = sorted(
            {key.split("/", 1)[0] for key in self.cache.of("pods")}
            | {k.split("/", 1)[0] for plural in ("deployments", "statefulsets", "daemonsets")
               for k in self.cache.of(plural)}
        )  # fmt: skip

        def done(choice: str | None) -> None:
            if choice is not None:
                self.namespace = choice or None
                self.refilter()

        self.push_screen(NamespaceScreen(namespaces, self.namespace), done)

    def action_help(self) -> None:
        from kubani.tui.screens import HelpScreen

        self.push_screen(HelpScreen(self.BINDINGS))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_details()

    def action_details(self) -> None:
        from kubani.tui.screens import NodeScreen, WorkloadScreen

        table = self.focused_table()
        key = table.selected_key() if table is not None else None
        if table is None or key is None:
            return
        if table.id == "nodes" and key in self.cache.of("nodes"):
            self.push_screen(NodeScreen(self, key))
        elif table.id == "workloads":
            self.push_screen(WorkloadScreen(self, key))

    def action_logs(self) -> None:
        from kubani.tui.screens import LogsScreen

        table = self.focused_table()
        key = table.selected_key() if table is not None else None
        if table is None or table.id != "workloads" or key is None:
            self.notify("select a workload first (Tab to the workloads table)", timeout=3)
            return
        found = self.cache.workload(key)
        pods = sorted(found[1].pods) if found else []
        if not pods:
            self.notify("this workload has no pods", timeout=3)
            return
        namespace, _, name = pods[0].partition("/")
        self.push_screen(LogsScreen(self.source, namespace, name))


def _age_seconds(text: str) -> float:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    try:
        return float(text[:-1]) * units[text[-1]]
    except (KeyError, ValueError, IndexError):
        return float("inf")
