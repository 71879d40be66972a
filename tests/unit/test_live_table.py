"""The live view's table on its own: a change draws that row alone, the cursor follows its row
through sorts and removals and stays in view, Enter and a click on the cursor choose a row."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from rich.text import Text
from textual.app import App, ComposeResult
from textual.pilot import Pilot

from kubani.cluster.rows import Column, Meter, TableRow
from kubani.tui import table as table_module
from kubani.tui.table import LiveTable

COLUMNS = (Column("NAME", keep=True), Column("STATE", keep=True), Column("NOTE", flexible=True))


def row(name: str, state: str = "Ready", order: int = 0) -> TableRow:
    return TableRow((name, state, f"note of {name}"), (name, order, name))


class TableApp(App[None]):
    def __init__(self) -> None:
        super().__init__()
        self.chosen: list[str] = []

    def compose(self) -> ComposeResult:
        yield LiveTable(COLUMNS, id="t")

    @property
    def table(self) -> LiveTable:
        return self.query_one(LiveTable)

    def on_live_table_row_chosen(self, event: LiveTable.RowChosen) -> None:
        self.chosen.append(event.key)


def drive(check: Callable[[TableApp, Pilot[None]], Awaitable[None]], rows: int = 200) -> None:
    async def main() -> None:
        app = TableApp()
        async with app.run_test(size=(60, 20)) as pilot:
            app.table.focus()
            for i in range(rows):
                app.table.upsert(f"n{i:03}", row(f"n{i:03}", order=i))
            await pilot.pause()
            await check(app, pilot)

    asyncio.run(main())


def test_a_change_to_one_row_draws_that_row_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    drawn: list[str] = []
    real = table_module.draw_cell

    def counting(column: Column, text: str, meter: Meter | None) -> Text:
        drawn.append(text)
        return real(column, text, meter)

    async def check(app: TableApp, pilot: Pilot[None]) -> None:
        await pilot.pause()
        drawn.clear()
        app.table.upsert("n003", row("n003", "Stale", order=3))  # as wide: no new layout
        await pilot.pause()
        assert set(drawn) == {"n003", "Stale", "note of n003"}, drawn
        drawn.clear()
        app.table.upsert("n150", row("n150", "Stale", order=150))  # off screen
        await pilot.pause()
        assert drawn == []

    monkeypatch.setattr(table_module, "draw_cell", counting)
    drive(check)


def test_the_cursor_stays_in_view_and_on_its_row() -> None:
    async def check(app: TableApp, pilot: Pilot[None]) -> None:
        table = app.table
        for _ in range(30):
            await pilot.press("down")
        assert table.selected_key() == "n030" and table.cursor_row == 30
        visible = table.scrollable_content_region.height - 1
        assert table.scroll_y <= 30 < table.scroll_y + visible
        table.sort_column, table.sort_reverse = 1, True
        table.apply_sort(force=True)
        assert table.selected_key() == "n030" and table.cursor_row == 199 - 30
        table.drop("n199")  # above the cursor now: the cursor keeps its row
        assert table.selected_key() == "n030" and table.cursor_row == 198 - 30
        await pilot.press("end")
        assert table.selected_key() == "n000"
        assert table.scroll_y == table.max_scroll_y
        await pilot.press("home", "pagedown")
        assert table.cursor_row == visible
        table.drop(table.selected_key() or "")  # the cursor's row gone: the next one
        assert table.cursor_row == visible

    drive(check)


def test_enter_and_a_click_on_the_cursor_choose_a_row() -> None:
    async def check(app: TableApp, pilot: Pilot[None]) -> None:
        await pilot.press("down", "enter")
        await pilot.pause()
        assert app.chosen == ["n001"]
        await pilot.click(LiveTable, offset=(3, 4))  # below the header and rows 0-2: row 3
        await pilot.pause()
        assert app.table.selected_key() == "n003" and app.chosen == ["n001"]
        await pilot.click(LiveTable, offset=(3, 4))
        await pilot.pause()
        assert app.chosen == ["n001", "n003"]

    drive(check, rows=10)


def test_narrow_tables_cut_the_flexible_column_and_never_scroll_sideways() -> None:
    async def check(app: TableApp, pilot: Pilot[None]) -> None:
        table = app.table
        table.upsert("long", TableRow(("long", "Ready", "x" * 200), ("long", 0, "")))
        await pilot.pause()
        await pilot.pause()
        assert table.virtual_size.width <= table.scrollable_content_region.width
        assert table.column_width("NAME") == 4 and table.column_width("STATE") == 5

    drive(check, rows=3)
