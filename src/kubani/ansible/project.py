"""Where the project's Ansible tree and its run folders are."""

from __future__ import annotations

import os
from pathlib import Path

from kubani.errors import KubaniError
from kubani.vocabulary import Playbook

PLAYBOOKS = tuple(playbook.value for playbook in Playbook)


def ansible_dir(near: Path | None = None) -> Path:
    """$KUBANI_ANSIBLE_DIR, else ansible/ beside or above ``near`` or the working folder,
    else the one shipped with this checkout."""
    if os.environ.get("KUBANI_ANSIBLE_DIR"):
        return Path(os.environ["KUBANI_ANSIBLE_DIR"])
    starts = [p for p in (near, Path.cwd()) if p is not None]
    for start in starts:
        resolved = start.resolve()
        for folder in (resolved, *resolved.parents):
            if (folder / "ansible" / "playbooks" / "site.yml").is_file():
                return folder / "ansible"
    shipped = Path(__file__).resolve().parents[3] / "ansible"
    if (shipped / "playbooks" / "site.yml").is_file():
        return shipped
    raise KubaniError(
        "cannot find the playbooks",
        "no ansible/playbooks/site.yml here or above",
        "run in your Kubani project, or set KUBANI_ANSIBLE_DIR",
    )


def playbook_path(folder: Path, name: str) -> Path:
    path = folder / "playbooks" / f"{name.removesuffix('.yml')}.yml"
    if not path.is_file():
        raise KubaniError(
            f"no playbook {name!r}",
            f"{path} does not exist",
            f"choose one of: {', '.join(PLAYBOOKS)}",
        )
    return path


def count_plays(path: Path, seen: frozenset[Path] = frozenset()) -> int:
    """Plays in a playbook, following import_playbook."""
    from kubani.yamlsafe import safe_load_c  # PyYAML: only once a run has started

    if path in seen or not path.is_file():
        return 0
    plays = safe_load_c(path.read_text()) or []
    total = 0
    for play in plays if isinstance(plays, list) else []:
        if not isinstance(play, dict):
            continue
        imported = play.get("ansible.builtin.import_playbook") or play.get("import_playbook")
        if imported:
            total += count_plays((path.parent / str(imported)).resolve(), seen | {path})
        else:
            total += 1
    return total


def runs_dir(project: Path) -> Path:
    """Run folders live in the project, beside ansible/ (git-ignored)."""
    return project.parent / ".kubani" / "runs"


def facts_dir(project: Path, inventory: Path) -> Path:
    """Where Ansible caches the facts of an inventory's nodes between runs: one folder per
    inventory, so that two clusters managed from one project never read each other's facts
    (the nodes of two labs share their names)."""
    import hashlib

    key = hashlib.sha256(str(inventory.resolve()).encode()).hexdigest()[:16]
    return project.parent / ".kubani" / "facts" / key


def ansible_program(name: str) -> str:
    """Where Ansible's ``name`` (ansible-playbook, ansible) is: on PATH, or else beside
    this interpreter (a virtual environment that is not activated), whose folder then goes
    on PATH for the programs Ansible starts in turn."""
    import shutil
    import sys

    found = shutil.which(name)
    if found:
        return found
    beside = Path(sys.executable).parent
    if (beside / name).exists():
        os.environ["PATH"] = f"{beside}{os.pathsep}{os.environ.get('PATH', '')}"
        return str(beside / name)
    return name  # not installed: starting it says so (kubani.ansible.process)
