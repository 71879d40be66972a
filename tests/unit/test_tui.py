"""cluster-tui with fake data: every key binding, live updates, degradations, snapshots."""

from __future__ import annotations

import asyncio
import copy
import io
import subprocess
import time
from collections.abc import Awaitable, Callable
from typing import Any

from rich.console import Console
from textual.pilot import Pilot
from textual.widgets import Static

from kubani.tui.app import ClusterApp
from kubani.tui.screens import HelpScreen, LogsScreen, NodeScreen, WorkloadScreen
from tests.conftest import BIN
from tests.tui_fakes import (
    FIXED_NOW,
    SAMPLE_METRICS,
    SAMPLE_STATS,
    FakeSource,
    node,
    pod,
    sample_peers,
)

Scenario = Callable[[ClusterApp, Pilot[None], FakeSource], Awaitable[None]]


def make_app(source: FakeSource | None = None) -> tuple[ClusterApp, FakeSource]:
    source = source or FakeSource(metrics=SAMPLE_METRICS, peers=sample_peers(), stats=SAMPLE_STATS)
    return ClusterApp(source, refresh_s=0.2, clock=lambda: FIXED_NOW), source


def drive(
    scenario: Scenario, source: FakeSource | None = None, size: tuple[int, int] = (120, 40)
) -> None:
    app, fake = make_app(source)

    async def main() -> None:
        async with app.run_test(size=size) as pilot:
            await settle(pilot, app)
            await scenario(app, pilot, fake)

    asyncio.run(main())


async def settle(pilot: Pilot[None], app: ClusterApp, seconds: float = 3.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        await pilot.pause(0.05)
        if app.table("nodes").row_count and app.table("workloads").row_count:
            return


async def until(pilot: Pilot[None], check: Callable[[], bool], seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        await pilot.pause(0.05)
    raise AssertionError("condition not met in time")


def text_of(widget: Static) -> str:
    """What a Static shows, as plain text (its content may be any Rich renderable)."""
    console = Console(width=200, record=True, file=io.StringIO())
    console.print(widget.content)
    return console.export_text()


def cell(app: ClusterApp, table: str, key: str, column: str) -> str:
    row = app.table(table).row_of(key)
    assert row is not None, (table, key, app.table(table).row_keys())
    names = {"nodes": app.table("nodes")._column_names}
    columns = names.get(table) or app.table(table)._column_names
    return row[columns.index(column)]


# ---- content ----------------------------------------------------------------------------


def test_main_screen_shows_nodes_workloads_flux_and_events() -> None:
    async def check(app: ClusterApp, pilot: Pilot[None], _fake: FakeSource) -> None:
        await until(pilot, lambda: cell(app, "nodes", "nuc", "DISK") == "90%")
        assert app.table("nodes").row_keys() == {"desk", "nuc", "gpu-box"}
        assert cell(app, "nodes", "nuc", "PATH") == "relay:fra"
        assert cell(app, "nodes", "desk", "TAILSCALE IP") == "100.64.0.11"
        assert cell(app, "nodes", "gpu-box", "GPU") == "1/4"
        assert cell(app, "nodes", "desk", "CPU") == "21%"
        assert cell(app, "workloads", "Deployment:web/shop", "READY") == "2/3"
        assert cell(app, "workloads", "Deployment:web/shop", "HEALTH") == "Degraded"
        assert (
            cell(app, "flux", "kustomizations:flux-system/apps", "REASON") == "DependencyNotReady"
        )
        events = app.table("events")
        first = events.get_row_at(0)
        assert first[2].plain == "BackOff"  # newest first

    drive(check)


def test_watch_events_update_only_their_rows() -> None:
    async def check(app: ClusterApp, pilot: Pilot[None], fake: FakeSource) -> None:
        before = app.table("workloads").get_row("Deployment:ml/inference")
        down = node("nuc", "100.64.0.12", ready=False)
        fake.queue("nodes").put_nowait(("MODIFIED", down))
        await until(pilot, lambda: cell(app, "nodes", "nuc", "STATUS") == "NotReady")
        fake.queue("pods").put_nowait(("ADDED", pod("web", "shop", 7, "desk")))
        await until(pilot, lambda: cell(app, "workloads", "Deployment:web/shop", "READY") == "3/3")
        assert cell(app, "workloads", "Deployment:web/shop", "HEALTH") == "Healthy"
        assert app.table("workloads").get_row("Deployment:ml/inference") == before
        gone = copy.deepcopy(fake.objects["nodes"][2])
        fake.queue("nodes").put_nowait(("DELETED", gone))
        await until(pilot, lambda: "gpu-box" not in app.table("nodes").row_keys())

    drive(check)


def test_a_410_relists_that_kind_without_going_stale() -> None:
    async def check(app: ClusterApp, pilot: Pilot[None], fake: FakeSource) -> None:
        lists = fake.lists
        fake.objects["nodes"].append(node("late", "100.64.0.15"))
        fake.queue("nodes").put_nowait(("GONE", {}))
        await until(pilot, lambda: "late" in app.table("nodes").row_keys())
        assert fake.lists == lists + 1 and app.connection == "live"

    drive(check)


# ---- keys -------------------------------------------------------------------------------


def test_q_quits() -> None:
    async def check(app: ClusterApp, pilot: Pilot[None], _fake: FakeSource) -> None:
        await pilot.press("q")
        await pilot.pause(0.1)
        assert app.return_code == 0 or not app.is_running

    drive(check)


def test_r_lists_everything_again() -> None:
    async def check(app: ClusterApp, pilot: Pilot[None], fake: FakeSource) -> None:
        lists = fake.lists
        fake.objects["nodes"].append(node("spare", "100.64.0.14"))
        await pilot.press("r")
        await until(pilot, lambda: "spare" in app.table("nodes").row_keys())
        assert fake.lists > lists

    drive(check)


def test_slash_filters_every_table() -> None:
    async def check(app: ClusterApp, pilot: Pilot[None], _fake: FakeSource) -> None:
        await pilot.press("slash")
        await pilot.press(*"gpu", "enter")
        await until(pilot, lambda: app.table("nodes").row_keys() == {"gpu-box"})
        assert app.table("workloads").row_count == 0
        await pilot.press("slash", "ctrl+u", "enter")
        await until(pilot, lambda: len(app.table("nodes").row_keys()) == 3)

    drive(check)


def test_n_shows_one_namespace() -> None:
    async def check(app: ClusterApp, pilot: Pilot[None], _fake: FakeSource) -> None:
        await pilot.press("n")
        await pilot.pause(0.1)
        await pilot.press("down", "enter")  # (all), ml, web -> ml
        await until(pilot, lambda: app.table("workloads").row_keys() == {"Deployment:ml/inference"})
        assert app.namespace == "ml"
        assert all(
            row[3].startswith("Pod ml/")
            for row in map(app.table("events").row_of, app.table("events").row_keys())
            if row
        )

    drive(check)


def test_tab_moves_between_panes() -> None:
    async def check(app: ClusterApp, pilot: Pilot[None], _fake: FakeSource) -> None:
        seen = []
        for _ in range(4):
            await pilot.press("tab")
            seen.append(app.focused.id if app.focused else None)
        assert seen == ["workloads", "flux", "events", "nodes"]

    drive(check)


def test_enter_opens_the_node_details() -> None:
    async def check(app: ClusterApp, pilot: Pilot[None], _fake: FakeSource) -> None:
        await pilot.press("enter")
        await pilot.pause(0.1)
        screen = app.screen
        assert isinstance(screen, NodeScreen) and screen.node_name == "desk"
        body = text_of(screen.query_one("#detail-body", Static))
        assert "Conditions" in body and "Capacity and allocatable" in body
        assert "node-role.kubernetes.io/control-plane" in body and "shop-5d8f7-00001" in body
        await pilot.press("escape")
        assert not isinstance(app.screen, NodeScreen)

    drive(check)


def test_d_describes_a_workload_and_l_shows_logs() -> None:
    async def check(app: ClusterApp, pilot: Pilot[None], fake: FakeSource) -> None:
        fake.logs["web/shop-5d8f7-00000"] = "listening on :8080\nGET / 200"
        await pilot.press("tab")
        app.table("workloads").move_cursor(row=0)
        await pilot.press("d")
        await pilot.pause(0.1)
        assert isinstance(app.screen, WorkloadScreen)
        body = text_of(app.screen.query_one("#detail-body", Static))
        assert "Pods (2/3 ready)" in body and "BackOff" in body
        await pilot.press("escape", "l")
        await pilot.pause(0.2)
        assert isinstance(app.screen, LogsScreen)
        log = app.screen.query_one("#logs")
        await until(pilot, lambda: any("GET / 200" in str(line) for line in log.lines))

    drive(check)


def test_s_sorts_the_focused_table() -> None:
    async def check(app: ClusterApp, pilot: Pilot[None], _fake: FakeSource) -> None:
        await pilot.press("s")
        names = [app.table("nodes").get_row_at(i)[0].plain for i in range(3)]
        assert names == ["desk", "gpu-box", "nuc"]
        await pilot.press("s")
        names = [app.table("nodes").get_row_at(i)[0].plain for i in range(3)]
        assert names == ["nuc", "gpu-box", "desk"]

    drive(check)


def test_question_mark_lists_every_binding() -> None:
    async def check(app: ClusterApp, pilot: Pilot[None], _fake: FakeSource) -> None:
        await pilot.press("question_mark")
        await pilot.pause(0.1)
        assert isinstance(app.screen, HelpScreen)
        text = text_of(app.screen.query_one(Static))
        for key in ("q", "r", "/", "n", "Tab", "Enter", "l", "d", "s", "?"):
            assert f"│ {key} " in text or f"┃ {key} " in text, key
        await pilot.press("escape")

    drive(check)


# ---- degradations -------------------------------------------------------------------------


def test_without_metrics_server_cpu_is_na() -> None:
    async def check(app: ClusterApp, pilot: Pilot[None], _fake: FakeSource) -> None:
        await until(pilot, lambda: cell(app, "nodes", "desk", "CPU") == "n/a")
        assert cell(app, "nodes", "desk", "MEMORY").startswith("n/a/")

    drive(check, FakeSource(metrics=None, peers=sample_peers()))


def test_api_loss_keeps_the_last_state_marks_it_stale_and_recovers() -> None:
    async def check(app: ClusterApp, pilot: Pilot[None], fake: FakeSource) -> None:
        assert app.connection == "live"
        fake.down = True
        fake.queue("nodes").put_nowait(("FAIL", {}))
        await until(pilot, lambda: app.connection == "stale")
        assert app.table("nodes").row_keys() == {"desk", "nuc", "gpu-box"}  # last state kept
        status = text_of(app.query_one("#status", Static))
        assert "STALE" in status and "retrying" in status
        fake.down = False
        await until(pilot, lambda: app.connection == "live", seconds=8)

    drive(check)


def test_a_too_small_terminal_says_what_it_needs() -> None:
    async def check(app: ClusterApp, pilot: Pilot[None], _fake: FakeSource) -> None:
        message = app.query_one("#too-small", Static)
        assert message.display and "at least 80x24" in text_of(message)
        assert not app.query_one("#main").display

    drive(check, size=(60, 20))


# ---- snapshots (fixed data, fixed clock) ----------------------------------------------------


def snap_app() -> ClusterApp:
    app, _ = make_app()
    return app


async def _loaded(pilot: Pilot[None]) -> None:
    app = pilot.app
    assert isinstance(app, ClusterApp)
    await until(pilot, lambda: app.table("nodes").row_count == 3 and app.stats != {})
    await pilot.pause(0.3)


async def _node_details(pilot: Pilot[None]) -> None:
    await _loaded(pilot)
    await pilot.press("down", "enter")
    await pilot.pause(0.3)


def test_snapshot_main_120x40(snap_compare: Any) -> None:
    assert snap_compare(snap_app(), terminal_size=(120, 40), run_before=_loaded)


def test_snapshot_main_80x24(snap_compare: Any) -> None:
    assert snap_compare(snap_app(), terminal_size=(80, 24), run_before=_loaded)


def test_snapshot_node_details_120x40(snap_compare: Any) -> None:
    assert snap_compare(snap_app(), terminal_size=(120, 40), run_before=_node_details)


def test_snapshot_node_details_80x24(snap_compare: Any) -> None:
    assert snap_compare(snap_app(), terminal_size=(80, 24), run_before=_node_details)


def test_help_starts_fast_without_textual() -> None:
    result = subprocess.run(
        [str(BIN / "cluster-tui"), "--help"], capture_output=True, text=True, check=False
    )
    assert (
        result.returncode == 0 and "--refresh" in result.stdout and "--inventory" in result.stdout
    )
    probe = subprocess.run(
        [str(BIN / "python"), "-c",
         "import sys, kubani.tui.main as m; sys.argv=['cluster-tui','--help']\n"
         "try:\n m.run()\nexcept SystemExit: pass\nprint('textual' in sys.modules)"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert probe.stdout.strip().endswith("False")
