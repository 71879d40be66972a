"""Habits from kubectl and the original tool: global options after the command, short flags,
playbook names with .yml."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from kubani.cli.argv import hoist_global_options
from kubani.cli.provision import Playbook, _playbook
from tests.conftest import CliResult

Cli = Callable[..., CliResult]


@pytest.mark.parametrize(
    ("typed", "parsed"),
    [
        (["validate", "-i", "h.yml"], ["-i", "h.yml", "validate"]),
        (
            ["validate", "--inventory=h.yml", "--debug"],
            ["--inventory=h.yml", "--debug", "validate"],
        ),
        (["status", "-ih.yml", "--json"], ["-ih.yml", "status", "--json"]),
        (["-i", "h.yml", "status"], ["-i", "h.yml", "status"]),
        (["lab", "ssh", "cp-1", "--", "ls", "-i"], ["lab", "ssh", "cp-1", "--", "ls", "-i"]),
        (["validate", "-i"], ["validate", "-i"]),  # missing value: the parser says so
    ],
)
def test_global_options_are_taken_wherever_they_are_typed(
    typed: list[str], parsed: list[str]
) -> None:
    assert hoist_global_options(typed) == parsed


def test_validate_with_the_inventory_after_the_command(cli: Cli, inventory: Path) -> None:
    result = cli("validate", "-i", inventory, "--json")
    assert result.code == 0, result.stderr
    assert result.json()["nodes"] >= 1


def test_playbook_names_with_or_without_yml() -> None:
    for typed in ("site", "site.yml", "playbooks/site.yml", "site.yaml"):
        assert _playbook(typed) is Playbook.site
    import typer

    with pytest.raises(typer.BadParameter, match=r"'nosuch\.yml' is not one of site"):
        _playbook("nosuch.yml")


def test_short_flags(cli: Cli) -> None:
    for command, flags in (
        (["discover"], ("-s, --source", "-f, --filter")),
        (["add-node"], ("-r, --role",)),
        (["provision"], ("-l, --limit", "-t, --tags", "-e, --extra-vars", "-p, --playbook")),
        (["kubeconfig"], ("-c, --context", "-o, --output")),
    ):
        shown = cli(*command, "--help")
        assert shown.code == 0
        for flag in flags:
            assert flag in shown.stdout, (command, flag)
