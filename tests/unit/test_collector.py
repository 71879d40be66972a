"""The collector's pauses: nested blocks, the start-up pause and the console script."""

from __future__ import annotations

import gc
import time
from collections.abc import Iterator
from importlib.metadata import entry_points

import pytest

from kubani import collector
from kubani.cli import start


@pytest.fixture(autouse=True)
def collector_restored() -> Iterator[None]:
    was_enabled = gc.isenabled()
    gc.enable()
    yield
    assert collector._pauses.open == 0, "a pause was left open"
    (gc.enable if was_enabled else gc.disable)()


def wait_until_enabled(seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not gc.isenabled():
        assert time.monotonic() < deadline, "the collector was never resumed"
        time.sleep(0.005)


def test_a_block_pauses_and_resumes() -> None:
    with collector.paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_nested_blocks_resume_when_the_last_ends() -> None:
    with collector.paused():
        with collector.paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()


def test_a_collector_that_was_off_stays_off() -> None:
    gc.disable()
    with collector.paused():
        pass
    assert not gc.isenabled()


def test_a_block_ending_by_an_error_resumes() -> None:
    with pytest.raises(RuntimeError), collector.paused():
        raise RuntimeError("boom")
    assert gc.isenabled()


def test_what_survives_a_pause_is_frozen() -> None:
    gc.unfreeze()
    with collector.paused():
        kept = [[] for _ in range(100)]
    assert gc.get_freeze_count() >= len(kept)
    gc.unfreeze()


def test_the_timed_pause_ends_by_itself() -> None:
    timer = collector.pause_for(0.05)
    assert not gc.isenabled()
    timer.join(5)
    assert gc.isenabled()


def test_a_block_open_when_the_timed_pause_ends_keeps_the_collector_paused() -> None:
    timer = collector.pause_for(0.05)
    with collector.paused():
        timer.join(5)
        assert not gc.isenabled()
    assert gc.isenabled()


def test_a_block_may_outlive_the_timed_pause_it_began_in() -> None:
    with collector.paused():
        timer = collector.pause_for(0.01)
    assert not gc.isenabled()
    timer.join(5)
    assert gc.isenabled()


def test_the_console_script_starts_the_cli_with_the_collector_paused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import kubani.cli.main

    seen: list[bool] = []
    left: list[str | int | None] = []
    monkeypatch.setattr(kubani.cli.main, "run", lambda: seen.append(gc.isenabled()))
    monkeypatch.setattr(start, "STARTUP_PAUSE_S", 0.05)
    monkeypatch.setattr(start, "leave", left.append)
    start.run()
    assert seen == [False]
    assert left == [None]
    wait_until_enabled()


def test_the_installed_console_script_is_the_one_that_pauses() -> None:
    (script,) = entry_points(group="console_scripts", name="cluster-mgr")
    assert script.value == "kubani.cli.start:run"
