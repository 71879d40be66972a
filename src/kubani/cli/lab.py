"""``cluster-mgr lab``: local nodes on a real tailnet of their own, to try Kubani on one machine."""

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from kubani_lab.lab import Lab

app = typer.Typer(
    help="A local lab of real Debian nodes on a tailnet of its own (headscale; needs root)."
)

NameOption = Annotated[str, typer.Option("--name", help="Lab name (several labs can coexist).")]


def _require_lab() -> None:
    """The lab is its own distribution (kubani-lab), installed beside the product only in a
    checkout's development environment."""
    from importlib.util import find_spec

    from kubani.errors import KubaniError

    if find_spec("kubani_lab") is None:
        raise KubaniError(
            "the lab is not installed",
            "it is a separate package (kubani-lab, lab/ in a Kubani checkout), not part of "
            "cluster-mgr",
            "in a checkout, `uv sync` installs it (the dev group); or `pip install ./lab`",
        )


def _lab(name: str) -> "Lab":
    _require_lab()
    from kubani_lab.lab import Lab

    return Lab(name)


@app.command()
def up(
    nodes: Annotated[int, typer.Option("--nodes", min=1, max=50, help="How many nodes.")] = 3,
    control_planes: Annotated[
        int, typer.Option("--control-planes", min=1, help="How many are control planes.")
    ] = 1,
    gpu_nodes: Annotated[
        int, typer.Option("--gpu-nodes", min=0, help="How many workers get a (stand-in) GPU.")
    ] = 0,
    extra_nodes: Annotated[
        int,
        typer.Option("--extra-nodes", min=0, help="Nodes booted but not in the inventory."),
    ] = 0,
    name: NameOption = "default",
    json_output: Annotated[bool, typer.Option("--json", help="Print the lab as JSON.")] = False,
) -> None:
    """Boot the lab (idempotent) and write its inventory."""
    import time

    from kubani.cli.output import emit_json, note, success

    lab = _lab(name)
    started = time.monotonic()
    state = lab.up(nodes, control_planes, gpu_nodes, extra_nodes, progress=note)
    elapsed = time.monotonic() - started
    if json_output:
        emit_json(
            {
                "inventory": str(lab.inventory),
                "seconds": round(elapsed, 1),
                "image_build_seconds": round(state.image_build_seconds, 1),
                "nodes": lab.status(),
            }
        )
        return
    success(f"lab {name!r} is up: {len(state.nodes)} nodes in {elapsed:.1f} s")
    note(f"inventory: {lab.inventory}")
    note(f"try: cluster-mgr -i {lab.inventory} validate")
    _print_status(lab)


@app.command()
def build(
    json_output: Annotated[bool, typer.Option("--json", help="Print what was built.")] = False,
) -> None:
    """Build the lab's node image (debootstrap) and its real components (tailscale,
    headscale, Kubernetes, KWOK, Flux) from their pinned Go modules, once per machine; later
    labs and test runs reuse the cache."""
    import time
    from collections.abc import Callable
    from functools import partial

    from kubani.cli.output import emit_json, note, success

    _require_lab()
    from kubani_lab.components import COMPONENTS, ensure_built
    from kubani_lab.image import ensure_image
    from kubani_lab.lab import DEFAULT_HOME

    note("image: the Debian root filesystem of the lab's nodes (debootstrap, the first time)")
    steps: list[tuple[str, Callable[[], tuple[Path, float]]]] = [
        ("image", partial(ensure_image, DEFAULT_HOME / "images")),
        *((c.name, partial(ensure_built, c, DEFAULT_HOME / "cache", note)) for c in COMPONENTS),
    ]
    built = {}
    for name, make in steps:
        started = time.monotonic()
        folder, seconds = make()
        built[name] = {
            "folder": str(folder),
            "built_seconds": round(seconds, 1),
            "seconds": round(time.monotonic() - started, 2),
        }
        if not json_output:
            how = f"built in {seconds:.0f} s" if seconds else "cached"
            success(f"{name}: {how} ({folder})")
    if json_output:
        emit_json(built)


@app.command()
def status(
    name: NameOption = "default",
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show the lab's nodes: process, SSH, tailnet state."""
    from kubani.cli.output import emit_json

    lab = _lab(name)
    if json_output:
        emit_json(
            {
                "name": name,
                "inventory": str(lab.inventory),
                "tailnet": lab.tailnet_info(),
                "nodes": lab.status(),
            }
        )
        return
    _print_status(lab)


def _print_status(lab: "Lab") -> None:
    from rich.table import Table

    from kubani.cli.output import console, note

    rows = lab.status()
    if not rows:
        note("no lab is up (run `cluster-mgr lab up`)")
        return
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("NODE", "ROLE", "ADDRESS", "RUNNING", "SSH", "TAILSCALE", "PATH", "MEMORY"):
        table.add_column(column)
    for row in rows:
        memory = f"{row['memory_bytes'] / 2**20:.0f} MiB" if row["memory_bytes"] else "-"
        table.add_row(
            row["name"] + (" (gpu)" if row["gpu"] else ""),
            row["role"],
            row["address"],
            "yes" if row["running"] else "[red]no[/]",
            "yes" if row["ssh"] else "[red]no[/]",
            row["tailscale"],
            row["path"],
            memory,
        )
    console().print(table)


@app.command()
def ssh(
    node: Annotated[str, typer.Argument(help="Lab node name, e.g. cp-1.")],
    command: Annotated[
        list[str] | None, typer.Argument(help="Command to run instead of a shell.")
    ] = None,
    name: NameOption = "default",
) -> None:
    """Open a shell on a lab node (or run a command there)."""
    argv = _lab(name).ssh_command(node)
    if command:
        argv.append(" ".join(command))
    else:
        argv.insert(1, "-t")
    os.execvp(argv[0], argv)


@app.command()
def down(
    name: NameOption = "default",
    json_output: Annotated[bool, typer.Option("--json", help="Print what was removed.")] = False,
) -> None:
    """Stop every node and remove the lab's namespaces, links, bridge and files."""
    from kubani.cli.output import emit_json, success

    result = _lab(name).down()
    if json_output:
        emit_json(result)
    else:
        success(f"lab {name!r} is down ({len(result['stopped_pids'])} nodes stopped)")


@app.command("gitops")
def gitops(
    path: Annotated[Path, typer.Option("--path", help="The GitOps tree to serve.")] = Path(
        "gitops"
    ),
    node: Annotated[str, typer.Option("--node", help="Node that hosts the Git server.")] = "cp-1",
    name: NameOption = "default",
) -> None:
    """Serve a GitOps tree from a Git repository on a lab node (over SSH) and point the
    lab inventory's git_repo_url and deploy key at it."""
    from kubani.cli.output import success
    from kubani.inventory.store import edit_inventory

    lab = _lab(name)
    url, commit = lab.serve_git(path.resolve(), node)
    with edit_inventory(lab.inventory, "cannot point the lab inventory at the Git server") as doc:
        doc.set("git_repo_url", url)
        doc.set("gitops_deploy_key_file", str(lab.key))
    success(f"{path} at {commit[:12]} served as {url}; git_repo_url set in {lab.inventory}")


@app.command("tailscale")
def tailscale_state(
    node: Annotated[str, typer.Argument(help="Lab node name.")],
    state: Annotated[
        str | None,
        typer.Option(
            "--state", help="NeedsLogin (tailscale logout), Stopped (tailscale down), Running."
        ),
    ] = None,
    online: Annotated[
        bool | None,
        typer.Option("--online/--offline", help="Plug the node's LAN link in, or cut it."),
    ] = None,
    relayed: Annotated[
        bool | None,
        typer.Option(
            "--relay/--direct",
            help="Block the node's direct UDP paths (traffic goes through DERP), or allow them.",
        ),
    ] = None,
    expire: Annotated[
        bool, typer.Option("--expire", help="Expire the node's key on the control server.")
    ] = False,
    name: NameOption = "default",
) -> None:
    """Change a node's tailnet for real, to exercise failure paths."""
    from kubani.cli.output import success

    changed = _lab(name).set_tailscale(node, state, online, relayed, expire)
    success(
        f"{changed.name}: {changed.backend_state}, {'online' if changed.online else 'offline'}"
        f", {'direct UDP blocked (relayed)' if changed.relayed else 'direct paths allowed'}"
    )
