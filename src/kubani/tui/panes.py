"""The main screen's panes: each knows its table's columns, builds its rows by key from the
live state, and rebuilds only the rows a change touched."""

from __future__ import annotations

import heapq
from abc import ABC, abstractmethod
from collections.abc import Callable
from datetime import datetime
from operator import itemgetter
from typing import Any, ClassVar

from kubani.cluster.cache import WorkloadCounts
from kubani.cluster.live import FLUX_KINDS
from kubani.cluster.rows import (
    EVENT_COLUMNS,
    FLUX_COLUMNS,
    NODE_COLUMNS,
    WORKLOAD_COLUMNS,
    Column,
    TableRow,
    absent_node_row,
    event_row,
    flux_row,
    node_row,
    workload_row,
)
from kubani.cluster.times import NEVER
from kubani.kube.summary import internal_ip
from kubani.tui.state import LiveState
from kubani.tui.table import LiveTable

# The events pane shows the newest this many.
MAX_EVENTS = 200
_WORKLOAD_KINDS_WITH_OBJECTS = ("Deployment", "StatefulSet", "DaemonSet")


class Pane(ABC):
    """One table of the main screen."""

    name: ClassVar[str]
    title: ClassVar[str]
    columns: ClassVar[tuple[Column, ...]]
    # The column the table is kept sorted by (an index of columns), if any.
    default_sort: ClassVar[int | None] = None

    def __init__(self, state: LiveState) -> None:
        self.state = state

    @abstractmethod
    def all_rows(self) -> dict[str, TableRow]:
        """Every row this pane would show now, by key (after a list or a filter change)."""

    @abstractmethod
    def row(self, key: str) -> TableRow | None:
        """The row for one key, or None when there is no such object any more."""

    def rows(self) -> dict[str, TableRow]:
        return {key: row for key, row in self.all_rows().items() if self.state.passes(row)}

    def touch(self, table: LiveTable, keys: set[str]) -> bool:
        """Rebuild the rows of ``keys`` only; True when the table changed."""
        changed = False
        for key in keys:
            row = self.row(key)
            if row is not None and self.state.passes(row):
                changed |= table.upsert(key, row)
            else:
                changed |= table.drop(key)
        return changed

    def sync(self, table: LiveTable) -> bool:
        return table.sync(self.rows())


class NodesPane(Pane):
    name, title, columns = "nodes", "Nodes", NODE_COLUMNS

    def _row(self, name: str, node: dict[str, Any], now: datetime) -> TableRow:
        state = self.state
        return node_row(
            node,
            (state.metrics or {}).get(name),
            state.metrics_available,
            state.stats.get(name),
            state.peers,
            state.cache.gpu_allocated(name),
            now,
            tuple(state.cpu_history.get(name, ())),
            state.rtt_ms.get(internal_ip(node) or ""),
        )

    def all_rows(self) -> dict[str, TableRow]:
        now = self.state.clock()
        rows = {
            name: self._row(name, node, now) for name, node in self.state.cache.of("nodes").items()
        }
        for entry in self.state.inventory:
            if entry.name not in rows:
                rows[entry.name] = absent_node_row(entry.name, entry.role, entry.tailscale_ip)
        return rows

    def row(self, key: str) -> TableRow | None:
        node = self.state.cache.of("nodes").get(key)
        return self._row(key, node, self.state.clock()) if node is not None else None


class WorkloadsPane(Pane):
    name, title, columns = "workloads", "Workloads", WORKLOAD_COLUMNS

    def all_rows(self) -> dict[str, TableRow]:
        rows = {}
        for (kind, key), counts in self.state.cache.workloads.items():
            row = self._build(kind, key, counts)
            if row is not None:
                rows[f"{kind}:{key}"] = row
        return rows

    def row(self, key: str) -> TableRow | None:
        found = self.state.cache.workload(key)
        if found is None:
            return None
        (kind, object_key), counts = found
        return self._build(kind, object_key, counts)

    def _build(self, kind: str, key: str, counts: WorkloadCounts) -> TableRow | None:
        obj = self.state.cache.workload_object(kind, key)
        gone = kind == "Pod" or (kind in _WORKLOAD_KINDS_WITH_OBJECTS and not counts.pods)
        if obj is None and gone:
            return None
        return workload_row(kind, key, counts, obj, "pods" in self.state.cache.versions)


class FluxPane(Pane):
    name, title, columns = "flux", "Flux", FLUX_COLUMNS

    def all_rows(self) -> dict[str, TableRow]:
        return {
            f"{plural}:{key}": flux_row(kind, obj)
            for plural, kind in FLUX_KINDS.items()
            for key, obj in self.state.cache.of(plural).items()
        }

    def row(self, key: str) -> TableRow | None:
        plural, _, object_key = key.partition(":")
        if plural not in FLUX_KINDS:
            return None
        obj = self.state.cache.of(plural).get(object_key)
        return flux_row(FLUX_KINDS[plural], obj) if obj is not None else None


class EventsPane(Pane):
    """The newest events first, at most MAX_EVENTS of them."""

    name, title, columns = "events", "Events", EVENT_COLUMNS
    default_sort = 0  # LAST SEEN: the newest (youngest) first

    def all_rows(self) -> dict[str, TableRow]:
        return dict(self._newest(None))

    def rows(self) -> dict[str, TableRow]:
        return dict(self._newest(self.state.passes))

    def _newest(self, keep: Callable[[TableRow], bool] | None) -> list[tuple[str, TableRow]]:
        """The newest events' rows, by the times the cache parsed when each arrived."""
        cache, now = self.state.cache, self.state.clock()
        events, moments = cache.of("events"), cache.event_moments.items()
        by_time = itemgetter(1)
        newest = (
            heapq.nlargest(MAX_EVENTS, moments, key=by_time)
            if keep is None
            else sorted(moments, key=by_time, reverse=True)
        )
        found = []
        for key, _moment in newest:
            row = event_row(events[key], now)
            if keep is None or keep(row):
                found.append((key, row))
                if len(found) >= MAX_EVENTS:
                    break
        return found

    def row(self, key: str) -> TableRow | None:
        event = self.state.cache.of("events").get(key)
        return event_row(event, self.state.clock()) if event is not None else None

    def touch(self, table: LiveTable, keys: set[str]) -> bool:
        """Place changed events among the newest shown, without sorting every event."""
        changed = super().touch(table, keys)
        moments = self.state.cache.event_moments
        excess = table.row_count - MAX_EVENTS
        if excess > 0:
            oldest = sorted(table.row_keys(), key=lambda key: moments.get(key, NEVER))
            for key in oldest[:excess]:
                table.drop(key)
        return changed


def panes(state: LiveState) -> dict[str, Pane]:
    """The main screen's panes, in focus order."""
    return {
        pane.name: pane
        for pane in (cls(state) for cls in (NodesPane, WorkloadsPane, FluxPane, EventsPane))
    }
