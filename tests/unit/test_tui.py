"""cluster-tui with fake data: every key binding, live updates, degradations, snapshots."""

from __future__ import annotations

import asyncio
import copy
import io
import subprocess
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from rich.console import Console
from textual.pilot import Pilot
from textual.widgets import Static

from kubani.cluster.rows import NODE_COLUMNS, Meter
from kubani.tui.app import ClusterApp
from kubani.tui.screens import HelpScreen, LogsScreen, NodeScreen, WorkloadScreen
from kubani.tui.widgets import draw_cell, drawn_width, sparkline
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
    text = app.table(table).cell_text(key, column)
    assert text is not None, (table, key, app.table(table).row_keys())
    return text


# ---- content ----------------------------------------------------------------------------


def test_main_screen_shows_nodes_workloads_flux_and_events() -> None:
    async def check(app: ClusterApp, pilot: Pilot[None], _fake: FakeSource) -> None:
        await until(pilot, lambda: cell(app, "nodes", "nuc", "DISK") == "90%")
        assert app.table("nodes").row_keys() == {"desk", "nuc", "gpu-box"}
        await until(pilot, lambda: cell(app, "nodes", "nuc", "PATH") == "relay:fra 38ms")
        assert cell(app, "nodes", "desk", "PATH") == "direct <1ms"
        assert cell(app, "nodes", "gpu-box", "PATH") == "direct 3ms"
        assert cell(app, "nodes", "desk", "TAILSCALE IP") == "100.64.0.11"
        assert cell(app, "nodes", "gpu-box", "GPU") == "1/4"
        assert cell(app, "nodes", "desk", "CPU") == "21%"
        assert cell(app, "workloads", "Deployment:web/shop", "READY") == "2/3"
        assert cell(app, "workloads", "Deployment:web/shop", "HEALTH") == "Degraded"
        assert (
            cell(app, "flux", "kustomizations:flux-system/apps", "REASON") == "DependencyNotReady"
        )
        events = app.table("events")
        first = events.ordered_keys()[0]
        assert events.cell_text(first, "REASON") == "BackOff"  # newest first

    drive(check)


def test_watch_events_update_only_their_rows() -> None:
    async def check(app: ClusterApp, pilot: Pilot[None], fake: FakeSource) -> None:
        before = app.table("workloads").row_of("Deployment:ml/inference")
        down = node("nuc", "100.64.0.12", ready=False)
        fake.queue("nodes").put_nowait(("MODIFIED", down))
        await until(pilot, lambda: cell(app, "nodes", "nuc", "STATUS") == "NotReady")
        fake.queue("pods").put_nowait(("ADDED", pod("web", "shop", 7, "desk")))
        await until(pilot, lambda: cell(app, "workloads", "Deployment:web/shop", "READY") == "3/3")
        assert cell(app, "workloads", "Deployment:web/shop", "HEALTH") == "Healthy"
        assert app.table("workloads").row_of("Deployment:ml/inference") is before
        gone = copy.deepcopy(fake.objects["nodes"][2])
        fake.queue("nodes").put_nowait(("DELETED", gone))
        await until(pilot, lambda: "gpu-box" not in app.table("nodes").row_keys())

    drive(check)


def test_the_big_lists_wait_for_the_first_screens() -> None:
    """Pods and events (what grows with the cluster) are listed once nodes, workloads and
    Flux are in, so that the first screen never waits on them."""
    from kubani.cluster.live import LISTED_LAST, WATCHED

    async def check(app: ClusterApp, pilot: Pilot[None], fake: FakeSource) -> None:
        await until(pilot, lambda: set(fake.fetched) == set(WATCHED) - LISTED_LAST)
        await pilot.pause(0.3)
        assert not LISTED_LAST & set(fake.fetched), fake.fetched  # nodes still listing
        fake.holds["nodes"].set()
        await until(pilot, lambda: set(fake.fetched) == set(WATCHED))
        await until(pilot, lambda: app.table("workloads").row_count > 0)

    fake = FakeSource(metrics=SAMPLE_METRICS, peers=sample_peers(), stats=SAMPLE_STATS)
    fake.holds["nodes"] = asyncio.Event()
    drive(check, fake)


def test_while_pods_are_listed_a_workload_shows_what_its_status_reports() -> None:
    async def check(app: ClusterApp, pilot: Pilot[None], fake: FakeSource) -> None:
        shop = "Deployment:web/shop"
        await until(pilot, lambda: app.table("workloads").row_of(shop) is not None)
        assert cell(app, "workloads", shop, "READY") == "1/3"  # the Deployment's own count
        assert cell(app, "workloads", shop, "RESTARTS") == "-"
        fake.holds["pods"].set()
        await until(pilot, lambda: cell(app, "workloads", shop, "READY") == "2/3")
        assert cell(app, "workloads", shop, "RESTARTS") == "3"  # from the pods now

    fake = FakeSource(metrics=SAMPLE_METRICS, peers=sample_peers(), stats=SAMPLE_STATS)
    for deployment in fake.objects["deployments"]:
        deployment["status"] = {"readyReplicas": 1}
    fake.holds["pods"] = asyncio.Event()
    drive(check, fake)


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
        assert app.state.namespace == "ml"
        events = app.table("events")
        assert all(
            (events.cell_text(key, "OBJECT") or "").startswith("Pod ml/")
            for key in events.row_keys()
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
        names = app.table("nodes").ordered_keys()
        assert names == ["desk", "gpu-box", "nuc"]
        await pilot.press("s")
        names = app.table("nodes").ordered_keys()
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


@pytest.mark.parametrize("size", [(80, 24), (100, 30), (120, 40), (200, 60)])
def test_state_columns_stay_whole_and_nothing_scrolls_sideways(size: tuple[int, int]) -> None:
    """At any width the names and states (STATUS, READY, HEALTH, ...) are shown whole; from
    100 columns no table needs a horizontal scroll bar. Less important columns go first."""

    async def check(app: ClusterApp, pilot: Pilot[None], _fake: FakeSource) -> None:
        await until(pilot, lambda: app.table("flux").row_count == 3)
        await pilot.pause(0.2)
        for name in ("nodes", "workloads", "flux", "events"):
            table = app.table(name)
            for column in table.all_columns:
                if not column.keep:
                    continue
                assert column.name in table.shown_columns, (size, name, column.name)
                shown = table.column_width(column.name) or 0
                widest = max(len(table.cell_text(k, column.name) or "") for k in table.row_keys())
                assert shown >= widest, (size, name, column.name)
            if size[0] >= 100:
                assert not table.show_horizontal_scrollbar, (size, name)
                assert table.virtual_size.width <= table.scrollable_content_region.width
        if size[0] >= 200:
            assert app.table("nodes").shown_columns == tuple(c.name for c in NODE_COLUMNS)

    drive(check, snap_source(), size=size)


def test_the_summary_line_counts_the_cluster_at_a_glance() -> None:
    async def check(app: ClusterApp, pilot: Pilot[None], fake: FakeSource) -> None:
        summary = app.query_one("#summary", Static)
        expected = "Nodes 3/3 Ready · Pods 3/4 Running · Flux 2/3 Ready · Warnings 1 in 10 min"
        await until(pilot, lambda: expected in text_of(summary))
        fake.queue("nodes").put_nowait(("MODIFIED", node("nuc", "100.64.0.12", ready=False)))
        await until(pilot, lambda: "Nodes 2/3 Ready" in text_of(summary))

    drive(check)


def test_a_hot_node_stands_out_and_its_cpu_trend_is_drawn() -> None:
    cpu = NODE_COLUMNS[[c.name for c in NODE_COLUMNS].index("CPU")]
    hot = draw_cell(cpu, "94%", Meter(94.0, 100.0, (0.5, 0.94)))
    calm = draw_cell(cpu, "21%", Meter(21.0, 100.0, (0.21,)))
    assert hot.plain == "▅▅▅▅▅█ 94%" and "red" in str(hot.spans[0].style)
    assert "green" in str(calm.spans[0].style)
    # A steady value draws the same however many samples there are.
    assert sparkline([0.3] * 2) == sparkline([0.3] * 12) == "▃▃▃▃▃▃"
    gpu = NODE_COLUMNS[[c.name for c in NODE_COLUMNS].index("GPU")]
    assert draw_cell(gpu, "1/4", Meter(1.0, 4.0)).plain == "■□□□ 1/4"


def test_the_width_a_table_plans_for_is_the_width_it_draws() -> None:
    """Tables measure cells without drawing them (drawn_width): the two must agree."""
    meters = [None, Meter(94.0, 100.0, (0.5, 0.94)), Meter(3.0, 4.0), Meter(3.0, 16.0)]
    for column in NODE_COLUMNS:
        for meter in meters:
            drawn = draw_cell(column, "12.0/28.0G", meter)
            assert drawn_width(column, "12.0/28.0G", meter) == len(drawn.plain), column


def test_nodes_are_pinged_a_batch_at_a_time_and_a_silent_one_shows_no_time() -> None:
    from kubani.models.peer import TailscalePeer
    from kubani.tui.state import PING_BATCH, LiveState

    count = PING_BATCH + 4
    addresses = [f"100.64.1.{i}" for i in range(count)]
    state = LiveState(FakeSource({}), 5.0, lambda: FIXED_NOW)
    nodes = [node(f"n{i:02d}", address) for i, address in enumerate(addresses)]
    state.cache.replace("nodes", nodes, "1")
    state.peers = [
        TailscalePeer(hostname=f"n{i:02d}", dns_name="", tailscale_ips=(address,), ipv4=address,
                      os="linux", online=i != 0, last_seen=None)
        for i, address in enumerate(addresses)
    ]  # fmt: skip
    first, second, third = state.ping_batch(), state.ping_batch(), state.ping_batch()
    assert len(first) == PING_BATCH and addresses[0] not in first  # offline: not pinged
    assert sorted(first + second) == sorted(addresses[1:]) and third == first
    state.take_round_trips(first, dict.fromkeys(first, 5.0))
    assert state.rtt_ms[first[0]] == 5.0
    state.take_round_trips(first, {})  # no pong this time: no stale time shown
    assert first[0] not in state.rtt_ms


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


# The snapshots' cluster has a node running hot (gpu-box: 6.6 of 7 allocatable CPUs, 94%).
HOT_METRICS = {**SAMPLE_METRICS, "gpu-box": {"cpu": "6600m", "memory": "12Gi"}}


def snap_source() -> FakeSource:
    return FakeSource(metrics=HOT_METRICS, peers=sample_peers(), stats=SAMPLE_STATS)


def snap_app() -> ClusterApp:
    app, _ = make_app(snap_source())
    return app


async def _loaded(pilot: Pilot[None]) -> None:
    app = pilot.app
    assert isinstance(app, ClusterApp)
    await until(pilot, lambda: app.table("nodes").row_count == 3 and app.state.stats != {})
    await pilot.pause(0.3)


async def _node_details(pilot: Pilot[None]) -> None:
    await _loaded(pilot)
    await pilot.press("down", "enter")
    await pilot.pause(0.3)


def test_snapshot_main_120x40(snap_compare: Any) -> None:
    assert snap_compare(snap_app(), terminal_size=(120, 40), run_before=_loaded)


def test_snapshot_main_80x24(snap_compare: Any) -> None:
    assert snap_compare(snap_app(), terminal_size=(80, 24), run_before=_loaded)


def test_snapshot_main_200x60(snap_compare: Any) -> None:
    assert snap_compare(snap_app(), terminal_size=(200, 60), run_before=_loaded)


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


def test_a_node_its_owner_holds_reads_as_held_with_since_and_why() -> None:
    from kubani.vocabulary import GUARD_HELD_REASON, GUARD_HELD_SINCE

    async def check(app: ClusterApp, pilot: Pilot[None], fake: FakeSource) -> None:
        held = copy.deepcopy(fake.objects["nodes"][0])
        held["metadata"].setdefault("annotations", {}).update(
            {GUARD_HELD_SINCE: "2026-12-01T09:30:00+01:00", GUARD_HELD_REASON: "alice on seat0"}
        )
        fake.queue("nodes").put_nowait(("MODIFIED", held))
        await until(pilot, lambda: cell(app, "nodes", "desk", "STATUS") == "Ready,Held")
        await pilot.press("enter")
        await pilot.pause(0.1)
        body = text_of(app.screen.query_one("#detail-body", Static))
        assert "held by its owner since 2026-12-01T09:30:00+01:00: alice on seat0" in body

    drive(check)


def test_hostile_api_text_is_shown_as_text_on_every_screen() -> None:
    hostile = "disk [/] pressure [bold]now \x1bc\x1b]0;owned\x07"
    objects = FakeSource().objects
    objects["nodes"][0]["status"]["conditions"][0]["message"] = hostile
    source = FakeSource(objects=objects, metrics=SAMPLE_METRICS, peers=sample_peers())

    async def check(app: ClusterApp, pilot: Pilot[None], fake: FakeSource) -> None:
        fake.logs["web/shop-5d8f7-00000"] = "\x1b[32mINFO\x1b[0m up [/]\x1bc"
        await pilot.press("enter")
        await pilot.pause(0.1)
        body = text_of(app.screen.query_one("#detail-body", Static))
        assert "disk [/] pressure [bold]now \\x1bc\\x1b]0;owned\\x07" in body
        await pilot.press("escape", "tab")
        app.table("workloads").move_cursor(row=0)
        await pilot.press("l")
        await pilot.pause(0.2)
        log = app.screen.query_one("#logs")

        def shown() -> list[str]:
            return ["".join(segment.text for segment in line) for line in log.lines]

        await until(pilot, lambda: "INFO up [/]\\x1bc" in shown())
        assert not any("\x1b" in segment.text for line in log.lines for segment in line)

    drive(check, source)
