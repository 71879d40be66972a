"""The live view's table: rows kept by key, drawn a line at a time.

Only the lines on screen are drawn, each row once per change of that row (its line is kept
until the row, the columns' layout, the cursor on it or the styles change), so a change to
one row of a thousand costs one row's drawing, and a big table costs its visible rows. The
columns fit the width: the least important go first when it is narrow, and a flexible column
takes what the others leave."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Region, Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from kubani.cluster.rows import Column, TableRow
from kubani.tui.widgets import MIN_FLEXIBLE, draw_cell, drawn_width

PADDING = 1  # blank cells either side of a column
HEADER_LINES = 1


class LiveTable(ScrollView, can_focus=True):
    """Rows added, updated or removed by key (never cleared and refilled); the cursor is a
    row and stays on its row when the order changes."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "choose", "Details", show=False),
        Binding("up", "cursor(-1)", "Up", show=False),
        Binding("down", "cursor(1)", "Down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home", "cursor_to(0)", "First", show=False),
        Binding("end", "cursor_to(-1)", "Last", show=False),
    ]
    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "live-table--header",
        "live-table--cursor",
        "live-table--odd-row",
    }

    class RowChosen(Message):
        """Enter, or a click on the row under the cursor."""

        def __init__(self, table: LiveTable, key: str) -> None:
            super().__init__()
            self.table = table
            self.key = key

        @property
        def control(self) -> LiveTable:
            return self.table

    def __init__(self, columns: Sequence[Column], *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.all_columns = tuple(columns)
        self._index = {column.name: i for i, column in enumerate(self.all_columns)}
        self._shown: tuple[int, ...] = tuple(range(len(columns)))
        self._flexible_width: int | None = None
        self._rows: dict[str, TableRow] = {}
        self._order: list[str] = []
        # The widest drawn cell of each column so far (grows only: measuring every row again
        # on each change would be quadratic on big tables).
        self._widest = [cell_len(column.name) for column in self.all_columns]
        self._refit_pending = False
        self._cursor = 0
        self._cursor_key: str | None = None
        self.sort_column: int | None = None
        self.sort_reverse = False
        # Rows were added, or a sort key of the sorted column changed, since the last sort:
        # a change elsewhere in a row leaves the order as it is (no sort of every row).
        self._order_stale = False
        # What a drawn line depends on besides its row: the layout and the styles.
        self._layout_epoch = 0
        self._style_epoch = 0
        self._lines: dict[str, tuple[TableRow, tuple[int, int, bool, bool], Strip]] = {}
        self._header: tuple[tuple[int, int], Strip] | None = None
        self._base_style = Style()

    # ---- columns ---------------------------------------------------------------------------

    @property
    def shown_columns(self) -> tuple[str, ...]:
        return tuple(self.all_columns[i].name for i in self._shown)

    def column_width(self, name: str) -> int | None:
        """The width a shown column's cells get (padding aside); None when it is hidden."""
        index = self._index[name]
        return self._width(index) if index in self._shown else None

    def _width(self, index: int) -> int:
        if self.all_columns[index].flexible and self._flexible_width is not None:
            return self._flexible_width
        return self._widest[index]

    @property
    def row_count(self) -> int:
        return len(self._order)

    def on_mount(self) -> None:
        self._resize_virtual()

    def on_resize(self, event: events.Resize) -> None:
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
        if self.row_count + HEADER_LINES > region.height and not self.show_vertical_scrollbar:
            available -= self.styles.scrollbar_size_vertical  # the scroll bar about to come
        padding = 2 * PADDING
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
            self._relayout()

    def _relayout(self) -> None:
        self._layout_epoch += 1
        self._resize_virtual()
        self.refresh()

    def _resize_virtual(self) -> None:
        width = sum(self._width(i) + 2 * PADDING for i in self._shown)
        self.virtual_size = Size(width, self.row_count + HEADER_LINES)

    def _refit_soon(self) -> None:
        if not self._refit_pending:
            self._refit_pending = True
            self.call_after_refresh(self.fit)

    # ---- rows ------------------------------------------------------------------------------

    def upsert(self, key: str, row: TableRow) -> bool:
        """Add or update one row; True when anything changed."""
        old = self._rows.get(key)
        if old == row:
            return False
        self._rows[key] = row
        if self._measure(row):
            # Wider cells: every line is drawn again (rare: widths only grow).
            self._layout_epoch += 1
            self._resize_virtual()
            self._refit_soon()
        if old is None:
            self._order.append(key)
            self._order_stale = self.sort_column is not None
            self._resize_virtual()
            if self.row_count == 1:
                self._cursor_key = key
        elif (
            self.sort_column is not None
            and old.sort[self.sort_column] != row.sort[self.sort_column]
        ):
            self._order_stale = True
        self.refresh()
        return True

    def drop(self, key: str) -> bool:
        return self._drop_all([key])

    def _drop_all(self, keys: list[str]) -> bool:
        """Remove these rows with one pass over the order (a filter change may remove
        thousands: one at a time would be quadratic)."""
        gone = {key for key in keys if key in self._rows}
        if not gone:
            return False
        for key in gone:
            del self._rows[key]
            self._lines.pop(key, None)
        self._order = [key for key in self._order if key not in gone]
        if self._cursor_key in gone:
            self._cursor = min(self._cursor, self.row_count - 1) if self._order else 0
            self._cursor_key = self._order[self._cursor] if self._order else None
        else:
            self._follow_cursor_key()
        self._resize_virtual()
        self.refresh()
        return True

    def sync(self, wanted: dict[str, TableRow]) -> bool:
        """Make the table hold exactly ``wanted`` (after a list, or a filter change)."""
        changed = self._drop_all([k for k in self._rows if k not in wanted])
        for key, row in wanted.items():
            changed |= self.upsert(key, row)
        return changed

    def row_keys(self) -> set[str]:
        return set(self._rows)

    def ordered_keys(self) -> list[str]:
        """The rows' keys top to bottom, as drawn."""
        return list(self._order)

    def row_of(self, key: str) -> TableRow | None:
        return self._rows.get(key)

    def cell_text(self, key: str, column: str) -> str | None:
        """The text of a row's cell (shown or not), by column name."""
        row = self._rows.get(key)
        return None if row is None else row.cells[self._index[column]]

    # ---- the cursor ------------------------------------------------------------------------

    @property
    def cursor_row(self) -> int:
        return self._cursor

    def selected_key(self) -> str | None:
        return self._cursor_key if self._cursor_key in self._rows else None

    def move_cursor(self, row: int) -> None:
        if not self._order:
            return
        previous = self._cursor_key
        self._cursor = max(0, min(row, self.row_count - 1))
        self._cursor_key = self._order[self._cursor]
        if previous != self._cursor_key:
            self.refresh()
        self._scroll_to_cursor()

    def _follow_cursor_key(self) -> None:
        """After the order changed: the cursor's index is its row's new place."""
        if self._cursor_key is not None and self._cursor_key in self._rows:
            self._cursor = self._order.index(self._cursor_key)

    def _scroll_to_cursor(self) -> None:
        visible = max(1, self.scrollable_content_region.height - HEADER_LINES)
        top = round(self.scroll_y)
        if self._cursor < top:
            self.scroll_to(y=self._cursor, animate=False, immediate=True)
        elif self._cursor >= top + visible:
            self.scroll_to(y=self._cursor - visible + 1, animate=False, immediate=True)

    def action_cursor(self, step: int) -> None:
        self.move_cursor(self._cursor + step)

    def action_page(self, direction: int) -> None:
        visible = max(1, self.scrollable_content_region.height - HEADER_LINES)
        self.move_cursor(self._cursor + direction * visible)

    def action_cursor_to(self, row: int) -> None:
        self.move_cursor(row if row >= 0 else self.row_count - 1)

    def action_choose(self) -> None:
        key = self.selected_key()
        if key is not None:
            self.post_message(self.RowChosen(self, key))

    async def _on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None or offset.y < HEADER_LINES:
            return
        row = round(self.scroll_y) + offset.y - HEADER_LINES
        if row >= self.row_count:
            return
        if row == self._cursor:
            self.action_choose()
        else:
            self.move_cursor(row)

    # ---- sorting ---------------------------------------------------------------------------

    def sort_by(self, index: int, reverse: bool = False) -> None:
        """Sort by a column's data (also one the width has hidden)."""
        rows = self._rows
        self._order.sort(key=lambda key: rows[key].sort[index], reverse=reverse)
        self._order_stale = False
        self._follow_cursor_key()
        self.refresh()

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

    # ---- drawing ---------------------------------------------------------------------------

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._style_epoch += 1  # focus, theme or CSS changed: lines are drawn again

    def render_lines(self, crop: Region) -> list[Strip]:
        # The widget's style walks its ancestors: once per paint, not once per line.
        self._base_style = self.rich_style
        return super().render_lines(crop)

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.size.width
        if y < HEADER_LINES:
            strip = self._header_line()
        else:
            index = scroll_y + y - HEADER_LINES
            if index >= self.row_count:
                return Strip.blank(width, self._base_style)
            strip = self._row_line(index)
        return strip.crop_extend(scroll_x, scroll_x + width, self._base_style)

    def _header_line(self) -> Strip:
        marker = (self._layout_epoch, self._style_epoch)
        if self._header is not None and self._header[0] == marker:
            return self._header[1]
        style = self._base_style + self.get_component_rich_style("live-table--header")
        line = Text(style=style, no_wrap=True, end="")
        for index in self._shown:
            label = Text(self.all_columns[index].name)
            line.append(self._padded(label, self._width(index)))
        strip = Strip(line.render(self.app.console), line.cell_len)
        self._header = (marker, strip)
        return strip

    def _row_line(self, index: int) -> Strip:
        key = self._order[index]
        row = self._rows[key]
        marker = (self._layout_epoch, self._style_epoch, index % 2 == 1, index == self._cursor)
        kept = self._lines.get(key)
        if kept is not None and kept[0] is row and kept[1] == marker:
            return kept[2]
        style = self._base_style
        if index % 2 == 1:
            style += self.get_component_rich_style("live-table--odd-row")
        line = Text(style=style, no_wrap=True, end="")
        for column in self._shown:
            cell = draw_cell(self.all_columns[column], row.cells[column], row.meter(column))
            line.append(self._padded(cell, self._width(column)))
        segments = list(line.render(self.app.console))
        if index == self._cursor:
            cursor = self.get_component_rich_style("live-table--cursor")
            segments = list(Segment.apply_style(segments, post_style=cursor))
        strip = Strip(segments, line.cell_len)
        self._lines[key] = (row, marker, strip)
        return strip

    @staticmethod
    def _padded(cell: Text, width: int) -> Text:
        cell.truncate(width, overflow="ellipsis", pad=True)
        return Text(" " * PADDING, end="") + cell + Text(" " * PADDING)
