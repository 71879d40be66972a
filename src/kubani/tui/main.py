"""``cluster-tui``: options are parsed before Textual is imported, so --help is fast."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from kubani.vocabulary import DEFAULT_CLUSTER_NAME

if TYPE_CHECKING:
    from kubani.tui.app import ClusterApp


def parser() -> argparse.ArgumentParser:
    parse = argparse.ArgumentParser(
        prog="cluster-tui",
        description="A live view of a Kubani cluster: nodes (with their tailnet paths), "
        "workloads, Flux and events.",
    )
    parse.add_argument("--kubeconfig", type=Path, help="kubeconfig (default: provision's)")
    parse.add_argument("--context", help="kubeconfig context")
    parse.add_argument("--namespace", "-n", help="show one namespace")
    parse.add_argument(
        "--refresh", type=float, default=5.0, metavar="SECONDS", help="poll interval (default 5)"
    )
    parse.add_argument(
        "--inventory", "-i", type=Path, help="inventory: also show nodes that never joined"
    )
    parse.add_argument("--tailscale-bin", help="tailscale CLI for tailnet paths")
    parse.add_argument("--debug", action="store_true", help="tracebacks on errors")
    return parse


def run() -> None:
    args = parser().parse_args()
    if args.refresh <= 0:
        parser().error("--refresh must be positive")
    from kubani.errors import KubaniError

    try:
        app = build_app(args)
    except KubaniError as exc:
        if args.debug:
            raise
        sys.stderr.write(f"error: {exc.line()}\n")
        sys.exit(exc.exit_code)
    try:
        app.run()
    except KeyboardInterrupt:
        sys.exit(130)


def build_app(args: argparse.Namespace) -> ClusterApp:
    from kubani.cluster.gather import api_alternatives, inventory_nodes, kubeconfig_for
    from kubani.cluster.live import KubeSource
    from kubani.errors import KubaniError
    from kubani.inventory.document import InventoryDocument
    from kubani.inventory.locate import find_inventory
    from kubani.tailscale.discover import DiscoveryOptions
    from kubani.tui.app import ClusterApp

    document = None
    try:
        document = InventoryDocument(find_inventory(args.inventory))
    except KubaniError:
        if args.inventory is not None:
            raise
    kubeconfig = kubeconfig_for(document, args.kubeconfig) if document else args.kubeconfig
    name = document.cluster_name if document else DEFAULT_CLUSTER_NAME
    discovery = DiscoveryOptions(tailscale_bin=args.tailscale_bin)
    source = KubeSource(kubeconfig, args.context, name, discovery, api_alternatives(document))
    inventory = inventory_nodes(document) if document and args.inventory else []
    return ClusterApp(source, args.refresh, args.namespace, inventory)
