"""``cluster-mgr kubeconfig``: fetch the admin kubeconfig from a control plane."""

import os
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer()

K3S_KUBECONFIG = "/etc/rancher/k3s/k3s.yaml"


def _fetch(inventory: Path, host: str) -> str:
    """K3s's kubeconfig from ``host`` over Ansible's connection."""
    import base64

    from kubani.ansible.adhoc import run_module
    from kubani.errors import KubaniError

    run = run_module(inventory, host, "ansible.builtin.slurp", f"src={K3S_KUBECONFIG}", True)
    result = run.ok.get(host) or {}
    if "content" not in result:
        raise KubaniError(
            f"cannot fetch the kubeconfig from {host}",
            run.failed.get(host) or f"ansible ended with status {run.status}",
            "check that K3s runs there (`cluster-mgr status`) and that SSH works",
        )
    return base64.b64decode(result["content"]).decode()


@app.command()
def kubeconfig(
    merge: Annotated[
        bool, typer.Option("--merge", help="Also merge it into your kubeconfig.")
    ] = False,
    context: Annotated[
        str | None,
        typer.Option("--context", "-c", help="Name of the context (default: the cluster name)."),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Where to write it (default: where provision does)."),
    ] = None,
    into: Annotated[
        Path | None,
        typer.Option(
            "--into",
            help="Kubeconfig to merge into (default: first of $KUBECONFIG, else ~/.kube/config).",
        ),
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Fetch the admin kubeconfig from the first control plane, pointed at its tailnet
    address (or api_endpoint), and write it 0600."""
    from kubani.cli.common import read_inventory
    from kubani.cli.output import emit_json, success
    from kubani.cluster.gather import inventory_nodes, kubeconfig_for
    from kubani.errors import KubaniError
    from kubani.inventory.store import atomic_write, inventory_lock
    from kubani.kube import kubeconfig as kc
    from kubani.models.cluster import K3S_API_PORT

    document = read_inventory()
    settings = document.scope_vars("all")
    control_planes = [n for n in inventory_nodes(document) if n.role == "control-plane"]
    if not control_planes:
        raise KubaniError(
            "cannot fetch a kubeconfig", "the inventory has no control plane", "add one"
        )
    first = control_planes[0]
    endpoint = settings.get("api_endpoint") or first.tailscale_ip
    name = context or document.cluster_name
    fetched = kc.parse(_fetch(document.hosts_path, first.name), f"{first.name}:{K3S_KUBECONFIG}")
    config = kc.rewrite(fetched, f"https://{endpoint}:{K3S_API_PORT}", name)
    target = (
        output
        or kubeconfig_for(document, None)
        or (Path.home() / ".kube" / f"kubani-{document.cluster_name}.yaml")
    )
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    atomic_write(target, kc.dump(config).encode(), backup=False, mode=0o600)
    merged_into = None
    if merge:
        env_paths = [p for p in os.environ.get("KUBECONFIG", "").split(os.pathsep) if p]
        merged_into = into or (Path(env_paths[0]) if env_paths else Path.home() / ".kube/config")
        merged_into.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with inventory_lock(merged_into):
            existing = (
                kc.load_round_trip(merged_into.read_text(), str(merged_into))
                if merged_into.exists()
                else {}
            )
            merged = kc.dump_round_trip(kc.merge(existing, config)).encode()
            atomic_write(merged_into, merged, backup=True, mode=0o600)
    if json_output:
        emit_json(
            {
                "kubeconfig": str(target),
                "context": name,
                "server": f"https://{endpoint}:{K3S_API_PORT}",
                "merged_into": str(merged_into) if merged_into else None,
            }
        )
        return
    success(f"wrote {target} (0600): context {name!r}, server https://{endpoint}:6443")
    if merged_into:
        success(f"merged context {name!r} into {merged_into}")
