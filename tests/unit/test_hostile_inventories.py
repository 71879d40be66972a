"""Inventories nobody here wrote: each gets a clear message, never an internal error."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import run_cli


def _bomb(levels: int = 9) -> str:
    lines = ['a0: &a0 ["x","x","x","x","x","x","x","x","x"]']
    for level in range(1, levels):
        lines.append(f"a{level}: &a{level} [" + ",".join([f"*a{level - 1}"] * 9) + "]")
    body = "\n".join(f"    {line}" for line in lines)
    return (
        f"all:\n  vars:\n{body}\n  children:\n    control_plane:\n      hosts:\n"
        "        cp-1: {tailscale_ip: 100.64.0.2}\n"
    )


def test_an_alias_bomb_is_refused_before_anything_expands_it(tmp_path: Path) -> None:
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(_bomb())
    result = run_cli("-i", inventory, "validate", "--json", timeout=30)
    assert result.code == 1
    assert "aliases expand to more than 1,000,000 values" in result.stderr
    assert result.stdout == ""  # nothing half-written


def test_a_few_aliases_are_fine(tmp_path: Path) -> None:
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(_bomb(levels=3))  # 729 values
    result = run_cli("-i", inventory, "validate", timeout=30)
    assert result.code == 0, result.stderr
    assert "aliases expand" not in result.stderr


def test_host_names_are_shown_as_written_not_as_markup(tmp_path: Path) -> None:
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(
        'all:\n  children:\n    control_plane:\n      hosts:\n        "[bold red]cp[/]": {}\n'
    )
    result = run_cli("-i", inventory, "validate", timeout=30)
    assert result.code == 1
    assert "hosts.[bold red]cp[/].tailscale_ip" in result.stdout + result.stderr


def test_a_folder_without_an_inventory_says_so(tmp_path: Path) -> None:
    folder = tmp_path / "inventory.yml"
    folder.mkdir()
    result = run_cli("-i", folder, "validate", timeout=30)
    assert result.code == 1
    assert "names a folder, and it holds no hosts.yml" in result.stderr


def test_a_file_only_libyaml_reads_is_refused_for_edits_and_left_alone(tmp_path: Path) -> None:
    # A tab after a key: libyaml (what validates) takes it, ruamel (the comment-keeping
    # editor, which a flow-style group needs) does not.
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(
        "all:\n  vars:\n    note: \t\n  children:\n    control_plane:\n"
        "      hosts: {cp-1: {tailscale_ip: 100.64.0.2}}\n"
    )
    before = inventory.read_bytes()
    assert run_cli("-i", inventory, "validate", timeout=30).code == 0
    result = run_cli("-i", inventory, "add-node", "w-1", "100.64.0.3", timeout=30)
    assert result.code == 1
    assert "cannot edit" in result.stderr
    assert "line 3" in result.stderr
    assert "internal error" not in result.stderr
    assert inventory.read_bytes() == before


def _fifo(path: Path) -> None:
    os.mkfifo(path)


def _dev_zero(path: Path) -> None:
    path.symlink_to("/dev/zero")


def _large(path: Path) -> None:
    with path.open("wb") as large:
        large.truncate(65 * 2**20)  # sparse: no disk used


@pytest.mark.parametrize(
    ("make", "said"),
    [(_fifo, "not a regular file"), (_dev_zero, "not a regular file"), (_large, "65 MiB")],
)
def test_files_that_are_not_regular_or_too_large_are_refused_unread(
    tmp_path: Path, make: Callable[[Path], None], said: str
) -> None:
    # Each would hang or exhaust memory if it were read.
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(
        "all:\n  children:\n    control_plane:\n      hosts:\n"
        "        cp-1: {tailscale_ip: 100.64.0.2}\n"
    )
    (tmp_path / "group_vars").mkdir()
    make(tmp_path / "group_vars" / "all.yml")
    result = run_cli("-i", inventory, "validate", timeout=30)
    assert result.code == 1, result.stderr
    assert f"cannot read {tmp_path / 'group_vars' / 'all.yml'}" in result.stderr
    assert said in result.stderr
    make(tmp_path / "named.yml")
    result = run_cli("-i", tmp_path / "named.yml", "validate", timeout=30)
    assert result.code == 1
    assert said in result.stderr


@pytest.mark.parametrize(
    ("body", "reading"),
    [
        ("    control_plane:\n      hosts:\n        123: {tailscale_ip: 100.64.0.2}\n",
         "a host in all.children.control_plane.hosts is read by YAML as a number (123)"),
        ("    control_plane:\n      hosts:\n        yes: {tailscale_ip: 100.64.0.2}\n",
         "a host in all.children.control_plane.hosts is read by YAML as true or false"),
        ("    control_plane:\n      hosts:\n        ~: {tailscale_ip: 100.64.0.2}\n",
         "all.children.control_plane.hosts has a host with no name"),
        ("    2026-01-01:\n      hosts: {}\n",
         "a group in all.children is read by YAML as a date (2026-01-01)"),
    ],
)  # fmt: skip
def test_names_yaml_reads_as_something_else_are_refused_as_ansible_refuses_them(
    tmp_path: Path, body: str, reading: str
) -> None:
    """Unquoted, 123, yes, ~ and dates are not names: before, such a host was listed but its
    variables not found ("tailscale_ip: required" beside the address)."""
    inventory = tmp_path / "hosts.yml"
    inventory.write_text("all:\n  children:\n" + body)
    before = inventory.read_bytes()
    for args in (("validate",), ("add-node", "w-9", "100.64.0.9")):
        result = run_cli("-i", inventory, *args, timeout=30)
        assert result.code == 1, result.stderr
        assert reading in result.stderr and "(fix: " in result.stderr
        assert "internal error" not in result.stderr
    assert inventory.read_bytes() == before
    inventory.write_text(before.decode().replace("123:", "'123':").replace("yes:", "'yes':"))
    if "123" in body or "yes" in body:
        assert run_cli("-i", inventory, "validate", timeout=30).code == 0
