"""A playbook run after no edit skips checking the inventory again; any edit, a new
variables file, other code or vaulted values make it check."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kubani.inventory import validated
from kubani.inventory.document import InventoryDocument
from kubani.inventory.validated import known_valid, records_dir, remember_valid
from tests.conftest import run_cli

HOSTS = """\
all:
  vars:
    k3s_version: v1.35.4+k3s1
  children:
    control_plane:
      hosts:
        cp-1: {tailscale_ip: 100.64.0.1}
    workers:
      hosts:
        w-1: {tailscale_ip: 100.64.0.2}
"""


@pytest.fixture(autouse=True)
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def _checked(tmp_path: Path, text: str = HOSTS) -> Path:
    hosts = tmp_path / "inventory" / "hosts.yml"
    hosts.parent.mkdir(exist_ok=True)
    hosts.write_text(text)
    document = InventoryDocument(hosts)
    _inventory, problems = document.validate()
    assert not problems.errors
    remember_valid(document)
    return hosts


def test_an_inventory_is_known_valid_until_it_changes(tmp_path: Path) -> None:
    hosts = tmp_path / "inventory" / "hosts.yml"
    hosts.parent.mkdir()
    hosts.write_text(HOSTS)
    assert not known_valid(hosts)
    _checked(tmp_path)
    assert known_valid(hosts)
    [record] = records_dir().iterdir()
    assert record.stat().st_mode & 0o077 == 0
    hosts.write_text(HOSTS.replace("100.64.0.2", "100.64.0.3"))
    assert not known_valid(hosts)
    hosts.write_text(HOSTS)
    assert known_valid(hosts)


def test_a_variables_file_added_edited_or_removed_makes_it_check(tmp_path: Path) -> None:
    hosts = _checked(tmp_path)
    group_vars = hosts.parent / "group_vars"
    (group_vars / "workers").mkdir(parents=True)
    (group_vars / "workers" / "more.yml").write_text("reserved_cpu: 500m\n")
    assert not known_valid(hosts)
    _checked(tmp_path)
    assert known_valid(hosts)
    (group_vars / "workers" / "more.yml").write_text("reserved_cpu: lots\n")
    assert not known_valid(hosts)
    (group_vars / "workers" / "more.yml").unlink()
    assert not known_valid(hosts)


def test_other_code_or_a_damaged_record_makes_it_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hosts = _checked(tmp_path)
    assert known_valid(hosts)
    [record] = records_dir().iterdir()
    monkeypatch.setattr(validated, "_code", lambda: "another release")
    assert not known_valid(hosts)
    monkeypatch.undo()
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    for damaged in ("", "{", "[]", json.dumps({"files": []}), json.dumps({"files": {"x": 1}})):
        record.write_text(damaged)
        assert not known_valid(hosts)


def test_vaulted_values_are_never_recorded(tmp_path: Path) -> None:
    vaulted = HOSTS.replace(
        "    k3s_version: v1.35.4+k3s1\n",
        "    k3s_version: v1.35.4+k3s1\n    k3s_token: !vault |\n"
        "      $ANSIBLE_VAULT;1.1;AES256\n      6162\n",
    )
    hosts = tmp_path / "inventory" / "hosts.yml"
    hosts.parent.mkdir()
    hosts.write_text(vaulted)
    remember_valid(InventoryDocument(hosts))
    assert not known_valid(hosts)
    assert not records_dir().exists() or not any(records_dir().iterdir())


def test_provision_refuses_an_inventory_broken_after_a_good_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The record never lets an edited inventory through unchecked."""
    hosts = _checked(tmp_path)
    monkeypatch.chdir(tmp_path)
    hosts.write_text(HOSTS.replace("100.64.0.2", "not-an-address"))
    result = run_cli("-i", str(hosts), "provision", "--json")
    assert result.code == 1
    assert "has 1 error(s)" in result.stderr and "not-an-address" in result.stderr


def test_a_known_inventory_is_passed_without_loading_the_models(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    hosts = _checked(tmp_path)
    probe = (
        "import sys; from kubani.inventory.validated import known_valid; "
        f"assert known_valid(__import__('pathlib').Path({str(hosts)!r})); "
        "assert 'pydantic' not in sys.modules and 'kubani.models.inventory' not in sys.modules"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        env=dict(os.environ),
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def test_a_recorded_file_turned_into_a_fifo_is_not_read(tmp_path: Path) -> None:
    """A FIFO would never end: the record sends it to the full check, which refuses it."""
    import os

    hosts = _checked(tmp_path)
    variables = hosts.parent / "group_vars" / "all.yml"
    variables.parent.mkdir()
    variables.write_text("k3s_version: v1.35.4+k3s1\n")
    _checked(tmp_path)
    assert known_valid(hosts)
    variables.unlink()
    os.mkfifo(variables)
    assert not known_valid(hosts)
