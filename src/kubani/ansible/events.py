"""The events of Kubani's callback plugin (plugins/callback/kubani_events.py), reduced to
what Kubani shows and scripts consume."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from kubani.vocabulary import Report

# the plugin's event name (Ansible's callback method without v2_) -> Kubani's
_KINDS = {
    "playbook_on_play_start": "play",
    "playbook_on_task_start": "task",
    "runner_on_start": "host_task",
    "runner_on_ok": "ok",
    "runner_on_failed": "failed",
    "runner_on_unreachable": "unreachable",
    "runner_on_skipped": "skipped",
    "playbook_on_stats": "stats",
}


@dataclass(frozen=True)
class PlaybookEvent:
    kind: str
    host: str | None = None
    play: str | None = None
    task: str | None = None
    role: str | None = None
    changed: bool = False
    message: str | None = None
    ignored: bool = False
    stats: dict[str, dict[str, int]] = field(default_factory=dict)
    report: dict[str, Any] | None = None  # a task's structured msg (see vocabulary.Report)

    def as_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v not in (None, {}, False)} | {
            "kind": self.kind
        }


def _message(result: dict[str, Any]) -> str | None:
    for key in ("msg", "stderr", "reason", "module_stderr", "stdout"):
        value = result.get(key)
        if isinstance(value, str) and value.strip():
            return " ".join(value.split())
    results = result.get("results")
    if isinstance(results, list):
        for item in results:
            if isinstance(item, dict) and item.get("failed"):
                found = _message(item)
                if found:
                    return found
    return None


def parse_event(data: dict[str, Any]) -> PlaybookEvent | None:
    kind = _KINDS.get(str(data.get("event")))
    if kind is None:
        return None
    if kind == "stats":
        stats = {
            name: {str(h): int(c) for h, c in (data.get(name) or {}).items()}
            for name in ("ok", "changed", "failures", "dark", "skipped", "rescued", "ignored")
        }
        return PlaybookEvent("stats", stats=stats)
    result = data.get("res") or {}
    return PlaybookEvent(
        kind=kind,
        host=data.get("host") or None,
        play=data.get("play") or None,
        task=data.get("task") or None,
        role=data.get("role") or None,
        changed=bool(result.get("changed")) if isinstance(result, dict) else False,
        message=_message(result)
        if kind in ("failed", "unreachable") and isinstance(result, dict)
        else None,
        ignored=bool(data.get("ignore_errors")),
        report=_report(result) if kind == "ok" else None,
    )


def _report(result: Any) -> dict[str, Any] | None:
    msg = result.get("msg") if isinstance(result, dict) else None
    if isinstance(msg, dict) and any(msg.get(marker) is True for marker in Report):
        return msg
    return None
