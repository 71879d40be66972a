"""Ansible stdout callback: Ansible's default output (for the run's log) and each play,
task and result as one JSON line on the descriptor named by $KUBANI_EVENTS_FD, for the
Kubani process that started Ansible (kubani.ansible.process).

The stdout callback rather than one more beside it: Ansible gives each callback its own
copy of every result (facts included), and one copy is enough. Loaded by Ansible, never
imported by Kubani: it uses Ansible and the standard library only. Results are cut down to
what Kubani reads (changed, a failure's messages, a report) unless $KUBANI_EVENTS_RESULTS
is ``all`` (ad-hoc module runs, whose callers read whole results).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Mapping
from typing import Any

from ansible.plugins.callback.default import CallbackModule as DefaultCallback

DOCUMENTATION = """
    name: kubani_events
    type: stdout
    short_description: Ansible's default output, and the run's events as JSON lines for Kubani
    description:
      - Ansible's default output; also writes plays, tasks, results and the final statistics
        to the file descriptor named by KUBANI_EVENTS_FD (nothing more when that is not set).
    extends_documentation_fragment:
      - default_callback
      - result_format_callback
"""

FD_VARIABLE = "KUBANI_EVENTS_FD"
RESULTS_VARIABLE = "KUBANI_EVENTS_RESULTS"
MESSAGE_KEYS = ("msg", "stderr", "reason", "module_stderr", "stdout")
STATS = ("ok", "changed", "failures", "dark", "skipped", "rescued", "ignored")


def _failure(result: dict[str, Any]) -> dict[str, Any]:
    kept: dict[str, Any] = {key: result[key] for key in MESSAGE_KEYS if key in result}
    kept["changed"] = bool(result.get("changed"))
    items = result.get("results")
    if isinstance(items, list):
        kept["results"] = [
            _failure(item) | {"failed": True}
            for item in items
            if isinstance(item, dict) and item.get("failed")
        ]
    return kept


def _part(result: Any, name: str) -> Any:
    """``result.host`` and the like from ansible-core 2.19 on; ``result._host`` before."""
    public = getattr(result, name, None)
    return public if public is not None else getattr(result, f"_{name}")


def _success(result: dict[str, Any]) -> dict[str, Any]:
    kept: dict[str, Any] = {"changed": bool(result.get("changed"))}
    if isinstance(result.get("msg"), dict):
        kept["msg"] = result["msg"]  # a structured report (see kubani.vocabulary.Report)
    return kept


# Ansible ships no type hints: to mypy the base class is Any, and strict mode flags that.
class CallbackModule(DefaultCallback):  # type: ignore[misc]
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "stdout"
    CALLBACK_NAME = "kubani_events"

    def __init__(self) -> None:
        self._kubani_fd: int | None = None
        self._kubani_lock = threading.Lock()
        self._kubani_whole = os.environ.get(RESULTS_VARIABLE) == "all"
        self._kubani_play: str | None = None
        named = os.environ.get(FD_VARIABLE, "")
        if named.isdigit():
            self._kubani_fd = int(named)
            # Programs Ansible starts (ssh and its lasting control masters) must not hold
            # the pipe open.
            os.set_inheritable(self._kubani_fd, False)
        super().__init__()

    def _kubani_send(self, event: str, **data: Any) -> None:
        if self._kubani_fd is None:
            return
        line = (json.dumps({"event": event, **data}, default=str) + "\n").encode()
        with self._kubani_lock:
            try:
                view = memoryview(line)
                while view:
                    view = view[os.write(self._kubani_fd, view) :]
            except OSError:
                # The reader is gone (Kubani was killed): the run goes on without events.
                self._kubani_fd = None

    def _kubani_task(self, task: Any) -> dict[str, Any]:
        role = getattr(task, "_role", None)
        return {
            "play": self._kubani_play,
            "task": task.name or task.action,
            "role": role.get_name(include_role_fqcn=False) if role is not None else None,
        }

    def _kubani_result(self, event: str, result: Any, **extra: Any) -> None:
        whole = _part(result, "result")
        raw = dict(whole) if isinstance(whole, Mapping) else {}
        if self._kubani_whole:
            res = raw
        elif event == "runner_on_ok":
            res = _success(raw)
        elif event == "runner_on_skipped":
            res = {}
        else:
            res = _failure(raw)
        self._kubani_send(
            event,
            host=_part(result, "host").get_name(),
            res=res,
            **self._kubani_task(_part(result, "task")),
            **extra,
        )

    def v2_playbook_on_play_start(self, play: Any) -> None:
        self._kubani_play = play.get_name()
        self._kubani_send("playbook_on_play_start", play=self._kubani_play)
        super().v2_playbook_on_play_start(play)

    def v2_playbook_on_task_start(self, task: Any, is_conditional: bool) -> None:
        self._kubani_send("playbook_on_task_start", **self._kubani_task(task))
        super().v2_playbook_on_task_start(task, is_conditional)

    def v2_runner_on_start(self, host: Any, task: Any) -> None:
        self._kubani_send("runner_on_start", host=host.get_name(), **self._kubani_task(task))
        super().v2_runner_on_start(host, task)

    def v2_runner_on_ok(self, result: Any) -> None:
        self._kubani_result("runner_on_ok", result)
        super().v2_runner_on_ok(result)

    def v2_runner_on_failed(self, result: Any, ignore_errors: bool = False) -> None:
        self._kubani_result("runner_on_failed", result, ignore_errors=bool(ignore_errors))
        super().v2_runner_on_failed(result, ignore_errors)

    def v2_runner_on_unreachable(self, result: Any) -> None:
        self._kubani_result("runner_on_unreachable", result)
        super().v2_runner_on_unreachable(result)

    def v2_runner_on_skipped(self, result: Any) -> None:
        self._kubani_result("runner_on_skipped", result)
        super().v2_runner_on_skipped(result)

    def v2_playbook_on_stats(self, stats: Any) -> None:
        self._kubani_send(
            "playbook_on_stats",
            **{name: dict(getattr(stats, name, None) or {}) for name in STATS},
        )
        super().v2_playbook_on_stats(stats)
