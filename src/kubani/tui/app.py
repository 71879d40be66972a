"""cluster-tui's application: live tables fed by watch workers and polls."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import suppress
from datetime import UTC, datetime
from typing import ClassVar

from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.timer import Timer
from textual.widgets import Footer, Static

from kubani.cluster.cache import Changes
from kubani.cluster.live import FLUX_KINDS, LISTED_LAST, WATCHED, ClusterSource
from kubani.cluster.overview import overview
from kubani.cluster.status import InventoryNode
from kubani.errors import KubaniError
from kubani.printable import printable
from kubani.tui.panes import Pane, panes
from kubani.tui.state import LiveState
from kubani.tui.table import LiveTable
from kubani.tui.widgets import StatusBar, SummaryLine

MIN_WIDTH, MIN_HEIGHT = 80, 24
STATS_BATCH = 50
# The big lists wait at most this long for the others (a slow API must not hold them back).
FIRST_LISTS_WAIT_S = 10.0


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
        self.state = LiveState(source, refresh_s, clock, inventory or [])
        self.source = source
        self.refresh_s = refresh_s
        self.clock = clock
        self.panes: dict[str, Pane] = panes(self.state)
        self.connection = "connecting"
        self.updated: datetime | None = None
        self.problem = ""
        self.flux_missing = False
        self._stats_cursor = 0
        self._poll_timers: dict[str, Timer] = {}
        self._status = StatusBar(id="status")
        self._summary = SummaryLine(id="summary")
        self._summary_timer: Timer | None = None
        self._first_lists = asyncio.Event()
        self._listing: set[str] = set()

    # ---- layout --------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        tables = {name: LiveTable(pane.columns, id=name) for name, pane in self.panes.items()}
        yield self._status
        yield self._summary
        with Vertical(id="main"):
            yield tables["nodes"]
            with Horizontal(id="middle"):
                yield tables["workloads"]
                yield tables["flux"]
            yield tables["events"]
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
        for name, pane in self.panes.items():
            table = self.table(name)
            table.border_title = pane.title
            table.sort_column = pane.default_sort
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
        if self.state.filter_text:
            note.append(f"filter: {self.state.filter_text}")
        if self.state.namespace:
            note.append(f"namespace: {self.state.namespace}")
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

    def _show_summary(self) -> None:
        self._summary_timer = None
        if not self.closing:
            self._summary.show(overview(self.state.cache, FLUX_KINDS, self.clock()))

    def _summary_soon(self) -> None:
        """The summary after a burst of changes, not after each (it counts every object)."""
        if self._summary_timer is None:
            self._summary_timer = self.set_timer(0.1, self._show_summary)

    # ---- watches ---------------------------------------------------------------------------

    def start_watches(self) -> None:
        self._first_lists = asyncio.Event()
        self._listing = set(WATCHED) - LISTED_LAST
        for kind in WATCHED:
            self.run_worker(self._watch(kind), name=f"watch {kind}", group="watch", exclusive=False)

    async def _watch(self, kind: str) -> None:
        from kubani.kube.client import KubeError

        if kind in LISTED_LAST:
            with suppress(TimeoutError):
                await asyncio.wait_for(self._first_lists.wait(), FIRST_LISTS_WAIT_S)
        backoff = 1.0
        while True:
            try:
                try:
                    items, version = await self.source.fetch(kind)
                finally:
                    self._listed(kind)
                self.apply_changes(self.state.cache.replace(kind, items, version))
                self._connected()
                backoff = 1.0
                while True:
                    since = self.state.cache.versions.get(kind, version)
                    async for event, obj in self.source.watch(kind, since):
                        self.apply_changes(self.state.cache.apply(kind, event, obj))
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

    def _listed(self, kind: str) -> None:
        """A first list is in (or failed): the big lists go once every other one has."""
        self._listing.discard(kind)
        if not self._listing:
            self._first_lists.set()

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
        self.problem = printable(problem)
        self._show_status()

    # ---- polls (each schedules the next when it has finished) ------------------------------

    def _again(self, name: str, seconds: float, action: Callable[[], object]) -> None:
        self._poll_timers[name] = self.set_timer(seconds, action)

    @work(exclusive=True, group="metrics")
    async def poll_metrics(self) -> None:
        with suppress(KubaniError):  # the watches report the connection
            self.state.take_metrics(await self.source.node_metrics())
        self.refresh_nodes()
        self.refresh_events()
        self._summary_soon()  # recent warnings age out with time, not only with changes
        self._again("metrics", self.refresh_s, self.poll_metrics)

    @work(exclusive=True, group="tailnet")
    async def poll_tailnet(self) -> None:
        try:
            self.state.peers = await self.source.tailnet()
        except KubaniError:
            self.state.peers = None
        self.refresh_nodes()
        batch = self.state.ping_batch()
        if batch:
            self.state.take_round_trips(batch, await self.source.round_trips(batch))
            self._touch_nodes(self.state.nodes_at(batch))
        self._again("tailnet", self.refresh_s * 2, self.poll_tailnet)

    @work(exclusive=True, group="stats")
    async def poll_stats(self) -> None:
        names = sorted(self.state.cache.of("nodes"))
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
                    self.state.stats[name] = stats

        await asyncio.gather(*(one(name) for name in batch))
        self.refresh_nodes()
        # Disk use changes slowly: every few refreshes, but soon while no node is known yet.
        self._again("stats", self.refresh_s * (6 if names else 1), self.poll_stats)

    # ---- rows --------------------------------------------------------------------------------

    def apply_changes(self, changes: Changes) -> None:
        """Update only the rows a change touched; rebuild a table only after a list."""
        if self.closing:
            return
        self._summary_soon()
        for name in changes.reset:
            if name in self.panes:
                self._sync(name)
        for name, keys in changes.touched.items():
            if name in changes.reset or name not in self.panes:
                continue
            table = self.table(name)
            if self.panes[name].touch(table, keys):
                table.apply_sort()
        for name, keys in changes.removed.items():
            if name in self.panes:
                for key in keys:
                    self.table(name).drop(key)

    def _sync(self, name: str) -> None:
        if self.closing:
            return
        table = self.table(name)
        if self.panes[name].sync(table):
            table.apply_sort()

    def refresh_nodes(self) -> None:
        self._sync("nodes")

    def _touch_nodes(self, names: set[str]) -> None:
        """Redraw these nodes' rows only (a ping batch's, not all of a big cluster's)."""
        if self.closing:
            return
        table = self.table("nodes")
        if self.panes["nodes"].touch(table, names):
            table.apply_sort()

    def refresh_events(self) -> None:
        """Ages move on: redraw the events shown. Which events are the newest changes only
        with the events themselves (their watch), not with time."""
        if self.closing:
            return
        table = self.table("events")
        if self.panes["events"].touch(table, table.row_keys()):
            table.apply_sort()

    def refilter(self) -> None:
        for name in self.panes:
            self._sync(name)
        self._show_status()

    # ---- actions --------------------------------------------------------------------------

    def focused_table(self) -> LiveTable | None:
        focused = self.focused
        return focused if isinstance(focused, LiveTable) else None

    def action_next_pane(self) -> None:
        order = list(self.panes)
        current = self.focused_table()
        index = order.index(str(current.id)) if current is not None and current.id in order else -1
        self.table(order[(index + 1) % len(order)]).focus()

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
                self.state.filter_text = text.strip()
                self.refilter()

        self.push_screen(FilterScreen(self.state.filter_text), done)

    def action_namespace(self) -> None:
        from kubani.tui.screens import NamespaceScreen

        cache = self.state.cache
        namespaces = sorted(
            {key.split("/", 1)[0] for key in cache.of("pods")}
            | {k.split("/", 1)[0] for plural in ("deployments", "statefulsets", "daemonsets")
               for k in cache.of(plural)}
        )  # fmt: skip

        def done(choice: str | None) -> None:
            if choice is not None:
                self.state.namespace = choice or None
                self.refilter()

        self.push_screen(NamespaceScreen(namespaces, self.state.namespace), done)

    def action_help(self) -> None:
        from kubani.tui.screens import HelpScreen

        self.push_screen(HelpScreen(self.BINDINGS))

    def on_live_table_row_chosen(self, event: LiveTable.RowChosen) -> None:
        event.stop()
        self.action_details()

    def action_details(self) -> None:
        from kubani.tui.screens import NodeScreen, WorkloadScreen

        table = self.focused_table()
        key = table.selected_key() if table is not None else None
        if table is None or key is None:
            return
        if table.id == "nodes" and key in self.state.cache.of("nodes"):
            self.push_screen(NodeScreen(self.state, key))
        elif table.id == "workloads":
            self.push_screen(WorkloadScreen(self.state, key))

    def action_logs(self) -> None:
        from kubani.tui.screens import LogsScreen

        table = self.focused_table()
        key = table.selected_key() if table is not None else None
        if table is None or table.id != "workloads" or key is None:
            self.notify("select a workload first (Tab to the workloads table)", timeout=3)
            return
        found = self.state.cache.workload(key)
        pods = sorted(found[1].pods) if found else []
        if not pods:
            self.notify("this workload has no pods", timeout=3)
            return
        namespace, _, name = pods[0].partition("/")
        self.push_screen(LogsScreen(self.source, namespace, name))
