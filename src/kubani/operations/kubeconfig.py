"""Fetching the cluster's admin kubeconfig: from the first control plane over Ansible's
connection, pointed at the tailnet address (or ``api_endpoint``), written 0600, and merged
into a user's kubeconfig without disturbing anyone else's entries."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kubani import userfiles
from kubani.errors import KubaniError
from kubani.kube.kubeconfig import K3S_KUBECONFIG
from kubani.models.cluster import K3S_API_PORT
from kubani.vocabulary import Role

if TYPE_CHECKING:
    from kubani.inventory.document import InventoryDocument


@dataclass(frozen=True)
class FetchedKubeconfig:
    written: Path
    context: str
    server: str
    merged_into: Path | None


def _fetch(inventory: Path, host: str) -> str:
    """K3s's kubeconfig from ``host`` over Ansible's connection (read-only)."""
    import base64

    from kubani.ansible.adhoc import run_module

    run = run_module(inventory, host, "ansible.builtin.slurp", f"src={K3S_KUBECONFIG}", True)
    result = run.ok.get(host) or {}
    if "content" not in result:
        raise KubaniError(
            f"cannot fetch the kubeconfig from {host}",
            run.failed.get(host) or run.why,
            "check that K3s runs there (`cluster-mgr status`) and that SSH works",
        )
    return base64.b64decode(result["content"]).decode()


def _merge(config: dict[str, Any], into: Path) -> None:
    from kubani.inventory.store import atomic_write, inventory_lock
    from kubani.kube import kubeconfig as kc

    into.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with inventory_lock(into):
        existing = kc.load_round_trip(userfiles.read_text(into), str(into)) if into.exists() else {}
        merged = kc.dump_round_trip(kc.merge(existing, config)).encode()
        atomic_write(into, merged, backup=True, mode=0o600)


def fetch_kubeconfig(
    document: InventoryDocument,
    target: Path,
    context: str | None = None,
    merge_into: Path | None = None,
) -> FetchedKubeconfig:
    """The admin kubeconfig of the inventory's first control plane, written to ``target``
    (0600) and, with ``merge_into``, merged there too."""
    from kubani.cluster.gather import inventory_nodes
    from kubani.inventory.store import atomic_write
    from kubani.kube import kubeconfig as kc

    control_planes = [n for n in inventory_nodes(document) if n.role == Role.CONTROL_PLANE]
    if not control_planes:
        raise KubaniError(
            "cannot fetch a kubeconfig", "the inventory has no control plane", "add one"
        )
    first = control_planes[0]
    endpoint = document.scope_vars("all").get("api_endpoint") or first.tailscale_ip
    server = f"https://{endpoint}:{K3S_API_PORT}"
    name = context or document.cluster_name
    fetched = kc.parse(_fetch(document.hosts_path, first.name), f"{first.name}:{K3S_KUBECONFIG}")
    config = kc.rewrite(fetched, server, name)
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    atomic_write(target, kc.dump(config).encode(), backup=False, mode=0o600)
    if merge_into is not None:
        _merge(config, merge_into)
    return FetchedKubeconfig(target, name, server, merge_into)
