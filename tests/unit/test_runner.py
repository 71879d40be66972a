"""A playbook run by ansible-playbook on this machine (a local connection): the events Kubani
shows, the failures it names, the files it keeps, a cancel."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import stat
import sys
import threading
from pathlib import Path

import pytest

from kubani.ansible.events import PlaybookEvent
from kubani.ansible.process import _Lines, run_ansible
from kubani.ansible.progress import RunState
from kubani.ansible.runner import (
    COMMAND_FILE,
    EXTRAVARS_FILE,
    LOG_FILE,
    PlaybookRequest,
    PlaybookRun,
    new_run_dir,
    prune_run_dirs,
    run_playbook,
)
from kubani.errors import KubaniError
from kubani.vocabulary import RUN_FOLDERS_KEPT

PLAYBOOK = """\
- name: A play on this machine
  hosts: here
  gather_facts: false
  tasks:
    - name: Say something
      ansible.builtin.debug:
        msg: hello
    - name: Change something
      ansible.builtin.command: "true"
      changed_when: true
"""


def _project(tmp_path: Path, playbook: str = PLAYBOOK) -> tuple[Path, Path]:
    project = tmp_path / "ansible"
    (project / "playbooks").mkdir(parents=True)
    (project / "ansible.cfg").write_text("[defaults]\nretry_files_enabled = false\n")
    (project / "playbooks" / "site.yml").write_text(playbook)
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(
        "all:\n  children:\n    here:\n      hosts:\n        box:\n"
        "          ansible_connection: local\n"
        f"          ansible_python_interpreter: {sys.executable}\n"
    )
    return project, inventory


def _run(
    request: PlaybookRequest, cancel: threading.Event | None = None
) -> tuple[PlaybookRun, list[PlaybookEvent]]:
    seen: list[PlaybookEvent] = []

    def on_event(event: PlaybookEvent, _state: RunState) -> None:
        seen.append(event)

    return run_playbook(request, on_event, cancel or threading.Event()), seen


def test_a_run_streams_its_events_and_keeps_only_its_log_and_command(tmp_path: Path) -> None:
    project, inventory = _project(tmp_path)
    run, seen = _run(PlaybookRequest("site", inventory, project))
    assert run.state.rc == 0, run.log.read_text()
    kinds = [event.kind for event in seen]
    assert kinds == ["play", *["task", "host_task", "ok"] * 2, "stats"]
    assert [e.task for e in seen if e.kind == "task"] == ["Say something", "Change something"]
    # The events come from the stdout callback, which also writes Ansible's usual output.
    log = run.log.read_text()
    assert "TASK [Say something]" in log and "PLAY RECAP" in log
    assert "Callback dispatch" not in log and "WARNING" not in log
    assert [e.task for e in seen if e.kind == "ok"] == ["Say something", "Change something"]
    assert [e.changed for e in seen if e.kind == "ok"] == [False, True]
    assert [e.play for e in seen if e.kind == "ok"] == ["A play on this machine"] * 2
    assert run.state.hosts["box"].changed == 1 and run.state.hosts["box"].status == "ok"
    assert "hello" in run.log.read_text()
    assert sorted(p.name for p in run.run_dir.iterdir()) == sorted([COMMAND_FILE, LOG_FILE])
    for kept in run.run_dir.iterdir():
        assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    command = json.loads((run.run_dir / COMMAND_FILE).read_text())
    assert command["argv"][-1].endswith("site.yml") and "-i" in command["argv"]


FAILING = """\
- name: A play that fails
  hosts: here
  gather_facts: false
  tasks:
    - name: Tolerated
      ansible.builtin.command: "false"
      changed_when: false
      failed_when: false
    - name: Refuse
      ansible.builtin.fail:
        msg: "box is not ready. Fix: make it ready."
    - name: Never reached
      ansible.builtin.debug:
        msg: no
"""


def test_a_failure_names_the_host_the_task_and_the_message(tmp_path: Path) -> None:
    project, inventory = _project(tmp_path, FAILING)
    run, seen = _run(PlaybookRequest("site", inventory, project))
    assert run.state.rc == 2 and not run.state.succeeded
    [failure] = run.state.failures
    assert (failure.host, failure.task, failure.message) == ("box", "Refuse", "box is not ready.")
    assert failure.hint == "make it ready"
    assert "Never reached" not in [e.task for e in seen]


VARIABLES = """\
- name: A play reading variables
  hosts: here
  gather_facts: false
  tasks:
    - name: Report
      ansible.builtin.debug:
        msg: {kubani_doctor: true, secret: "{{ secret }}", list: "{{ items | join(',') }}"}
"""


def test_extra_variables_reach_the_play_and_do_not_stay_on_disk(tmp_path: Path) -> None:
    project, inventory = _project(tmp_path, VARIABLES)
    request = PlaybookRequest(
        "site", inventory, project, extravars={"secret": "s3cr3t 'quoted'", "items": ["a", "b"]}
    )
    run, seen = _run(request)
    assert run.state.rc == 0, run.log.read_text()
    [report] = [e.report for e in seen if e.report]
    assert report["secret"] == "s3cr3t 'quoted'" and report["list"] == "a,b"
    assert not (run.run_dir / EXTRAVARS_FILE).exists()
    command = json.loads((run.run_dir / COMMAND_FILE).read_text())
    assert command["extra_variables"] == ["items", "secret"] and "s3cr3t" not in str(command)


SLOW = """\
- name: A slow play
  hosts: here
  gather_facts: false
  tasks:
    - name: Leave a process behind
      ansible.builtin.shell: "sleep 119 >/dev/null 2>&1 & echo $! > {pid_file}"
      changed_when: false
    - name: Take a while
      ansible.builtin.command: sleep 120
      changed_when: false
"""


def test_a_cancelled_run_stops_and_says_so(tmp_path: Path) -> None:
    pid_file = tmp_path / "left-behind.pid"
    project, inventory = _project(tmp_path, SLOW.format(pid_file=pid_file))
    cancel = threading.Event()

    def on_event(event: PlaybookEvent, _state: RunState) -> None:
        if event.kind == "host_task" and event.task == "Take a while":
            cancel.set()

    try:
        run = run_playbook(PlaybookRequest("site", inventory, project), on_event, cancel)
    finally:
        if pid_file.exists():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid_file.read_text()), signal.SIGKILL)
    assert run.state.interrupted and run.state.rc not in (0, None)
    assert run.state.hosts["box"].task == "Take a while"


def test_event_lines_are_read_whole_however_the_pipe_splits_them() -> None:
    events = [
        {"event": "runner_on_ok", "host": f"h{i}", "res": {"msg": "é" * i}} for i in range(30)
    ]
    data = b"".join(json.dumps(e).encode() + b"\n" for e in events)
    for size in (1, 2, 7, 64, len(data)):
        got: list[dict[str, object]] = []
        lines = _Lines(got.append)
        for start in range(0, len(data), size):
            lines.feed(data[start : start + size])
        assert got == events
    got = []
    lines = _Lines(got.append)
    lines.feed(b"not json\n[1]\n" + data[: data.index(b"\n") + 1] + b"partial")
    assert got == events[:1]


def test_a_missing_ansible_playbook_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(KubaniError) as caught:
        run_ansible(
            [str(tmp_path / "no-such-program")], {}, tmp_path, tmp_path / "log", lambda _e: None
        )
    assert "cannot run no-such-program" in str(caught.value)


def test_only_the_newest_runs_folders_are_kept(tmp_path: Path) -> None:
    project = tmp_path / "ansible"
    runs = tmp_path / ".kubani" / "runs"
    runs.mkdir(parents=True)
    made = [
        f"20260101T{i // 60:02d}{i % 60:02d}00.000000Z-site" for i in range(RUN_FOLDERS_KEPT + 4)
    ]
    for name in made:
        (runs / name).mkdir()
    (runs / "notes-of-mine").mkdir()  # not a run's: left alone
    newest = new_run_dir(project, "site")
    prune_run_dirs(project)
    kept = sorted(p.name for p in runs.iterdir())
    assert newest.name in kept and "notes-of-mine" in kept
    assert len(kept) == RUN_FOLDERS_KEPT + 1
    assert not set(made[:5]) & set(kept)  # the oldest went, the new run counted
    assert set(made[5:]) <= set(kept)


def test_a_role_s_tasks_carry_the_role_s_name(tmp_path: Path) -> None:
    project, inventory = _project(
        tmp_path,
        "- name: A play with a role\n  hosts: here\n  gather_facts: false\n"
        "  roles:\n    - greeter\n",
    )
    tasks = project / "roles" / "greeter" / "tasks"
    tasks.mkdir(parents=True)
    (tasks / "main.yml").write_text("- name: Greet\n  ansible.builtin.debug:\n    msg: hello\n")
    (project / "ansible.cfg").write_text("[defaults]\nroles_path = roles\n")
    run, seen = _run(PlaybookRequest("site", inventory, project))
    assert run.state.rc == 0, run.log.read_text()
    assert [(e.kind, e.role, e.task) for e in seen if e.kind in ("task", "ok")] == [
        ("task", "greeter", "Greet"),
        ("ok", "greeter", "Greet"),
    ]


def test_the_progress_knows_every_play_from_the_first_event(tmp_path: Path) -> None:
    """The plays are counted while Ansible starts; no event is shown before the count."""
    project, inventory = _project(
        tmp_path, PLAYBOOK + PLAYBOOK.replace("- name: ", "- name: Second ", 1)
    )
    totals: list[int] = []

    def on_event(_event: PlaybookEvent, state: RunState) -> None:
        totals.append(state.total_plays)

    run = run_playbook(PlaybookRequest("site", inventory, project), on_event, threading.Event())
    assert run.state.rc == 0, run.log.read_text()
    assert totals and set(totals) == {2} and run.state.plays_started == 2


def test_a_playbook_that_cannot_be_counted_still_runs_and_reports(tmp_path: Path) -> None:
    project, inventory = _project(tmp_path, "- name: [unclosed\n")
    run, _ = _run(PlaybookRequest("site", inventory, project))
    assert run.state.rc != 0 and run.state.total_plays == 1
    assert "ERROR" in run.log.read_text()
