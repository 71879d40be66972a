"""Widgets of the live view: the status and summary lines, and tables kept in sync by row
key that fit their columns to their width."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from rich.cells import cell_len
from rich.text import Text
from textual.coordinate import Coordinate
from textual.events import Resize
from textual.widgets import DataTable, Static
from textual.widgets.data_table import ColumnKey

from kubani.cluster.overview import ClusterOverview
from kubani.cluster.rows import Column, Draw, Meter, SortKey, TableRow
from kubani.vocabulary import NODE_STATE_STYLES

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
# How full a resource may be before it is drawn as busy, then as hot.
BUSY_AT, HOT_AT = 0.75, 0.90
_SPARKS = "▁▂▃▄▅▆▇█"
TREND_WIDTH = 6  # samples a CPU trend shows
BAR_WIDTH = 5
MAX_BLOCKS = 8  # GPUs drawn one block each up to this many
# A flexible column is never cut narrower than this.
MIN_FLEXIBLE = 12


def cell_style(value: str) -> str:
    if value in _STATE_STYLES:
        return _STATE_STYLES[value]
    if value.startswith("NotReady") or value.startswith("relay:"):
        return "yellow"
    if value.startswith("Ready,"):
        return "yellow"
    return ""


def level_style(fraction: float) -> str:
    if fraction >= HOT_AT:
        return "bold red"
    return "yellow" if fraction >= BUSY_AT else "green"


def sparkline(samples: Sequence[float], width: int = TREND_WIDTH) -> str:
    """The last ``width`` samples (fractions) as block heights; fewer samples than the width
    are padded with the oldest, so a steady value draws the same at any history length."""
    recent = list(samples[-width:])
    if not recent:
        return " " * width
    recent = [recent[0]] * (width - len(recent)) + recent
    top = len(_SPARKS) - 1
    return "".join(_SPARKS[round(max(0.0, min(1.0, s)) * top)] for s in recent)


class SortableText(Text):
    """A cell that also carries its row's sort keys, so that a table sorts by the data
    (numbers as numbers, ages in seconds), whatever the text shows."""

    row_sort: tuple[SortKey, ...] = ()


def draw_cell(column: Column, text: str, meter: Meter | None) -> SortableText:
    """A cell as the view shows it: states coloured, meters drawn beside their figures."""
    if meter is None or column.draw is Draw.TEXT:
        return SortableText(text, style=cell_style(text), no_wrap=True, overflow="ellipsis")
    style = level_style(meter.fraction)
    if column.draw is Draw.TREND:
        picture = sparkline(meter.history or (meter.fraction,))
    elif column.draw is Draw.BAR:
        filled = round(meter.fraction * BAR_WIDTH)
        picture = "█" * filled + "░" * (BAR_WIDTH - filled)
    elif column.draw is Draw.BLOCKS and 0 < meter.total <= MAX_BLOCKS:
        used = round(meter.used)
        picture = "■" * used + "□" * (round(meter.total) - used)
    else:
        return SortableText(text, style=style, no_wrap=True, overflow="ellipsis")
    cell = SortableText(no_wrap=True, overflow="ellipsis")
    cell.append(picture, style)
    cell.append(" ")
    cell.append(text, style)
    return cell


def drawn_width(column: Column, text: str, meter: Meter | None) -> int:
    """How wide ``draw_cell`` draws a cell, without drawing it."""
    width = cell_len(text)
    if meter is None or column.draw in (Draw.TEXT, Draw.LEVEL):
        return width
    if column.draw is Draw.TREND:
        return TREND_WIDTH + 1 + width
    if column.draw is Draw.BAR:
        return BAR_WIDTH + 1 + width
    if 0 < meter.total <= MAX_BLOCKS:
        return round(meter.total) + 1 + width
    return width


class LiveTable(DataTable[Text]):
    """A DataTable kept in sync by row key (rows are added, updated cell by cell, or
    removed, never cleared and refilled), whose columns fit its width: the least important
    go first when it is narrow, and a flexible column takes what the others leave."""

    def __init__(self, columns: Sequence[Column], *, id: str | None = None) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, id=id)
        self.all_columns = tuple(columns)
        self._index = {column.name: i for i, column in enumerate(self.all_columns)}
        self._shown: tuple[int, ...] = tuple(range(len(columns)))
        self._flexible_width: int | None = None
        self._rows: dict[str, TableRow] = {}
        # The widest drawn cell of each column so far (grows only: measuring every row again
        # on each change would be quadratic on big tables).
        self._widest = [cell_len(column.name) for column in self.all_columns]
        self._fitted_width = -1
        self._refit_pending = False
        self.sort_column: int | None = None
        self.sort_reverse = False
        # Rows were added, or a sort key of the sorted column changed, since the last sort:
        # a change elsewhere in a row leaves the order as it is (no sort of every row).
        self._order_stale = False

    # ---- columns ---------------------------------------------------------------------------

    @property
    def shown_columns(self) -> tuple[str, ...]:
        return tuple(self.all_columns[i].name for i in self._shown)

    def on_mount(self) -> None:
        self._add_columns()

    def _add_columns(self) -> None:
        for index in self._shown:
            column = self.all_columns[index]
            width = self._flexible_width if column.flexible else None
            self.add_column(column.name, key=column.name, width=width)

    def on_resize(self, event: Resize) -> None:
        self.fit()

    def _measure(self, row: TableRow) -> bool:
        """Take the row's cells into the columns' widths; True when one grew."""
        grew = False
        for index, column in enumerate(self.all_columns):
            width = drawn_width(column, row.cells[index], row.meter(index))
            if width > self._widest[index]:
                self._widest[index] = width
                grew = True
        return grew

    def fit(self) -> None:
        """Choose the columns and the flexible width for the table's present width."""
        self._refit_pending = False
        region = self.scrollable_content_region
        width = region.width
        if width <= 0:
            return
        available = width
        if self.row_count + 1 > region.height and not self.show_vertical_scrollbar:
            available -= self.styles.scrollbar_size_vertical  # the scroll bar about to come
        padding = 2 * self.cell_padding
        needed = dict(enumerate(self._widest))
        shown = list(range(len(self.all_columns)))

        def total(columns: list[int]) -> int:
            return sum(
                (MIN_FLEXIBLE if self.all_columns[i].flexible else needed[i]) + padding
                for i in columns
            )

        while total(shown) > available:
            droppable = [i for i in shown if not self.all_columns[i].keep]
            if not droppable:
                break
            shown.remove(max(droppable, key=lambda i: self.all_columns[i].drop_order))
        flexible = next((i for i in shown if self.all_columns[i].flexible), None)
        flexible_width = None
        if flexible is not None:
            rest = available - total([i for i in shown if i != flexible]) - padding
            if needed[flexible] > rest:
                flexible_width = max(rest, MIN_FLEXIBLE)
        if tuple(shown) != self._shown or flexible_width != self._flexible_width:
            self._shown, self._flexible_width = tuple(shown), flexible_width
            self._rebuild()
        self._fitted_width = width

    def _rebuild(self) -> None:
        self.clear(columns=True)
        self._add_columns()
        for key, row in self._rows.items():
            self.add_row(*self._cells(row), key=key)
        self.apply_sort(force=True)

    def _refit_soon(self) -> None:
        if not self._refit_pending:
            self._refit_pending = True
            self.call_after_refresh(self.fit)

    # ---- rows ------------------------------------------------------------------------------

    def _cell(self, row: TableRow, index: int) -> SortableText:
        cell = draw_cell(self.all_columns[index], row.cells[index], row.meter(index))
        cell.row_sort = row.sort
        return cell

    def _cells(self, row: TableRow) -> list[Text]:
        return [self._cell(row, index) for index in self._shown]

    def upsert(self, key: str, row: TableRow) -> bool:
        """Add or update one row; True when anything changed."""
        old = self._rows.get(key)
        if old == row:
            return False
        self._rows[key] = row
        if self._measure(row):
            self._refit_soon()
        if old is None or (
            self.sort_column is not None
            and old.sort[self.sort_column] != row.sort[self.sort_column]
        ):
            self._order_stale = True
        if old is None:
            self.add_row(*self._cells(row), key=key)
            return True
        for index in self._shown:
            if (
                old.cells[index] == row.cells[index]
                and old.meter(index) == row.meter(index)
                and old.sort == row.sort
            ):
                continue
            cell = self._cell(row, index)
            name = self.all_columns[index].name
            # Widen a column when a value outgrows it; never re-measure it to shrink (that
            # measures every row: quadratic on big tables). A fixed (flexible) one is cut.
            column = self.columns.get(ColumnKey(name))
            wider = column is not None and cell_len(cell.plain) > column.content_width
            fixed = self.all_columns[index].flexible and self._flexible_width is not None
            self.update_cell(key, name, cell, update_width=wider and not fixed)
        return True

    def drop(self, key: str) -> bool:
        if key not in self._rows:
            return False
        del self._rows[key]
        self.remove_row(key)
        return True

    def sync(self, wanted: dict[str, TableRow]) -> bool:
        """Make the table hold exactly ``wanted`` (after a list, or a filter change)."""
        changed = False
        for key in [k for k in self._rows if k not in wanted]:
            changed |= self.drop(key)
        for key, row in wanted.items():
            changed |= self.upsert(key, row)
        return changed

    def row_keys(self) -> set[str]:
        return set(self._rows)

    def row_of(self, key: str) -> TableRow | None:
        return self._rows.get(key)

    def cell_text(self, key: str, column: str) -> str | None:
        """The text of a row's cell (shown or not), by column name."""
        row = self._rows.get(key)
        return None if row is None else row.cells[self._index[column]]

    def selected_key(self) -> str | None:
        if not self._rows or self.cursor_row < 0:
            return None
        try:
            row_key, _ = self.coordinate_to_cell_key(Coordinate(self.cursor_row, 0))
        except Exception:
            return None
        return str(row_key.value) if row_key.value is not None else None

    # ---- sorting ---------------------------------------------------------------------------

    def sort_by(self, index: int, reverse: bool = False) -> None:
        """Sort by a column's data (also one the width has hidden)."""

        def data(cells: tuple[SortableText, ...]) -> SortKey:
            return cells[0].row_sort[index]

        if self.row_count:
            self.sort(key=data, reverse=reverse)
        self._order_stale = False

    def apply_sort(self, force: bool = False) -> None:
        """Sort by the chosen column when the order may have changed (``force``: always)."""
        if self.sort_column is not None and (force or self._order_stale):
            self.sort_by(self.sort_column, self.sort_reverse)

    def next_sort(self) -> str:
        """Cycle the sort: each column ascending, then descending, then the next column."""
        if self.sort_column is None:
            self.sort_column, self.sort_reverse = 0, False
        elif not self.sort_reverse:
            self.sort_reverse = True
        else:
            self.sort_column = (self.sort_column + 1) % len(self.all_columns)
            self.sort_reverse = False
        self.apply_sort(force=True)
        name = self.all_columns[self.sort_column].name
        return f"{name} {'↓' if self.sort_reverse else '↑'}"


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
            (f" {state.upper()} ", styles.get(state, "bold")),
        )
        if updated is not None:
            seconds = int((now - updated).total_seconds())
            text.append(f"  updated {updated:%H:%M:%S}")
            if state == "stale":
                text.append(f" ({seconds}s ago)", style="bold red")
        if note:
            text.append(f"  {note}", style="dim")
        self.update(text)


class SummaryLine(Static):
    """The cluster at a glance: nodes Ready, pods Running, Flux objects Ready, warnings."""

    def show(self, summary: ClusterOverview) -> None:
        def part(label: str, good: int, total: int, word: str) -> Text:
            style = "green" if good == total else "bold yellow" if good else "bold red"
            if total == 0:
                style = "dim"
            return Text.assemble(f"{label} ", (f"{good}/{total}", style), f" {word}")

        warnings = summary.warnings_recent
        self.update(
            Text(" ").join(
                [
                    Text(""),
                    part("Nodes", summary.nodes_ready, summary.nodes_total, "Ready"),
                    Text("·", style="dim"),
                    part("Pods", summary.pods_running, summary.pods_total, "Running"),
                    Text("·", style="dim"),
                    part("Flux", summary.flux_ready, summary.flux_total, "Ready"),
                    Text("·", style="dim"),
                    Text.assemble(
                        "Warnings ",
                        (str(warnings), "bold yellow" if warnings else "green"),
                        f" in {summary.window_minutes} min",
                    ),
                ]
            )
        )
