"""Run a playbook with ansible-playbook and turn its events into a RunState."""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kubani.ansible.events import PlaybookEvent, parse_event
from kubani.ansible.process import ansible_environment, private_file, run_ansible
from kubani.ansible.progress import RunState
from kubani.ansible.project import (
    ansible_program,
    count_plays,
    facts_dir,
    playbook_path,
    runs_dir,
)
from kubani.ansible.unreachable import explain_unreachable
from kubani.vocabulary import RUN_FOLDERS_KEPT

FACT_CACHE_PLUGIN = "ansible.builtin.jsonfile"
# A run's folder: what was run (argv, the environment Kubani set) and Ansible's output.
COMMAND_FILE = "command.json"
LOG_FILE = "ansible.log"
EXTRAVARS_FILE = "extravars.json"  # removed when the run ends


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
    """A folder for a new run."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    folder = runs_dir(project) / f"{stamp}-{playbook}"
    folder.mkdir(parents=True, mode=0o700)
    return folder


def prune_run_dirs(project: Path) -> None:
    """The oldest runs' folders beyond ``RUN_FOLDERS_KEPT`` go."""
    folder = runs_dir(project)
    runs = sorted(p for p in folder.iterdir() if _RUN_FOLDER.match(p.name) and p.is_dir())
    for old in runs[:-RUN_FOLDERS_KEPT]:
        # Another run may be removing it too; a folder left behind goes next time.
        shutil.rmtree(old, ignore_errors=True)


def _while_ansible_starts(state: RunState, path: Path, project: Path) -> None:
    """What the run needs only once Ansible reports: the plays to count (a YAML read) for
    the progress; and the old runs' folders removed."""
    from yaml import YAMLError

    # A playbook that cannot be read leaves the total at 1: Ansible reports the playbook.
    with contextlib.suppress(OSError, ValueError, YAMLError):
        state.total_plays = max(1, count_plays(path))
    with contextlib.suppress(OSError):  # a folder left behind goes next time
        prune_run_dirs(project)


def run_playbook(
    request: PlaybookRequest,
    on_event: Callable[[PlaybookEvent, RunState], None],
    cancel: threading.Event,
) -> PlaybookRun:
    path = playbook_path(request.project, request.playbook)
    state = RunState(path.stem)
    run_dir = new_run_dir(request.project, path.stem)
    # Ansible takes about half a second to its first event: this runs meanwhile, not before.
    bookkeeping = threading.Thread(
        target=_while_ansible_starts, args=(state, path, request.project), daemon=True
    )

    def handle(raw: dict[str, Any]) -> None:
        event = parse_event(raw)
        if event is not None:
            bookkeeping.join()
            state.apply(event)
            on_event(event, state)

    facts = facts_dir(request.project, request.inventory)
    # Facts hold the nodes' environment and addresses: private, as the runs' folders are.
    facts.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    facts.mkdir(exist_ok=True, mode=0o700)
    overrides = {
        "ANSIBLE_CONFIG": str(request.project / "ansible.cfg"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        # Facts per inventory: two clusters may name their nodes alike.
        "ANSIBLE_CACHE_PLUGIN": FACT_CACHE_PLUGIN,
        "ANSIBLE_CACHE_PLUGIN_CONNECTION": str(facts),
    }
    argv = [ansible_program("ansible-playbook"), *_arguments(request, run_dir), str(path)]
    command = {"argv": argv, "env": overrides, "extra_variables": sorted(request.extravars)}
    private_file(run_dir / COMMAND_FILE, json.dumps(command, indent=2))
    try:
        outcome = run_ansible(
            argv,
            ansible_environment(overrides),
            request.project,
            run_dir / LOG_FILE,
            handle,
            cancel,
            started=bookkeeping.start,
        )
    finally:
        # The extra variables may hold secrets; the run's record keeps their names only.
        (run_dir / EXTRAVARS_FILE).unlink(missing_ok=True)
        if bookkeeping.is_alive():
            bookkeeping.join()
    state.rc = outcome.rc
    state.interrupted = outcome.cancelled
    explain_unreachable(state, request.inventory)
    return PlaybookRun(state, run_dir, run_dir / LOG_FILE)


def _arguments(request: PlaybookRequest, run_dir: Path) -> list[str]:
    arguments: list[str] = []
    for inventory in (request.inventory, *request.extra_inventories):
        arguments += ["-i", str(inventory.resolve())]
    if request.extravars:
        private_file(run_dir / EXTRAVARS_FILE, json.dumps(request.extravars, default=str))
        arguments += ["-e", f"@{run_dir / EXTRAVARS_FILE}"]
    for flag, value in (
        ("--limit", request.limit),
        ("--tags", request.tags),
        ("--skip-tags", request.skip_tags),
    ):
        if value:
            arguments += [flag, value]
    arguments += [flag for flag, on in (("--check", request.check), ("--diff", request.diff)) if on]
    if request.verbosity:
        arguments.append("-" + "v" * min(request.verbosity, 6))
    return arguments
