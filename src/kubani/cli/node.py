"""``cluster-mgr node``: a workstation owner's word to its guard (hold, release, auto)."""

from pathlib import Path
from typing import Annotated

import typer

from kubani.vocabulary import GuardOverride

app = typer.Typer(
    help="Tell a workstation's guard to keep the cluster off it, let it in, or decide itself.",
    no_args_is_help=True,
)

NodeArgument = Annotated[str, typer.Argument(help="The node (its name in the cluster).")]
KubeconfigOption = Annotated[
    Path | None, typer.Option("--kubeconfig", help="Kubeconfig (default: provision's).")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]


def _set(node: str, override: GuardOverride | None, kubeconfig: Path | None, json: bool) -> None:
    import asyncio

    from kubani.cli.common import read_inventory
    from kubani.cli.output import emit_json, success
    from kubani.cluster.gather import kubeconfig_for
    from kubani.operations.guard import set_override

    config = kubeconfig_for(read_inventory(), kubeconfig)
    held = asyncio.run(set_override(config, node, override))
    if json:
        emit_json({"node": node, "override": override.value if override else None,
                   "held_since": held.since or None if held else None})  # fmt: skip
        return
    said = {
        GuardOverride.HOLD: "the cluster stays off it (running pods stay; new ones go elsewhere)",
        GuardOverride.RELEASE: "the cluster may use it, whatever its guard sees",
        None: "its guard decides again from what it sees",
    }[override]
    success(f"{node}: {said}; the guard acts on its next poll")


@app.command("hold")
def hold(node: NodeArgument, kubeconfig: KubeconfigOption = None, json: JsonOption = False) -> None:
    """Keep the cluster off this workstation until `node auto` (or `node release`)."""
    _set(node, GuardOverride.HOLD, kubeconfig, json)


@app.command("release")
def release(
    node: NodeArgument, kubeconfig: KubeconfigOption = None, json: JsonOption = False
) -> None:
    """Let the cluster use this workstation even while its owner is on it."""
    _set(node, GuardOverride.RELEASE, kubeconfig, json)


@app.command("auto")
def auto(node: NodeArgument, kubeconfig: KubeconfigOption = None, json: JsonOption = False) -> None:
    """Drop the owner's word: the guard decides from sessions and GPU use again."""
    _set(node, None, kubeconfig, json)
