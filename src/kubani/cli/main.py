"""The ``cluster-mgr`` entry point: one Typer app, errors as one line, exit codes 0/1/2/130."""

import copy
import importlib
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from kubani.cli.state import options

# Where each command lives: top-level commands by name, groups by their name. A run builds
# only the command it runs (Typer reads every command's parameters when it builds the tree,
# which is most of the start-up); help and unknown names get the whole tree.
# tests/unit/test_cli_tree.py checks these tables against the modules.
COMMAND_MODULES: dict[str, str] = {
    "version": "version",
    "discover": "discover",
    "add-node": "nodes",
    "remove-node": "nodes",
    "config-get": "config",
    "config-set": "config",
    "validate": "validate",
    "provision": "provision",
    "upgrade": "lifecycle",
    "backup": "lifecycle",
    "restore": "lifecycle",
    "reset": "lifecycle",
    "status": "status",
    "kubeconfig": "kubeconfig",
    "doctor": "doctor",
    "init": "init",
}
GROUP_MODULES: dict[str, str] = {
    "lab": "lab",
    "gitops": "gitops",
    "app": "apps",
    "secrets": "secrets",
    "inventory": "inventory",
    "tailnet": "tailnet",
    "node": "node",
}
_GLOBAL_WITH_VALUE = frozenset({"-i", "--inventory", "--vault-password-file"})


def build_app(command: str | None = None, *, outline: bool = False) -> typer.Typer:
    """The CLI with every command, or with only ``command`` (a top-level name).

    ``outline``: every command as the CLI's own help lists it (name, help, group), without
    their parameters, which Typer would otherwise read for each of them."""
    app = typer.Typer(
        name="cluster-mgr",
        help="Manage a K3s cluster of your own machines on a Tailscale tailnet.",
        rich_markup_mode=None,
        pretty_exceptions_enable=False,
        no_args_is_help=True,
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    app.callback()(_global_options)
    added: set[str] = set()
    for name, module in COMMAND_MODULES.items():
        if command in (None, name) and module not in added:
            added.add(module)
            app.add_typer(_outline(_module(module).app) if outline else _module(module).app)
    for name, module in GROUP_MODULES.items():
        if command in (None, name):
            group = _module(module).app
            app.add_typer(_outline(group, commands=False) if outline else group, name=name)
    return app


def _outline(app: typer.Typer, *, commands: bool = True) -> typer.Typer:
    """``app`` with parameterless stand-ins for its commands (``commands``), or none."""
    outline = copy.copy(app)
    outline.registered_groups = []
    outline.registered_commands = []
    if commands:
        for info in app.registered_commands:
            stand_in = copy.copy(info)
            if info.callback is not None:
                stand_in.callback = _parameterless(info.callback)
            outline.registered_commands.append(stand_in)
    return outline


def _parameterless(callback: Callable[..., Any]) -> Callable[[], None]:
    def listed() -> None:
        raise AssertionError("an outline's commands are listed, never run")

    listed.__name__ = callback.__name__
    listed.__doc__ = callback.__doc__
    return listed


def _asks_for_the_whole_help(args: list[str]) -> bool:
    """The run only prints the CLI's own help (or its usage error): no command runs, and
    no shell is asking to complete a command's options."""
    completing = "_CLUSTER_MGR_COMPLETE" in os.environ
    return not completing and _command_name(args) is None


def _module(name: str) -> Any:
    return importlib.import_module(f"kubani.cli.{name}")


def _command_name(args: list[str]) -> str | None:
    """The top-level command in ``args`` (global options already in front), if it is one."""
    index = 0
    while index < len(args) and args[index].startswith("-"):
        if args[index] in ("-h", "--help"):
            return None  # the whole CLI's help, which lists every command
        index += 2 if args[index] in _GLOBAL_WITH_VALUE else 1
    if index < len(args) and (args[index] in COMMAND_MODULES or args[index] in GROUP_MODULES):
        return args[index]
    return None


def _global_options(
    inventory: Annotated[
        Path | None,
        typer.Option(
            "--inventory",
            "-i",
            help="Inventory file (default: $KUBANI_INVENTORY, else ansible/inventory/hosts.yml "
            "in this folder or one above).",
            show_default=False,
        ),
    ] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
    vault_password_file: Annotated[
        Path | None,
        typer.Option(
            "--vault-password-file",
            help="Ansible Vault password file (or script) for the inventory's !vault values "
            "(default: $ANSIBLE_VAULT_PASSWORD_FILE); passed on to Ansible too.",
            show_default=False,
        ),
    ] = None,
) -> None:
    options.inventory = inventory
    options.debug = debug or options.debug
    if vault_password_file is not None:
        import os

        from kubani.inventory.vault import PASSWORD_FILE_ENV

        # Ansible reads the same variable, so playbooks run from here open the same values.
        os.environ[PASSWORD_FILE_ENV] = str(vault_password_file.expanduser().resolve())


def run() -> None:
    from kubani.cli.argv import hoist_global_options
    from kubani.cli.output import error
    from kubani.errors import KubaniError

    args = hoist_global_options(sys.argv[1:])
    try:
        app = build_app(_command_name(args), outline=_asks_for_the_whole_help(args))
        app(args=args, prog_name="cluster-mgr")
    except KubaniError as exc:
        if options.debug:
            import traceback

            traceback.print_exc()
        error(exc.line())
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        sys.exit(130)
    except Exception as exc:
        if options.debug:
            raise
        error(
            f"internal error: {type(exc).__name__}: {exc} (run again with --debug for the "
            "traceback, and report it)"
        )
        sys.exit(1)
