"""Helpers that several commands share."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from kubani.cli.state import options

if TYPE_CHECKING:
    from kubani.inventory.document import InventoryDocument
    from kubani.operations.bootstrap import BootstrapTarget, Joined


def inventory_path() -> Path:
    from kubani.inventory.locate import find_inventory

    return find_inventory(options.inventory)


def read_inventory() -> InventoryDocument:
    from kubani.inventory.document import InventoryDocument

    return InventoryDocument(inventory_path())


def confirm_by_name(action: str, warning: str, name: str, yes: bool) -> None:
    """Ask the user to type ``name`` before something that cannot be undone; ``--yes``
    skips the question, and without a terminal to ask on it must be given."""
    import sys

    import typer

    from kubani.errors import KubaniError

    if yes:
        return
    if not sys.stdin.isatty():
        raise KubaniError(
            f"{action} needs a confirmation",
            "there is no terminal to ask on",
            "pass --yes to confirm in a script",
        )
    typed = typer.prompt(f"{warning}\nType {name!r} to confirm", err=True)
    if typed.strip() != name:
        raise KubaniError(f"{action} cancelled", f"{typed.strip()!r} is not {name!r}", None)


def request_for(playbook: str, extravars: dict[str, Any] | None = None, **kwargs: Any) -> Any:
    from kubani.ansible.project import ansible_dir
    from kubani.ansible.runner import PlaybookRequest
    from kubani.cli.common import inventory_path

    inventory = inventory_path()
    return PlaybookRequest(
        playbook=playbook,
        inventory=inventory,
        project=ansible_dir(near=inventory.parent),
        extravars=extravars or {},
        **kwargs,
    )


def validated_inventory() -> None:
    """Refuse to run against an inventory with errors (nothing would go well)."""
    from kubani.cli.common import read_inventory
    from kubani.errors import KubaniError
    from kubani.inventory.validated import known_valid, remember_valid

    if known_valid(inventory_path()):
        return
    document = read_inventory()
    _inventory, problems = document.validate()
    if problems.errors:
        first = problems.errors[0]
        raise KubaniError(
            f"the inventory {document.hosts_path} has {len(problems.errors)} error(s)",
            f"{first.where}: {first.message}",
            "run `cluster-mgr validate` and fix them",
        )
    remember_valid(document)


def bootstrap_over_ssh(
    targets: list[BootstrapTarget],
    inventory: Path | None,
    near: Path,
    tags: list[str] | None = None,
    login_server: str | None = None,
    timeout: float = 10.0,
) -> list[Joined]:
    """Bring machines reached by SSH onto the tailnet (--bootstrap-ssh): mint a key, run
    join_tailnet.yml with the live view, and return where each joined. ``inventory`` (when
    there is one) gives the connection settings; the ansible/ folder is found ``near``."""
    from kubani.ansible.project import ansible_dir
    from kubani.cli.output import note, warn
    from kubani.cli.playbook_view import execute, print_failures
    from kubani.operations.bootstrap import (
        default_login_server,
        join_credentials,
        keep_servers_from_expiring,
        mint_join_key,
        prepared_join,
        revoke_join_keys,
        trust_host_keys,
        wait_until_reachable,
    )
    from kubani.vocabulary import DEFAULT_NODE_TAGS

    tags = tags or list(DEFAULT_NODE_TAGS)
    source = join_credentials()
    keys = {t.hostname: mint_join_key(source, tags, timeout) for t in targets}
    names = ", ".join(keys)
    note(f"minted single-use join keys for {names} ({', '.join(tags)}, from {source})")
    server = login_server or default_login_server(source)
    try:
        with prepared_join(ansible_dir(near=near), inventory, targets, keys, tags, server) as join:
            run = execute(join.request, json_lines=False, observe=join.observe)
            if not run.state.succeeded:
                print_failures(run.state)
            joined = join.joined(run)
    finally:
        for problem in revoke_join_keys(source, keys):
            warn(f"could not take back a join key ({problem}); it expires 30 minutes after minting")
    for problem in keep_servers_from_expiring(source, joined):
        warn(f"key expiry is still on for {problem}; turn it off in the admin console")
    for done in trust_host_keys(joined):
        note(done)
    for machine in wait_until_reachable(joined):
        warn(
            f"{machine.hostname} joined the tailnet at {machine.address}, but this machine "
            f"cannot reach its SSH port there (port {machine.ssh_port}); check that this "
            "machine is on the same tailnet (`tailscale status`) and that the tailnet policy "
            "lets it in (`cluster-mgr tailnet check`)"
        )
    for machine in joined:
        note(f"{machine.hostname} is on the tailnet at {machine.address}")
    return joined
