"""Ansible callback for ``benchmarks/lab_provision.py --tasks``: each task's wall seconds,
the CPU seconds ``ansible-playbook`` and the forks that ran it spent (not the connection
multiplexer's, which lives for the whole run), and its hosts by result, written as JSON to
``$KUBANI_TASK_TIMES_FILE`` when the run ends. Enabled only by the benchmark (never by
``ansible.cfg``): a task ends when the next one starts, so the figures include the
strategy's own work between tasks."""

from __future__ import annotations

import json
import os
import resource
import time
from pathlib import Path
from typing import Any

from ansible.plugins.callback import CallbackBase

OUTPUT_VARIABLE = "KUBANI_TASK_TIMES_FILE"


def _cpu_s() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    reaped = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + reaped.ru_utime + reaped.ru_stime


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "kubani_task_times"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self) -> None:
        super().__init__()
        self._tasks: list[dict[str, Any]] = []
        self._open: dict[str, Any] | None = None
        self._started = (0.0, 0.0)

    def _close(self) -> None:
        if self._open is None:
            return
        wall, cpu = self._started
        self._open["wall_s"] = round(time.perf_counter() - wall, 3)
        self._open["cpu_s"] = round(_cpu_s() - cpu, 3)
        self._tasks.append(self._open)
        self._open = None

    def v2_playbook_on_task_start(self, task: Any, is_conditional: bool) -> None:
        self._close()
        self._open = {"task": task.get_name(), "path": task.get_path() or "", "hosts": {}}
        self._started = (time.perf_counter(), _cpu_s())

    def v2_playbook_on_handler_task_start(self, task: Any) -> None:
        self.v2_playbook_on_task_start(task, False)

    def _count(self, outcome: str) -> None:
        if self._open is not None:
            hosts = self._open["hosts"]
            hosts[outcome] = hosts.get(outcome, 0) + 1

    def v2_runner_on_ok(self, result: Any, **_: Any) -> None:
        self._count("changed" if result.is_changed() else "ok")

    def v2_runner_on_skipped(self, result: Any, **_: Any) -> None:
        self._count("skipped")

    def v2_runner_on_failed(self, result: Any, **_: Any) -> None:
        self._count("failed")

    def v2_runner_on_unreachable(self, result: Any) -> None:
        self._count("unreachable")

    def v2_playbook_on_stats(self, stats: Any) -> None:
        self._close()
        target = os.environ.get(OUTPUT_VARIABLE)
        if target:
            Path(target).write_text(json.dumps(self._tasks), encoding="utf-8")
