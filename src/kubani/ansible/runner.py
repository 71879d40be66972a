"""Run a playbook through ansible-runner and turn its events into a RunState."""

from __future__ import annotations

import os
import re
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kubani.ansible.events import PlaybookEvent, from_runner
from kubani.ansible.progress import RunState
from kubani.ansible.project import (
    count_plays,
    ensure_ansible_on_path,
    facts_dir,
    playbook_path,
    runs_dir,
)
from kubani.ansible.unreachable import explain_unreachable
from kubani.vocabulary import RUN_FOLDERS_KEPT

# The fully qualified name: ansible-runner manages (and moves) only a cache it calls "jsonfile".
FACT_CACHE_PLUGIN = "ansible.builtin.jsonfile"


@dataclass
class PlaybookRequest:
    playbook: str
    inventory: Path
    project: Path
    extravars: dict[str, Any] = field(default_factory=dict)
    limit: str | None = None
    tags: str | None = None
    skip_tags: str | None = None
    check: bool = False
    diff: bool = False
    verbosity: int = 0
    # More inventories read beside ``inventory`` (machines not in it yet, e.g. to join).
    extra_inventories: tuple[Path, ...] = ()


@dataclass
class PlaybookRun:
    state: RunState
    run_dir: Path
    log: Path


_RUN_FOLDER = re.compile(r"^\d{8}T\d{6}\.\d{6}Z-[\w.-]+$")


def new_run_dir(project: Path, playbook: str) -> Path:
    """A folder for a new run; the oldest runs' folders beyond ``RUN_FOLDERS_KEPT`` go."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    folder = runs_dir(project) / f"{stamp}-{playbook}"
    folder.mkdir(parents=True, mode=0o700)
    runs = sorted(p for p in folder.parent.iterdir() if _RUN_FOLDER.match(p.name) and p.is_dir())
    for old in runs[:-RUN_FOLDERS_KEPT]:
        # Another run may be removing it too; a folder left behind goes next time.
        shutil.rmtree(old, ignore_errors=True)
    return folder


def run_playbook(
    request: PlaybookRequest,
    on_event: Callable[[PlaybookEvent, RunState], None],
    cancel: threading.Event,
) -> PlaybookRun:
    import ansible_runner

    ensure_ansible_on_path()
    path = playbook_path(request.project, request.playbook)
    state = RunState(path.stem, total_plays=max(1, count_plays(path)))
    run_dir = new_run_dir(request.project, path.stem)
    cmdline = [flag for flag, on in (("--check", request.check), ("--diff", request.diff)) if on]

    def handle(raw: dict[str, Any]) -> bool:
        event = from_runner(raw)
        if event is not None:
            state.apply(event)
            on_event(event, state)
        # No file per event in the run's folder (artifacts/run/job_events): nothing reads
        # them, and encoding each one cost the controller a tenth of a no-op's overhead.
        return False

    facts = facts_dir(request.project, request.inventory)
    # Facts hold the nodes' environment and addresses: private, as the runs' folders are.
    facts.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    facts.mkdir(exist_ok=True, mode=0o700)
    result = ansible_runner.run(
        private_data_dir=str(run_dir),
        project_dir=str(request.project),
        playbook=str(path.relative_to(request.project)),
        inventory=[str(p.resolve()) for p in (request.inventory, *request.extra_inventories)]
        if request.extra_inventories
        else str(request.inventory.resolve()),
        extravars=request.extravars or None,
        limit=request.limit,
        tags=request.tags,
        skip_tags=request.skip_tags,
        verbosity=request.verbosity or None,
        cmdline=" ".join(cmdline) or None,
        envvars={
            "ANSIBLE_CONFIG": str(request.project / "ansible.cfg"),
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_FORCE_COLOR": "0",
            # ansible-runner would otherwise cache facts in each run's own folder (every
            # run then discovers each node's Python again: seconds per run) and turn SSH
            # host key checking off; a run from here behaves as ansible-playbook does.
            "ANSIBLE_CACHE_PLUGIN": FACT_CACHE_PLUGIN,
            "ANSIBLE_CACHE_PLUGIN_CONNECTION": str(facts),
            "ANSIBLE_HOST_KEY_CHECKING": os.environ.get("ANSIBLE_HOST_KEY_CHECKING", "True"),
        },
        fact_cache_type=FACT_CACHE_PLUGIN,
        ident="run",
        quiet=True,
        event_handler=handle,
        cancel_callback=cancel.is_set,
        settings={"suppress_ansible_output": True},
    )
    state.rc = result.rc
    state.interrupted = result.status == "canceled"
    explain_unreachable(state, request.inventory)
    return PlaybookRun(state, run_dir, run_dir / "artifacts" / "run" / "stdout")
