"""Start an Ansible program, keep its output in a log and read its events as they come.

The events come from Kubani's callback plugin (plugins/callback/kubani_events.py) over a
pipe: JSON lines, one per play, task and result. Ansible runs in a session of its own, so a
Ctrl-C in the terminal reaches Kubani only; a cancelled run is interrupted as a terminal
would (SIGINT to its process group), then stopped if it does not end.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubani.errors import KubaniError

CALLBACK_FOLDER = Path(__file__).parent / "plugins" / "callback"
CALLBACK_NAME = "kubani_events"
EVENTS_FD_VARIABLE = "KUBANI_EVENTS_FD"
EVENTS_RESULTS_VARIABLE = "KUBANI_EVENTS_RESULTS"
# After a cancel: SIGINT, then SIGTERM, then SIGKILL, each this long after the last.
STOP_STEP_SECONDS = 5.0
_POLL_SECONDS = 0.2
_CHUNK = 1 << 16
_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGKILL)


@dataclass(frozen=True)
class Outcome:
    rc: int
    cancelled: bool


def ansible_environment(
    overrides: Mapping[str, str], whole_results: bool = False
) -> dict[str, str]:
    """The environment Ansible runs in: this one, ``overrides``, and Kubani's callback on
    the plugin path (ahead of any set here) as the stdout callback, ad-hoc runs' too."""
    callbacks = os.environ.get("ANSIBLE_CALLBACK_PLUGINS")
    env = dict(os.environ) | dict(overrides)
    env["ANSIBLE_CALLBACK_PLUGINS"] = os.pathsep.join(
        [str(CALLBACK_FOLDER), *([callbacks] if callbacks else [])]
    )
    env["ANSIBLE_STDOUT_CALLBACK"] = CALLBACK_NAME
    env["ANSIBLE_LOAD_CALLBACK_PLUGINS"] = "1"
    if whole_results:
        env[EVENTS_RESULTS_VARIABLE] = "all"
    else:
        env.pop(EVENTS_RESULTS_VARIABLE, None)
    return env


def private_file(path: Path, text: str) -> None:
    """``text`` in a new file only its owner can read (variables may hold secrets)."""
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as out:
        out.write(text)


class _Lines:
    """JSON lines from the pipe, split where the newlines fall, whatever the chunks."""

    def __init__(self, handle: Callable[[dict[str, Any]], None]) -> None:
        self._handle = handle
        self._partial = b""

    def feed(self, chunk: bytes) -> None:
        *lines, self._partial = (self._partial + chunk).split(b"\n")
        for line in lines:
            try:
                event = json.loads(line)
            except ValueError:
                continue  # not one of the plugin's lines (nothing else writes here)
            if isinstance(event, dict):
                self._handle(event)


def run_ansible(
    argv: Sequence[str],
    env: Mapping[str, str],
    cwd: Path,
    log: Path,
    handle: Callable[[dict[str, Any]], None],
    cancel: threading.Event | None = None,
    started: Callable[[], None] | None = None,
) -> Outcome:
    """Run ``argv`` (ansible-playbook or ansible) to its end, its output in ``log`` (0600),
    each event given to ``handle`` as it arrives; ``started`` is called once it runs."""
    read_end, write_end = os.pipe()
    lines = _Lines(handle)
    try:
        with os.fdopen(os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as out:
            try:
                process = subprocess.Popen(
                    list(argv),
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    cwd=cwd,
                    env={**env, EVENTS_FD_VARIABLE: str(write_end)},
                    pass_fds=(write_end,),
                    start_new_session=True,
                )
            except OSError as exc:
                raise KubaniError(
                    f"cannot run {Path(argv[0]).name}",
                    exc.strerror or str(exc),
                    "install Kubani with its dependencies (uv sync), which include ansible-core",
                ) from None
            finally:
                os.close(write_end)
            try:
                if started is not None:
                    started()
                cancelled = _follow(process, read_end, lines, cancel)
            finally:
                if process.poll() is None:  # Kubani itself failed or was interrupted
                    _stop(process)
    finally:
        os.close(read_end)
    return Outcome(process.returncode, cancelled)


def _follow(
    process: subprocess.Popen[bytes],
    read_end: int,
    lines: _Lines,
    cancel: threading.Event | None,
) -> bool:
    """Read events until the run ends; returns whether it was cancelled."""
    sent = 0  # how many of _SIGNALS have been sent
    last_sent = 0.0
    while True:
        if cancel is not None and cancel.is_set() and sent < len(_SIGNALS):
            now = time.monotonic()
            if not sent or now - last_sent >= STOP_STEP_SECONDS:
                with contextlib.suppress(ProcessLookupError):  # it ended meanwhile
                    os.killpg(process.pid, _SIGNALS[sent])
                sent, last_sent = sent + 1, now
        if select.select([read_end], [], [], _POLL_SECONDS)[0]:
            chunk = os.read(read_end, _CHUNK)
            if chunk:
                lines.feed(chunk)
                continue
            process.wait()  # every writer closed the pipe: Ansible has ended
            return sent > 0
        if process.poll() is not None:
            # Ended, while a process it left behind may hold the pipe: take what is left.
            while select.select([read_end], [], [], 0)[0] and (chunk := os.read(read_end, _CHUNK)):
                lines.feed(chunk)
            return sent > 0


def _stop(process: subprocess.Popen[bytes]) -> None:
    for stop in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, stop)
        try:
            process.wait(timeout=STOP_STEP_SECONDS)
            return
        except subprocess.TimeoutExpired:
            continue
