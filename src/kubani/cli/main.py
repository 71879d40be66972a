"""The ``cluster-mgr`` entry point: one Typer app, errors as one line, exit codes 0/1/2/130."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from kubani.cli import (
    apps,
    config,
    discover,
    doctor,
    gitops,
    init,
    inventory,
    kubeconfig,
    lab,
    lifecycle,
    nodes,
    provision,
    secrets,
    status,
    tailnet,
    validate,
    version,
)
from kubani.cli.state import options

app = typer.Typer(
    name="cluster-mgr",
    help="Manage a K3s cluster of your own machines on a Tailscale tailnet.",
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)
for module in (
    version,
    discover,
    nodes,
    config,
    validate,
    provision,
    lifecycle,
    status,
    kubeconfig,
    doctor,
    init,
):
    app.add_typer(module.app)
app.add_typer(lab.app, name="lab")
app.add_typer(gitops.app, name="gitops")
app.add_typer(apps.app, name="app")
app.add_typer(secrets.app, name="secrets")
app.add_typer(inventory.app, name="inventory")
app.add_typer(tailnet.app, name="tailnet")


@app.callback()
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


def _print_error(message: str) -> None:
    from kubani.cli.output import console

    console(stderr=True).print(f"[bold red]error:[/] {_escape(message)}")


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def run() -> None:
    from kubani.cli.argv import hoist_global_options
    from kubani.errors import KubaniError

    try:
        app(args=hoist_global_options(sys.argv[1:]), prog_name="cluster-mgr")
    except KubaniError as exc:
        if options.debug:
            import traceback

            traceback.print_exc()
        _print_error(exc.line())
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        sys.exit(130)
    except Exception as exc:
        if options.debug:
            raise
        _print_error(
            f"internal error: {type(exc).__name__}: {exc} (run again with --debug for the "
            "traceback, and report it)"
        )
        sys.exit(1)
