"""``upgrade``, ``backup``, ``restore``, ``reset``: the cluster's lifecycle, via playbooks."""

from pathlib import Path
from typing import Annotated

import typer

from kubani.vocabulary import DEFAULT_CLUSTER_NAME, Playbook

app = typer.Typer()

JsonOption = Annotated[
    bool, typer.Option("--json", help="Stream one JSON event per line on stdout.")
]


@app.command()
def upgrade(
    k3s_version: Annotated[
        str, typer.Option("--k3s-version", help="Target release, e.g. v1.35.4+k3s2.")
    ],
    json_output: JsonOption = False,
) -> None:
    """Rolling upgrade: snapshot, then one node at a time (control planes first):
    cordon, drain, upgrade, uncordon."""
    from kubani.cli.common import request_for, validated_inventory
    from kubani.cli.playbook_view import execute, finish
    from kubani.errors import KubaniError
    from kubani.models.cluster import K3S_RELEASE

    if not K3S_RELEASE.match(k3s_version):
        raise KubaniError(
            f"cannot upgrade to {k3s_version!r}",
            "it is not a K3s release name",
            "use the form v1.35.4+k3s2",
        )
    validated_inventory()
    run = execute(request_for(Playbook.UPGRADE, {"k3s_version": k3s_version}), json_output)
    if run.state.succeeded:
        # The inventory is the truth: the next provision installs this release, not the old.
        from kubani.cli.common import inventory_path
        from kubani.cli.output import success
        from kubani.inventory.store import edit_inventory

        with edit_inventory(inventory_path(), "cannot record the new K3s release") as document:
            document.set("k3s_version", k3s_version)
        if not json_output:
            success(f"k3s_version {k3s_version} recorded in {inventory_path()}")
    finish(run, json_output)


@app.command()
def backup(
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="Folder for the snapshot on this machine (default: "
            "~/.local/share/kubani/backups/<cluster>; never inside a Git work tree "
            "unless Git ignores it).",
        ),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Take an etcd snapshot (or copy the SQLite datastore) and fetch it here."""
    from kubani.backups import default_backup_dir, refuse_secrets_in_git
    from kubani.cli.common import read_inventory, request_for, validated_inventory
    from kubani.cli.playbook_view import execute, finish

    validated_inventory()
    if output is None:
        inventory, _ = read_inventory().validate()
        output = default_backup_dir(
            inventory.cluster.cluster_name if inventory else DEFAULT_CLUSTER_NAME
        )
    refuse_secrets_in_git(output)
    output = output.resolve()
    output.mkdir(parents=True, exist_ok=True, mode=0o700)
    run = execute(request_for(Playbook.BACKUP, {"kubani_backup_dir": str(output)}), json_output)
    if run.state.succeeded and not json_output:
        snapshots = sorted(
            (p for p in output.rglob("*") if p.is_file() and p.suffix != ".token"),
            key=lambda p: p.stat().st_mtime,
        )
        if snapshots:
            from kubani.cli.output import success

            success(f"snapshot: {snapshots[-1]}")
    finish(run, json_output)


@app.command()
def restore(
    snapshot: Annotated[Path, typer.Argument(help="A snapshot file taken by `backup`.")],
    json_output: JsonOption = False,
) -> None:
    """Restore the cluster from a snapshot (K3s's cluster-reset procedure)."""
    from kubani.backups import check_restorable
    from kubani.cli.common import read_inventory, request_for, validated_inventory
    from kubani.cli.playbook_view import execute, finish
    from kubani.errors import KubaniError
    from kubani.vocabulary import Role

    if not snapshot.is_file():
        why = "it is not a regular file" if snapshot.exists() else "no such file"
        raise KubaniError(f"cannot restore from {snapshot}", why, "pass a file made by `backup`")
    validated_inventory()
    inventory, _ = read_inventory().validate()
    if inventory is not None:
        planes = sum(1 for node in inventory.nodes if node.role == Role.CONTROL_PLANE)
        check_restorable(snapshot, planes)
    request = request_for(Playbook.RESTORE, {"kubani_restore_file": str(snapshot.resolve())})
    finish(execute(request, json_output), json_output)


@app.command()
def reset(
    yes: Annotated[
        bool, typer.Option("--yes", help="Do not ask; for scripts (the cluster name is used).")
    ] = False,
    json_output: JsonOption = False,
) -> None:
    """Uninstall K3s from every node. Asks for the cluster name to confirm."""
    from kubani.cli.common import confirm_by_name, read_inventory, request_for, validated_inventory
    from kubani.cli.playbook_view import execute, finish

    validated_inventory()
    name = read_inventory().cluster_name
    confirm_by_name(
        "reset",
        f"This uninstalls K3s from every node of {name!r} and deletes its data.",
        name,
        yes,
    )
    finish(
        execute(request_for(Playbook.RESET, {"kubani_reset_confirm": name}), json_output),
        json_output,
    )
