"""Showing a playbook run: a live Rich view for people, JSON lines for scripts."""

from __future__ import annotations

import json
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from kubani.cli.output import console

if TYPE_CHECKING:
    from rich.console import RenderableType

    from kubani.ansible.events import PlaybookEvent
    from kubani.ansible.progress import RunState
    from kubani.ansible.runner import PlaybookRequest, PlaybookRun

_STATUS_STYLE = {"ok": "green", "failed": "bold red", "unreachable": "bold red", "running": "cyan"}


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}:{secs:02d}"


def live_view(state: RunState) -> RenderableType:
    from rich.console import Group
    from rich.progress_bar import ProgressBar
    from rich.table import Table
    from rich.text import Text

    table = Table(box=None, pad_edge=False, show_edge=False, expand=False)
    for column in ("host", "status", "ok", "changed", "failed", "current task"):
        numeric = column in ("ok", "changed", "failed")
        table.add_column(column, justify="right" if numeric else "left", no_wrap=True)
    for host in sorted(state.hosts.values(), key=lambda h: h.name):
        table.add_row(
            host.name,
            Text(host.status, style=_STATUS_STYLE[host.status]),
            str(host.ok),
            str(host.changed),
            str(host.failed),
            Text(host.task, overflow="ellipsis"),
        )
    done = min(state.plays_started, state.total_plays)
    header = Text.assemble(
        (f"{state.playbook}", "bold"),
        f"  play {done}/{state.total_plays}: {state.play}  ",
        (_clock(state.elapsed), "dim"),
    )
    bar = Table.grid(padding=(0, 1))
    bar.add_row(
        ProgressBar(total=state.total_plays, completed=max(done - 1, 0), width=40),
        Text(f"{max(done - 1, 0)}/{state.total_plays} plays done", style="dim"),
    )
    return Group(header, bar, table)


def summary_table(state: RunState) -> RenderableType:
    from rich.table import Table
    from rich.text import Text

    table = Table(title=f"{state.playbook}: {_clock(state.elapsed)}", title_justify="left")
    for column in ("host", "result", "ok", "changed", "failed", "skipped"):
        table.add_column(column, justify="left" if column in ("host", "result") else "right")
    for host in sorted(state.hosts.values(), key=lambda h: h.name):
        status = host.status if state.finished else ("interrupted" if state.interrupted else "?")
        table.add_row(
            host.name,
            Text(status, style=_STATUS_STYLE.get(status, "yellow")),
            str(host.ok),
            str(host.changed),
            str(host.failed),
            str(host.skipped),
        )
    return table


def print_failures(state: RunState) -> None:
    from rich.markup import escape

    from kubani.printable import printable

    err = console(stderr=True)
    for failure in state.failures:
        where = f"{failure.role} : {failure.task}" if failure.role else failure.task
        err.print(f"[bold red]✗ {escape(failure.host)}[/] failed at [bold]{escape(where)}[/]")
        err.print(f"  {escape(printable(failure.message))}", highlight=False)
        if failure.hint:
            err.print(f"  [yellow]fix:[/] {escape(failure.hint)}", highlight=False)


@contextmanager
def _sigint_cancels(cancel: threading.Event) -> Iterator[None]:
    """The first Ctrl-C stops the run (Ansible is interrupted as a terminal would); the run
    then ends cleanly."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(_signum: int, _frame: Any) -> None:
        cancel.set()

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def execute(
    request: PlaybookRequest,
    json_lines: bool,
    observe: Callable[[PlaybookEvent], None] | None = None,
) -> PlaybookRun:
    """Run the playbook, showing progress; returns the run (the caller decides the exit).
    ``observe`` sees every event too (an operation reading the run's reports)."""
    from kubani.ansible.runner import run_playbook as run_only

    def run_playbook(
        request: PlaybookRequest,
        show: Callable[[PlaybookEvent, RunState], None],
        cancel: threading.Event,
    ) -> PlaybookRun:
        if observe is None:
            return run_only(request, show, cancel)

        def both(event: PlaybookEvent, state: RunState) -> None:
            observe(event)
            show(event, state)

        return run_only(request, both, cancel)

    cancel = threading.Event()
    if json_lines:  # (no Rich: a script reading the events needs none of it)

        def emit(event: PlaybookEvent, _state: RunState) -> None:
            sys.stdout.write(json.dumps(event.as_json()) + "\n")
            sys.stdout.flush()

        with _sigint_cancels(cancel):
            run = run_playbook(request, emit, cancel)
        sys.stdout.write(json.dumps(run_summary(run)) + "\n")
        return run

    err = console(stderr=True)
    if err.is_terminal:
        from rich.live import Live
        from rich.text import Text

        # The view is built when Live redraws (8 times a second), not on every event.
        seen: list[RunState] = []

        def remember(_event: PlaybookEvent, state: RunState) -> None:
            if not seen:
                seen.append(state)

        def view() -> RenderableType:
            return live_view(seen[0]) if seen else Text(f"starting {request.playbook}…")

        with (
            Live(console=err, refresh_per_second=8, transient=True, get_renderable=view),
            _sigint_cancels(cancel),
        ):
            run = run_playbook(request, remember, cancel)
    else:

        def lines(event: PlaybookEvent, state: RunState) -> None:
            if event.kind == "play":
                err.print(
                    f"[{_clock(state.elapsed)}] play {state.plays_started}/{state.total_plays}: "
                    f"{event.play}",
                    markup=False,
                    highlight=False,
                )
            elif event.kind in ("failed", "unreachable") and not event.ignored:
                err.print(
                    f"[{_clock(state.elapsed)}] {event.host}: {event.kind} at {event.task}",
                    markup=False,
                    highlight=False,
                )

        with _sigint_cancels(cancel):
            run = run_playbook(request, lines, cancel)
    err.print(summary_table(run.state))
    print_failures(run.state)
    return run


def run_summary(run: PlaybookRun) -> dict[str, Any]:
    state = run.state
    return {
        "kind": "summary",
        "playbook": state.playbook,
        "succeeded": state.succeeded,
        "interrupted": state.interrupted,
        "elapsed_s": round(state.elapsed, 1),
        "run_dir": str(run.run_dir),
        "hosts": {
            h.name: {
                "status": h.status,
                "ok": h.ok,
                "changed": h.changed,
                "failed": h.failed,
                "skipped": h.skipped,
            }
            for h in sorted(state.hosts.values(), key=lambda h: h.name)
        },
        "failures": [f.as_json() for f in state.failures],
    }


def finish(run: PlaybookRun, json_lines: bool) -> None:
    """Exit as the run ended: 0 all hosts fine, 130 interrupted, 1 otherwise."""
    import typer

    state = run.state
    if state.interrupted:
        busy = sorted(h.name for h in state.hosts.values() if not h.done)
        tasks = {h.name: h.task for h in state.hosts.values() if not h.done and h.task}
        detail = ", ".join(f"{n} ({tasks[n]})" if n in tasks else n for n in busy)
        console(stderr=True).print(
            "interrupted: the run was stopped; "
            + (f"these nodes may be half-way through a step: {detail}. " if detail else "")
            + "Every step is safe to repeat: run the same command again to finish. "
            + f"Log: {run.log}",
            markup=False,
            highlight=False,
        )
        raise typer.Exit(130)
    if not json_lines:
        console(stderr=True).print(f"log: {run.log}", markup=False, highlight=False)
    if not state.succeeded:
        raise typer.Exit(1)
