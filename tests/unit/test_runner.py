"""A playbook run through ansible-runner, on this machine (a local connection): the events
Kubani shows, the log it keeps, and nothing else written per event."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

from kubani.ansible.events import PlaybookEvent
from kubani.ansible.progress import RunState
from kubani.ansible.runner import PlaybookRequest, new_run_dir, run_playbook
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


def test_a_run_streams_its_events_and_keeps_only_its_log(tmp_path: Path) -> None:
    project = tmp_path / "ansible"
    (project / "playbooks").mkdir(parents=True)
    (project / "ansible.cfg").write_text("[defaults]\nretry_files_enabled = false\n")
    (project / "playbooks" / "site.yml").write_text(PLAYBOOK)
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(
        "all:\n  children:\n    here:\n      hosts:\n        box:\n"
        "          ansible_connection: local\n"
        f"          ansible_python_interpreter: {sys.executable}\n"
    )
    seen: list[PlaybookEvent] = []

    def on_event(event: PlaybookEvent, _state: RunState) -> None:
        seen.append(event)

    run = run_playbook(
        PlaybookRequest("site", inventory, project),
        on_event,
        threading.Event(),
    )
    assert run.state.rc == 0, run.log.read_text()
    kinds = [event.kind for event in seen]
    assert kinds[0] == "play" and kinds[-1] == "stats"
    assert [e.task for e in seen if e.kind == "ok"] == ["Say something", "Change something"]
    assert [e.changed for e in seen if e.kind == "ok"] == [False, True]
    assert run.state.hosts["box"].changed == 1
    assert "hello" in run.log.read_text()
    events = run.run_dir / "artifacts" / "run" / "job_events"
    assert not events.exists() or not any(p.suffix == ".json" for p in events.iterdir())


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
    kept = sorted(p.name for p in runs.iterdir())
    assert newest.name in kept and "notes-of-mine" in kept
    assert len(kept) == RUN_FOLDERS_KEPT + 1
    assert not set(made[:5]) & set(kept)  # the oldest went, the new run counted
    assert set(made[5:]) <= set(kept)
