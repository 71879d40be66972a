"""The command tree a run builds: only the command that runs, the whole tree for help; and
what the fast paths (help, discovery) import."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest
import typer

from kubani.cli import main
from tests.conftest import run_cli

CLI_SOURCES = Path(main.__file__).parent


def _tree(app: typer.Typer) -> dict[str, str]:
    """Top-level command names and the module each comes from (groups: their commands')."""
    group = typer.main.get_command(app)
    assert isinstance(group, typer.core.TyperGroup)
    found = {}
    for name, command in group.commands.items():
        if isinstance(command, typer.core.TyperGroup):
            modules = {c.callback.__module__ for c in command.commands.values() if c.callback}
            assert len(modules) == 1, (name, modules)
            found[name] = modules.pop()
        else:
            assert command.callback is not None
            found[name] = command.callback.__module__
    return found


def test_the_tables_name_every_command_and_where_it_lives() -> None:
    """COMMAND_MODULES and GROUP_MODULES against the commands the modules define: a command
    added to a module but not to the tables would be missing from single-command runs."""
    whole = _tree(main.build_app())
    tables = {**main.COMMAND_MODULES, **main.GROUP_MODULES}
    assert whole == {name: f"kubani.cli.{module}" for name, module in tables.items()}


@pytest.mark.parametrize("name", [*main.COMMAND_MODULES, *main.GROUP_MODULES])
def test_a_run_builds_its_own_command_only(name: str) -> None:
    built = _tree(main.build_app(name))
    module = {**main.COMMAND_MODULES, **main.GROUP_MODULES}[name]
    assert name in built
    assert set(built.values()) == {f"kubani.cli.{module}"}


def _help(app: typer.Typer) -> str:
    group = typer.main.get_command(app)
    with group.make_context("cluster-mgr", [], resilient_parsing=True) as context:
        return group.get_help(context)


def test_the_outline_reads_as_the_whole_tree_in_the_cli_s_help() -> None:
    """The root's help is built from an outline (no command's parameters read): what it
    prints must be what the whole tree would print, hidden commands and groups included."""
    outline, whole = _help(main.build_app(outline=True)), _help(main.build_app())
    assert outline == whole
    assert all(f"  {name} " in outline for name in [*main.COMMAND_MODULES, *main.GROUP_MODULES])


def test_the_outline_s_commands_take_no_parameters_and_never_run() -> None:
    group = typer.main.get_command(main.build_app(outline=True))
    assert isinstance(group, typer.core.TyperGroup)
    command = group.commands["add-node"]
    assert command.params == []
    with pytest.raises(AssertionError, match="never run"):
        assert command.callback is not None
        command.callback()
    # The modules' own apps are untouched: a run of add-node still reads its parameters.
    assert typer.main.get_command(main.build_app("add-node")).commands["add-node"].params


@pytest.mark.parametrize(
    ("args", "env", "outline"),
    [
        (["--help"], {}, True),
        ([], {}, True),
        (["no-such-command"], {}, True),
        (["discover", "--help"], {}, False),
        ([], {"_CLUSTER_MGR_COMPLETE": "complete_bash"}, False),
    ],
)
def test_only_the_root_s_help_uses_the_outline(
    args: list[str], env: dict[str, str], outline: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("_CLUSTER_MGR_COMPLETE", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert main._asks_for_the_whole_help(args) is outline


def test_a_shell_still_completes_a_command_s_options() -> None:
    """Completion runs with no arguments (the words are in the environment): it needs the
    whole tree, not the outline, to know add-node's options."""
    result = run_cli(
        env={"_CLUSTER_MGR_COMPLETE": "complete_bash", "COMP_WORDS": "cluster-mgr add-node --",
             "COMP_CWORD": "2"},
    )  # fmt: skip
    assert result.code == 0, result.stderr
    assert "--role" in result.stdout.split()


@pytest.mark.parametrize(
    ("args", "command"),
    [
        (["discover", "--json"], "discover"),
        (["-i", "hosts.yml", "--debug", "add-node", "w", "100.64.0.9"], "add-node"),
        (["--inventory=hosts.yml", "lab", "up"], "lab"),
        (["--vault-password-file", "pw", "validate"], "validate"),
        (["--help"], None),
        (["--help", "discover"], None),  # the group's help, which lists every command
        ([], None),
        (["no-such-command"], None),  # the whole tree, so the error can suggest names
        (["-i", "discover"], None),  # "discover" is the inventory's value here
    ],
)
def test_the_command_is_found_after_the_global_options(
    args: list[str], command: str | None
) -> None:
    assert main._command_name(args) == command


def test_a_misspelt_command_is_still_named_with_the_choices() -> None:
    result = run_cli("discovr")
    assert result.code == 2
    assert "discovr" in result.stderr and "discover" in result.stderr


def test_command_modules_keep_annotations_evaluated_at_import() -> None:
    """Typer reads every command's annotations each run; with ``from __future__ import
    annotations`` it must eval each one from text (two thirds of ``--help``'s time)."""
    offenders = []
    inspected = {"main", *main.COMMAND_MODULES.values(), *main.GROUP_MODULES.values()}
    for path in sorted(CLI_SOURCES / f"{name}.py" for name in inspected):
        tree = ast.parse(path.read_text())
        for node in tree.body:
            if isinstance(node, ast.ImportFrom) and node.module == "__future__":
                offenders.append(path.name)
    assert offenders == []


def _type_checking_names(tree: ast.Module) -> set[str]:
    hidden: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for statement in node.body:
                if isinstance(statement, ast.Import | ast.ImportFrom):
                    hidden |= {a.asname or a.name.split(".")[0] for a in statement.names}
    return hidden


def _annotations(function: ast.FunctionDef | ast.AsyncFunctionDef) -> list[ast.expr]:
    arguments = function.args
    every = [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs]
    every += [a for a in (arguments.vararg, arguments.kwarg) if a is not None]
    found = [a.annotation for a in every if a.annotation is not None]
    return found + ([function.returns] if function.returns is not None else [])


def test_names_only_type_checkers_import_are_quoted_in_annotations() -> None:
    """Without postponed annotations, an annotation is evaluated when its ``def`` runs (a
    nested one only when its command runs): a name imported for type checkers only must be
    in quotes there, or the command fails with a NameError."""
    offenders = []
    for path in sorted(CLI_SOURCES.glob("*.py")):
        tree = ast.parse(path.read_text())
        if any(isinstance(n, ast.ImportFrom) and n.module == "__future__" for n in tree.body):
            continue
        hidden = _type_checking_names(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                for annotation in _annotations(node):
                    used = {n.id for n in ast.walk(annotation) if isinstance(n, ast.Name)}
                    if used & hidden:
                        offenders.append(f"{path.name}:{node.lineno} {sorted(used & hidden)}")
    assert offenders == []


def _modules_loaded(argv: list[str]) -> set[str]:
    probe = subprocess.run(
        [sys.executable, "-c",
         "import io, contextlib, sys, kubani.cli.main as m\n"
         f"sys.argv = ['cluster-mgr', *{argv!r}]\n"
         "with contextlib.redirect_stdout(io.StringIO()):\n"
         "    try:\n        m.run()\n    except SystemExit:\n        pass\n"
         "print(' '.join(sorted(sys.modules)), file=sys.stderr)"],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    return set(probe.stderr.split()[-2000:])


def test_discovery_as_json_runs_without_pydantic_or_rich(tmp_path: Path) -> None:
    """Reading the tailnet and the inventory's names needs neither the validating models nor
    Rich (each costs about a third of discover's start-up)."""
    status = {
        "BackendState": "Running",
        "Self": {"HostName": "me", "DNSName": "me.ts.net.", "TailscaleIPs": ["100.64.0.1"]},
        "Peer": {"k": {"HostName": "w", "DNSName": "w.ts.net.", "TailscaleIPs": ["100.64.0.2/32"]}},
    }
    (tmp_path / "status.json").write_text(json.dumps(status))
    (tmp_path / "hosts.yml").write_text(
        "all:\n  children:\n    control_plane:\n      hosts:\n"
        "        w:\n          tailscale_ip: 100.64.0.2\n"
    )
    argv = ["-i", str(tmp_path / "hosts.yml"), "discover", "--json"]
    loaded = _modules_loaded([*argv, "--status-file", str(tmp_path / "status.json")])
    assert "kubani.tailscale.discover" in loaded and "kubani.inventory.document" in loaded
    assert not {"pydantic", "rich"} & loaded
    result = run_cli(*argv, "--status-file", tmp_path / "status.json")
    assert result.code == 0, result.stderr
    assert [(p["hostname"], p["in_cluster"]) for p in result.json()] == [
        ("me", False),
        ("w", True),
    ]
