"""Habits from kubectl and the original tool: global options after the command, short flags,
playbook names with .yml."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from kubani.cli.argv import hoist_global_options
from kubani.cli.provision import _playbook
from kubani.vocabulary import Playbook
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
        assert _playbook(typed) is Playbook.SITE
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


def test_help_imports_nothing_heavy() -> None:
    """`cluster-mgr --help` and a sub-command's help load Typer and the command modules only:
    no models, API client, Ansible, Rich rendering or TUI (each costs tens of milliseconds)."""
    import subprocess
    import sys

    heavy = (
        *("pydantic", "lightkube", "httpx", "httpx2", "ansible", "textual"),
        *("ruamel", "yaml", "kubani.models", "kubani.inventory", "kubani.kube", "kubani_lab"),
    )
    for argv in (["--help"], ["provision", "--help"], ["discover", "--help"]):
        probe = subprocess.run(
            [sys.executable, "-c",
             "import sys, kubani.cli.main as m\n"
             f"sys.argv = ['cluster-mgr', *{argv!r}]\n"
             "try:\n    m.run()\nexcept SystemExit:\n    pass\n"
             "print(' '.join(sorted(sys.modules)), file=sys.stderr)"],
            capture_output=True, text=True, check=False, timeout=60,
        )  # fmt: skip
        assert "Usage" in probe.stdout, probe.stderr[-2000:]
        loaded = set(probe.stderr.split())
        assert not [m for m in heavy if m in loaded], (argv, [m for m in heavy if m in loaded])


@pytest.mark.parametrize("command", [["lab", "status"], ["lab", "build"]])
def test_without_the_lab_package_the_lab_command_says_how_to_get_it(command: list[str]) -> None:
    """The lab is its own distribution: where it is not installed (any product install),
    `cluster-mgr lab` says so, as a clear error, not an import traceback."""
    import subprocess
    import sys

    probe = subprocess.run(
        [sys.executable, "-c",
         "import sys\nsys.modules['kubani_lab'] = None  # as if not installed\n"
         f"sys.argv = ['cluster-mgr', *{command!r}]\n"
         "import kubani.cli.main as m\nm.run()"],
        capture_output=True, text=True, check=False, timeout=60, env={"NO_COLOR": "1"},
    )  # fmt: skip
    assert probe.returncode == 1, probe.stderr
    assert "the lab is not installed" in probe.stderr and "pip install ./lab" in probe.stderr
    assert "Traceback" not in probe.stderr
