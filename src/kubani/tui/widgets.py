"""Widgets of the live view: the status bar and tables updated row by row."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime

from rich.cells import cell_len
from rich.text import Text
from textual.coordinate import Coordinate
from textual.widgets import DataTable, Static
from textual.widgets.data_table import ColumnKey

from kubani.vocabulary import NODE_STATE_STYLES

Row = tuple[str, ...]
Styler = Callable[[int, str], str]

_STATE_STYLES = {
    **NODE_STATE_STYLES,
    "True": "green",
    "False": "bold red",
    "Unknown": "yellow",
    "Suspended": "yellow",
    "Healthy": "green",
    "Degraded": "yellow",
    "Down": "bold red",
    "Warning": "bold yellow",
    "offline": "bold red",
    "not on tailnet": "bold red",
}


def cell_style(value: str) -> str:
    if value in _STATE_STYLES:
        return _STATE_STYLES[value]
    if value.startswith("NotReady") or value.startswith("relay:"):
        return "yellow"
    if value.startswith("Ready,"):
        return "yellow"
    return ""


class LiveTable(DataTable[Text]):
    """A DataTable kept in sync by row key: rows are added, updated cell by cell, or
    removed, never cleared and refilled."""

    def __init__(self, columns: Iterable[str], *, id: str | None = None) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, id=id)
        self._column_names = tuple(columns)
        self._rows: dict[str, Row] = {}
        self.sort_column: int | None = None
        self.sort_reverse = False

    def on_mount(self) -> None:
        for name in self._column_names:
            self.add_column(name, key=name)

    @staticmethod
    def _cells(row: Row) -> list[Text]:
        return [Text(value, style=cell_style(value), no_wrap=True) for value in row]

    def upsert(self, key: str, row: Row) -> bool:
        """Add or update one row; True when anything changed."""
        old = self._rows.get(key)
        if old == row:
            return False
        if old is None:
            self.add_row(*self._cells(row), key=key)
        else:
            for name, before, after in zip(self._column_names, old, row, strict=True):
                if before != after:
                    # Widen a column when a value outgrows it; never re-measure it to
                    # shrink (that measures every row: quadratic on big tables).
                    column = self.columns.get(ColumnKey(name))
                    wider = column is not None and cell_len(after) > column.content_width
                    self.update_cell(
                        key,
                        name,
                        Text(after, style=cell_style(after), no_wrap=True),
                        update_width=wider,
                    )
        self._rows[key] = row
        return True

    def drop(self, key: str) -> bool:
        if key not in self._rows:
            return False
        del self._rows[key]
        self.remove_row(key)
        return True

    def sync(self, wanted: dict[str, Row]) -> bool:
        """Make the table hold exactly ``wanted`` (after a list, or a filter change)."""
        changed = False
        for key in [k for k in self._rows if k not in wanted]:
            changed |= self.drop(key)
        for key, row in wanted.items():
            changed |= self.upsert(key, row)
        return changed

    def row_keys(self) -> set[str]:
        return set(self._rows)

    def row_of(self, key: str) -> Row | None:
        return self._rows.get(key)

    def selected_key(self) -> str | None:
        if not self._rows or self.cursor_row < 0:
            return None
        try:
            row_key, _ = self.coordinate_to_cell_key(Coordinate(self.cursor_row, 0))
        except Exception:
            return None
        return str(row_key.value) if row_key.value is not None else None

    def apply_sort(self) -> None:
        if self.sort_column is None:
            return
        name = self._column_names[self.sort_column]
        self.sort(name, key=lambda cell: _sort_key(cell.plain), reverse=self.sort_reverse)

    def next_sort(self) -> str:
        """Cycle the sort: each column ascending, then descending, then the next column."""
        if self.sort_column is None:
            self.sort_column, self.sort_reverse = 0, False
        elif not self.sort_reverse:
            self.sort_reverse = True
        else:
            self.sort_column = (self.sort_column + 1) % len(self._column_names)
            self.sort_reverse = False
        self.apply_sort()
        return f"{self._column_names[self.sort_column]} {'↓' if self.sort_reverse else '↑'}"


def _sort_key(text: str) -> tuple[int, float, str]:
    number = text.rstrip("%smhdG").split("/")[0]
    try:
        return (0, float(number), text)
    except ValueError:
        return (1, 0.0, text)


class StatusBar(Static):
    """Cluster, endpoint, connection state and the age of the data."""

    def show(
        self,
        cluster: str,
        server: str,
        state: str,
        updated: datetime | None,
        now: datetime,
        note: str = "",
    ) -> None:
        styles = {"live": "bold green", "connecting": "bold yellow", "stale": "bold red"}
        text = Text.assemble(
            (f" {cluster} ", "bold reverse"),
            f"  {server}  ",
            (state.upper(), styles.get(state, "bold")),
        )
        if updated is not None:
            seconds = int((now - updated).total_seconds())
            text.append(f"  updated {updated:%H:%M:%S}")
            if state == "stale":
                text.append(f" ({seconds}s ago)", style="bold red")
        if note:
            text.append(f"  {note}", style="dim")
        self.update(text)
