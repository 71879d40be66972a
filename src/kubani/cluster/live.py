"""What a live view reads from a cluster: lists and watches, and what has to be polled.

``ClusterSource`` is the small async interface the TUI's workers use; ``KubeSource``
implements it over the Kubernetes API (``kubani.kube``) and the tailnet. Tests and
benchmarks give the TUI their own source with fixed data.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from kubani.models.peer import TailscalePeer

if TYPE_CHECKING:
    from kubani.kube.client import Kube

# kind -> collection path. Watched: everything here; polled: metrics, stats, tailnet.
WATCHED = {
    "nodes": "/api/v1/nodes",
    "pods": "/api/v1/pods",
    "events": "/api/v1/events",
    "deployments": "/apis/apps/v1/deployments",
    "statefulsets": "/apis/apps/v1/statefulsets",
    "daemonsets": "/apis/apps/v1/daemonsets",
    "gitrepositories": "/apis/source.toolkit.fluxcd.io/v1/gitrepositories",
    "helmrepositories": "/apis/source.toolkit.fluxcd.io/v1/helmrepositories",
    "kustomizations": "/apis/kustomize.toolkit.fluxcd.io/v1/kustomizations",
    "helmreleases": "/apis/helm.toolkit.fluxcd.io/v2/helmreleases",
}
# Where Flux releases before these API versions serve the same kinds (Flux 2.0-2.2: Helm
# releases at v2beta2 or v2beta1; Flux 0.x: everything at v1beta2), tried in order when the
# newest is not served. The fields Kubani reads (conditions, revisions) are the same.
SERVED_BEFORE = {
    "gitrepositories": ("/apis/source.toolkit.fluxcd.io/v1beta2/gitrepositories",),
    "helmrepositories": ("/apis/source.toolkit.fluxcd.io/v1beta2/helmrepositories",),
    "kustomizations": ("/apis/kustomize.toolkit.fluxcd.io/v1beta2/kustomizations",),
    "helmreleases": (
        "/apis/helm.toolkit.fluxcd.io/v2beta2/helmreleases",
        "/apis/helm.toolkit.fluxcd.io/v2beta1/helmreleases",
    ),
}


def collection_paths(kind: str) -> tuple[str, ...]:
    """Where a kind's objects may be listed, the newest API version first."""
    return (WATCHED[kind], *SERVED_BEFORE.get(kind, ()))


async def list_served(
    kube: Kube, kind: str, shape: Any = None
) -> tuple[list[dict[str, Any]], str, str]:
    """A kind's objects from the first of its paths the API serves: the items, the list's
    resourceVersion, and the path (to watch). The oldest path's 404 when none is served."""
    from kubani.kube.client import KubeError

    *newer, oldest = collection_paths(kind)
    for path in newer:
        try:
            items, version = await kube.list_path(path, shape=shape)
        except KubeError as exc:
            if exc.status != 404:
                raise
            continue
        return items, version, path
    items, version = await kube.list_path(oldest, shape=shape)
    return items, version, oldest


# The collections that grow with the cluster (30,000 pods, more events): listed once the
# others are in, so that the first screen (nodes, workloads, Flux) does not wait on them.
LISTED_LAST = frozenset({"pods", "events"})
# Pings in flight at once (each a short-lived `tailscale ping`).
PING_CONCURRENCY = 8
FLUX_KINDS = {
    "gitrepositories": "GitRepository",
    "helmrepositories": "HelmRepository",
    "kustomizations": "Kustomization",
    "helmreleases": "HelmRelease",
}


class ClusterSource(Protocol):
    cluster_name: str
    server: str

    async def fetch(self, kind: str) -> tuple[list[dict[str, Any]], str]: ...

    def watch(
        self, kind: str, resource_version: str
    ) -> AsyncIterator[tuple[str, dict[str, Any]]]: ...

    async def node_metrics(self) -> dict[str, dict[str, str]] | None: ...

    async def node_stats(self, name: str) -> dict[str, Any] | None: ...

    async def pod_log(self, namespace: str, name: str, tail: int = 200) -> str | None: ...

    async def tailnet(self) -> list[TailscalePeer] | None: ...

    async def round_trips(self, addresses: Sequence[str]) -> dict[str, float]: ...

    async def close(self) -> None: ...


class KubeSource:
    """The real cluster: the API through ``Kube``, the tailnet through discovery."""

    def __init__(
        self,
        kubeconfig: Path | None,
        context: str | None,
        cluster_name: str,
        discovery: Any | None = None,
        alternatives: Sequence[str] = (),
    ) -> None:
        from kubani.kube.client import Kube

        self._kube = Kube(kubeconfig, context, timeout=10.0, alternatives=alternatives)
        self.server = self._kube.server
        self.cluster_name = cluster_name
        self._discovery = discovery
        self._served: dict[str, str] = {}  # kind -> the path its list came from

    async def fetch(self, kind: str) -> tuple[list[dict[str, Any]], str]:
        from kubani.cluster.shapes import SHAPES

        items, version, self._served[kind] = await list_served(
            self._kube, kind, shape=SHAPES.get(kind)
        )
        return items, version

    def watch(self, kind: str, resource_version: str) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        from kubani.cluster.shapes import SHAPES

        path = self._served.get(kind, WATCHED[kind])
        return self._kube.watch_path(path, resource_version, shape=SHAPES.get(kind))

    async def node_metrics(self) -> dict[str, dict[str, str]] | None:
        return await self._kube.node_metrics()

    async def node_stats(self, name: str) -> dict[str, Any] | None:
        return await self._kube.node_stats(name)

    async def pod_log(self, namespace: str, name: str, tail: int = 200) -> str | None:
        return await self._kube.text(
            f"/api/v1/namespaces/{namespace}/pods/{name}/log?tailLines={tail}"
        )

    async def tailnet(self) -> list[TailscalePeer] | None:
        if self._discovery is None:
            return None
        from kubani.tailscale.discover import fetch_peers

        return await asyncio.to_thread(fetch_peers, self._discovery)

    async def round_trips(self, addresses: Sequence[str]) -> dict[str, float]:
        """Milliseconds to each address that answered one ``tailscale ping``; only where
        this machine's own tailscale is the source (the APIs know no peer-to-peer time)."""
        from kubani.tailscale.ping import ping
        from kubani.vocabulary import PeerSource

        if self._discovery is None or self._discovery.source is not PeerSource.CLI:
            return {}
        limit = asyncio.Semaphore(PING_CONCURRENCY)
        binary = self._discovery.tailscale_bin

        async def one(address: str) -> tuple[str, float | None]:
            async with limit:
                pong = await asyncio.to_thread(ping, address, binary)
            return address, pong.rtt_ms if pong else None

        answers = await asyncio.gather(*(one(address) for address in addresses))
        return {address: rtt for address, rtt in answers if rtt is not None}

    async def close(self) -> None:
        await self._kube.close()
