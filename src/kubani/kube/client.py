"""The cluster as the CLI and the TUI need it: nodes (listed and watched), pods, metrics,
kubelet stats, and the few writes that drain a node. Everything returns plain dicts in
the API's own shapes; summaries live in ``summary.py``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any

from kubani.errors import KubaniError


class KubeError(KubaniError):
    """The API could not be reached or refused a request (``status``: its HTTP code)."""

    def __init__(self, what: str, why: str, fix: str | None = None, status: int | None = None):
        super().__init__(what, why, fix)
        self.status = status


# How long a server may take to accept a connection before the next one is tried.
PROBE_TIMEOUT_S = 2.0


def answers(server: str, timeout: float = PROBE_TIMEOUT_S) -> bool:
    """Whether something accepts connections at the server URL's host and port."""
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(server)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        with socket.create_connection((parts.hostname or "", port), timeout=timeout):
            return True
    except (OSError, ValueError):
        return False


def first_answering(server: str, alternatives: Sequence[str]) -> str:
    """The kubeconfig's server when it answers, else the first alternative that does (the
    other control planes of an HA cluster), else the kubeconfig's server (whose error is
    then the one reported)."""
    if not alternatives or answers(server):
        return server
    return next((other for other in alternatives if other != server and answers(other)), server)


class Kube:
    def __init__(
        self,
        kubeconfig: Path | None = None,
        context: str | None = None,
        timeout: float = 10.0,
        alternatives: Sequence[str] = (),
    ) -> None:
        """``alternatives``: other URLs of the same API server (the other control planes of
        an HA cluster, whose certificates the same CA signs), tried in order when the
        kubeconfig's server does not answer."""
        import httpx2
        import msgspec
        from lightkube import AsyncClient, KubeConfig
        from lightkube.config import client_adapter

        try:
            config = KubeConfig.from_file(str(kubeconfig)) if kubeconfig else KubeConfig.from_env()
            single = config.get(context_name=context) if context else config.get()
        except Exception as exc:
            raise KubeError(
                "cannot read the kubeconfig",
                str(exc),
                "pass --kubeconfig, or run `cluster-mgr kubeconfig`",
            ) from exc
        if single is None:
            raise KubeError(
                "cannot read the kubeconfig", "it has no current context", "pass --context"
            )
        self.configured_server = single.cluster.server
        chosen = first_answering(single.cluster.server, alternatives)
        if chosen != single.cluster.server:
            single = single._replace(cluster=msgspec.structs.replace(single.cluster, server=chosen))
        self.server = single.cluster.server
        self._client = AsyncClient(config=single, timeout=httpx2.Timeout(timeout), trust_env=False)
        # Raw paths (aggregated APIs, stats, watches of any collection) go through an httpx
        # client of our own, built by lightkube's adapter from the same kubeconfig entry.
        self._http: httpx2.AsyncClient = client_adapter.AsyncClient(
            single,
            client_adapter.ConnectionParams(timeout=httpx2.Timeout(timeout), trust_env=False),
        )

    async def __aenter__(self) -> Kube:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        await self._client.close()
        await self._http.aclose()

    # ---- helpers ------------------------------------------------------------------

    def _failed(self, what: str, exc: Exception) -> KubeError:
        from lightkube import ApiError

        if isinstance(exc, ApiError):
            return KubeError(
                what, f"HTTP {exc.status.code}: {exc.status.message}", None, exc.status.code
            )
        if type(exc).__name__ in ("ValidationError", "DecodeError") or isinstance(exc, ValueError):
            return KubeError(
                what,
                f"unexpected reply from {self.server}: {exc}",
                "is this a Kubernetes API server? (--kubeconfig, --context)",
            )
        return KubeError(
            what,
            f"cannot reach {self.server}: {type(exc).__name__}: {exc}",
            "check the tailnet path to the control plane (`cluster-mgr status`)",
        )

    @contextmanager
    def _translated(self, what: str) -> Iterator[None]:
        """Any failure inside as one KubeError saying what was being done (the one place
        where lightkube's and httpx's errors become Kubani's)."""
        try:
            yield
        except KubeError:
            raise
        except Exception as exc:
            raise self._failed(what, exc) from exc

    async def _get(self, path: str) -> Any:
        # lightkube has no raw GET; this httpx client carries the kubeconfig's credentials.
        with self._translated(f"GET {path}"):
            return await self._http.get(path)

    async def _raw(self, path: str) -> Any:
        response = await self._get(path)
        if response.status_code >= 400:
            return None
        return response.json()

    # ---- generic list and watch (what the TUI keeps in sync) ------------------------

    async def list_path(self, path: str) -> tuple[list[dict[str, Any]], str]:
        """Every item at a collection path, and the list's resourceVersion."""
        response = await self._get(path)
        if response.status_code >= 400:
            raise KubeError(
                f"GET {path}", f"HTTP {response.status_code}", None, response.status_code
            )
        body = response.json()
        return list(body.get("items") or []), str(
            (body.get("metadata") or {}).get("resourceVersion", "")
        )

    async def watch_path(
        self, path: str, resource_version: str, timeout_s: int = 300
    ) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        """Watch events from ``resource_version``; a KubeError with status 410 means the
        version is too old and the caller must list again."""
        import json

        params = {
            "watch": "1",
            "resourceVersion": resource_version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(timeout_s),
        }
        with self._translated(f"watch {path}"):
            async with self._http.stream("GET", path, params=params, timeout=None) as response:
                if response.status_code >= 400:
                    raise KubeError(
                        f"watch {path}", f"HTTP {response.status_code}", None, response.status_code
                    )
                async for line in response.aiter_lines():
                    if not line.strip():
                        continue
                    event = json.loads(line)
                    kind, obj = str(event.get("type")), event.get("object") or {}
                    if kind == "ERROR":
                        code = int(obj.get("code") or 500)
                        raise KubeError(f"watch {path}", str(obj.get("message")), None, code)
                    yield kind, obj

    async def text(self, path: str) -> str | None:
        response = await self._get(path)
        return response.text if response.status_code < 400 else None

    # ---- reads ----------------------------------------------------------------------

    async def nodes(self) -> list[dict[str, Any]]:
        from lightkube.resources.core_v1 import Node

        with self._translated("cannot list nodes"):
            return [node.to_dict() async for node in self._client.list(Node)]

    async def watch_nodes(
        self, resource_version: str | None = None
    ) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        """Node events; raises KubeError with code 410 when ``resource_version`` is too old."""
        from lightkube.resources.core_v1 import Node

        with self._translated("the node watch ended"):
            async for kind, node in self._client.watch(Node, resource_version=resource_version):
                yield kind, node.to_dict()

    async def pods(
        self, namespace: str | None = None, node: str | None = None
    ) -> list[dict[str, Any]]:
        from lightkube.resources.core_v1 import Pod

        fields: dict[str, Any] | None = {"spec.nodeName": node} if node else None
        with self._translated("cannot list pods"):
            return [
                pod.to_dict()
                async for pod in self._client.list(Pod, namespace=namespace or "*", fields=fields)
            ]

    async def node_metrics(self) -> dict[str, dict[str, str]] | None:
        """Node CPU and memory use, or None when metrics.k8s.io is not served."""
        body = await self._raw("/apis/metrics.k8s.io/v1beta1/nodes")
        if body is None:
            return None
        return {item["metadata"]["name"]: item.get("usage", {}) for item in body.get("items", [])}

    async def node_stats(self, name: str) -> dict[str, Any] | None:
        """The kubelet's stats/summary for a node (disk use), or None when unreachable."""
        body = await self._raw(f"/api/v1/nodes/{name}/proxy/stats/summary")
        return body if isinstance(body, dict) else None

    # ---- writes ---------------------------------------------------------------------

    async def cordon(self, name: str, unschedulable: bool = True) -> None:
        from lightkube.resources.core_v1 import Node
        from lightkube.types import PatchType

        with self._translated(f"cannot {'cordon' if unschedulable else 'uncordon'} {name}"):
            await self._client.patch(
                Node,
                name,
                {"spec": {"unschedulable": unschedulable or None}},
                patch_type=PatchType.MERGE,
            )

    async def evict(self, namespace: str, name: str) -> bool:
        """Evict a pod through the eviction API; False when a PodDisruptionBudget refuses."""
        from lightkube import ApiError
        from lightkube.models.meta_v1 import ObjectMeta
        from lightkube.resources.core_v1 import Pod

        eviction = Pod.Eviction(metadata=ObjectMeta(name=name, namespace=namespace))
        with self._translated(f"cannot evict {namespace}/{name}"):
            try:
                await self._client.create(eviction, name=name, namespace=namespace)
            except ApiError as exc:
                if exc.status.code == 429:  # a PodDisruptionBudget says not now
                    return False
                if exc.status.code != 404:  # 404: the pod is gone already
                    raise
        return True

    async def delete_node(self, name: str) -> None:
        from lightkube.resources.core_v1 import Node

        with self._translated(f"cannot delete node {name}"):
            await self._client.delete(Node, name)
