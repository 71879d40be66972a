"""A playbook run's state, built from its events: per host, per failure, overall."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from kubani.ansible.events import PlaybookEvent
from kubani.ansible.hints import hint_for, without_fix


@dataclass
class HostState:
    name: str
    task: str = ""
    ok: int = 0
    changed: int = 0
    failed: int = 0
    skipped: int = 0
    unreachable: bool = False
    done: bool = False

    @property
    def status(self) -> str:
        if self.unreachable:
            return "unreachable"
        if self.failed:
            return "failed"
        return "ok" if self.done else "running"


@dataclass(frozen=True)
class Failure:
    host: str
    role: str | None
    task: str
    message: str
    hint: str | None

    def as_json(self) -> dict[str, str | None]:
        return {
            "host": self.host,
            "role": self.role,
            "task": self.task,
            "message": self.message,
            "hint": self.hint,
        }


@dataclass
class RunState:
    playbook: str
    total_plays: int = 1
    plays_started: int = 0
    play: str = ""
    hosts: dict[str, HostState] = field(default_factory=dict)
    failures: list[Failure] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    finished: bool = False
    interrupted: bool = False
    rc: int | None = None

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def host(self, name: str) -> HostState:
        if name not in self.hosts:
            self.hosts[name] = HostState(name)
        return self.hosts[name]

    def apply(self, event: PlaybookEvent) -> None:
        if event.kind == "play":
            self.plays_started += 1
            self.play = event.play or ""
            return
        if event.kind == "stats":
            self._apply_stats(event.stats)
            return
        if event.host is None:
            return
        host = self.host(event.host)
        label = f"{event.role} : {event.task}" if event.role else (event.task or "")
        if event.kind == "host_task":
            host.task = label
        elif event.kind == "ok":
            host.ok += 1
            host.changed += int(event.changed)
        elif event.kind == "skipped":
            host.skipped += 1
        elif event.kind == "failed" and not event.ignored:
            host.failed += 1
            self._fail(event)
        elif event.kind == "unreachable":
            host.unreachable = True
            self._fail(event)

    def _fail(self, event: PlaybookEvent) -> None:
        message = event.message or "no message"
        host = event.host or "?"
        self.failures.append(
            Failure(
                host, event.role, event.task or "?", without_fix(message), hint_for(message, host)
            )
        )

    def _apply_stats(self, stats: dict[str, dict[str, int]]) -> None:
        """The recap is the truth: failures later rescued by a block are dropped."""
        self.finished = True
        names = set().union(*(set(v) for v in stats.values())) if stats else set()
        for name in names:
            host = self.host(name)
            host.ok = stats.get("ok", {}).get(name, host.ok)
            host.changed = stats.get("changed", {}).get(name, host.changed)
            host.skipped = stats.get("skipped", {}).get(name, host.skipped)
            host.failed = stats.get("failures", {}).get(name, 0)
            host.unreachable = stats.get("dark", {}).get(name, 0) > 0
            host.done = True
        failing = {n for n, h in self.hosts.items() if h.failed or h.unreachable}
        self.failures = [f for f in self.failures if f.host in failing]

    @property
    def succeeded(self) -> bool:
        return (
            self.finished
            and not self.interrupted
            and self.rc == 0
            and all(not h.failed and not h.unreachable for h in self.hosts.values())
        )
