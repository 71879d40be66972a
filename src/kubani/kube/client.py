"""The cluster as the CLI and the TUI need it: nodes (listed and watched), pods, metrics,
kubelet stats, and the few writes that drain a node. Everything returns plain dicts in
the API's own shapes; summaries live in ``summary.py``."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from kubani import jsonsafe
from kubani.errors import KubaniError


class KubeError(KubaniError):
    """The API could not be reached or refused a request (``status``: its HTTP code)."""

    def __init__(self, what: str, why: str, fix: str | None = None, status: int | None = None):
        super().__init__(what, why, fix)
        self.status = status


# Items per page of a list (kubectl's chunk size).
LIST_PAGE = 500
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


# The parts of a listed or watched object that Kubani reads, each an object when present.
_OBJECT_PARTS = ("metadata", "spec", "status")


def _is_object(item: Any) -> bool:
    return isinstance(item, dict) and all(
        isinstance(item.get(part), dict) for part in _OBJECT_PARTS if item.get(part) is not None
    )


def _unusable(single: Any, exc: Exception) -> str:
    """Why a kubeconfig context could not make a client: the files it names, its PEM, or
    an authentication lightkube does not run (``single``: lightkube's SingleConfig)."""
    import ssl

    from lightkube import ConfigError

    if isinstance(exc, ssl.SSLError):
        return (
            "its certificate authority, client certificate or key is not valid PEM, or the "
            f"key does not match the certificate ({exc.reason or exc})"
        )
    if isinstance(exc, OSError):
        named = (
            ("certificate-authority", single.cluster.certificate_auth),
            ("client-certificate", single.user.client_cert),
            ("client-key", single.user.client_key),
        )
        for label, name in named:
            if name:
                # A relative name in a kubeconfig read from no file cannot be placed.
                with contextlib.suppress(ConfigError):
                    path = Path(single.abs_file(name)).absolute()
                    if not path.is_file():
                        return f"its {label} file {path} does not exist"
        return f"a certificate or key file it names cannot be read: {exc.strerror or exc}"
    return str(exc) or type(exc).__name__


_CREDENTIALS_FIX = (
    "fix the user entry of the kubeconfig (its exec command, token file), or write a fresh "
    "one with `cluster-mgr kubeconfig`"
)


class CredentialsError(KubeError):
    """The kubeconfig's user credentials could not be had (an exec plugin, a token file)."""


def _credentials_auth(inner: Any) -> Any:
    """``inner`` (the context's httpx auth) with its own failures said as what they are: a
    missing exec plugin or token file is not an unreachable API server."""
    import httpx2
    from lightkube import ConfigError

    # A plugin that is missing or not executable (OSError), exits non-zero or names a token
    # file that is not there (ConfigError), or prints no ExecCredential (ValueError: not
    # JSON; KeyError, TypeError: no status.token).
    failures = (OSError, ConfigError, ValueError, KeyError, TypeError)

    class CredentialsAuth(httpx2.Auth):
        async def async_auth_flow(
            self, request: httpx2.Request
        ) -> AsyncGenerator[httpx2.Request, httpx2.Response]:
            flow = inner.async_auth_flow(request)
            try:
                outgoing = await flow.__anext__()
                while True:
                    outgoing = await flow.asend((yield outgoing))
            except StopAsyncIteration:
                return
            except failures as exc:
                raise CredentialsError(
                    "cannot get the kubeconfig's credentials",
                    f"{type(exc).__name__}: {exc}",
                    _CREDENTIALS_FIX,
                ) from exc

    return CredentialsAuth()


_HOME_KUBECONFIG = Path("~/.kube/config")


def _checked(document: dict[str, Any], path: Path, context: str | None) -> Any:
    """lightkube's KubeConfig of ``document``, once its context is known to resolve (a
    missing section or name stops lightkube with a bare Python message)."""
    from lightkube import KubeConfig

    from kubani.kube.kubeconfig import context_problem

    problem = context_problem(document, context)
    if problem:
        raise KubeError(
            f"cannot read the kubeconfig {path}",
            problem,
            "pass --context NAME (`kubectl config get-contexts` lists them), or write a "
            "fresh one with `cluster-mgr kubeconfig`",
        )
    return KubeConfig.from_dict(document, fname=str(path))


class Kube:
    """One style for every call: a path of the API, and its reply as the API shapes it
    (plain dicts), through one HTTP client built by lightkube from the kubeconfig entry
    (its TLS, tokens and exec plugins)."""

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
        from lightkube import ConfigError, KubeConfig
        from lightkube.config import client_adapter

        from kubani.kube.kubeconfig import kubeconfig_env_paths, merged

        # kubectl's order: --kubeconfig, else every file $KUBECONFIG lists (merged), else
        # ~/.kube/config; lightkube's own reading is left for inside a pod.
        listed = [kubeconfig] if kubeconfig is not None else kubeconfig_env_paths()
        if not listed and _HOME_KUBECONFIG.expanduser().exists():
            listed = [_HOME_KUBECONFIG.expanduser()]
        try:
            if listed:
                config = _checked(merged(listed), listed[0], context)
            else:
                config = KubeConfig.from_env()
            if not context and not config.current_context:
                raise KubeError(
                    "cannot read the kubeconfig",
                    "it names no current context",
                    "pass --context NAME (`kubectl config get-contexts` lists them)",
                )
            single = config.get(context_name=context) if context else config.get()
        except KubeError:
            raise
        except KubaniError as exc:  # the file itself (not there, not YAML, not a kubeconfig)
            raise KubeError(exc.what, exc.why, exc.fix) from exc
        except Exception as exc:
            # lightkube (in a pod) reads with PyYAML's Python reader, which recurses once per level.
            too_deep = isinstance(exc, RecursionError)
            raise KubeError(
                "cannot read the kubeconfig",
                "its values are nested too deeply to read" if too_deep else str(exc),
                "pass --kubeconfig, or run `cluster-mgr kubeconfig`",
            ) from exc
        if single is None:
            raise KubeError(
                "cannot read the kubeconfig", "it has no current context", "pass --context"
            )
        self.configured_server = single.cluster.server
        chosen = first_answering(single.cluster.server, alternatives)
        if chosen != single.cluster.server:
            # SingleConfig is a NamedTuple: _replace is its public copy-with-changes.
            single = single._replace(cluster=msgspec.structs.replace(single.cluster, server=chosen))
        self.server = single.cluster.server
        try:
            self._http: httpx2.AsyncClient = client_adapter.AsyncClient(
                single,
                client_adapter.ConnectionParams(timeout=httpx2.Timeout(timeout), trust_env=False),
            )
        # The context's TLS files (OSError, ssl.SSLError; ValueError: bad base64 data) and
        # an authentication lightkube does not run (ConfigError: auth-provider), read here.
        except (OSError, ValueError, TypeError, ConfigError) as exc:
            raise KubeError(
                "cannot use the kubeconfig",
                _unusable(single, exc),
                "fix that entry of the kubeconfig, or write a fresh one with "
                "`cluster-mgr kubeconfig`",
            ) from exc
        if self._http.auth is not None:
            self._http.auth = _credentials_auth(self._http.auth)

    async def __aenter__(self) -> Kube:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        await self._http.aclose()

    # ---- the one way in and out -------------------------------------------------------

    def _unexpected(self, what: str, why: object) -> KubeError:
        return KubeError(
            what,
            f"unexpected reply from {self.server}: {why}",
            "is this a Kubernetes API server? (--kubeconfig, --context)",
        )

    def _failed(self, what: str, exc: Exception) -> KubeError:
        from kubani.kube.decoding import DecodeError

        if isinstance(exc, (ValueError, DecodeError)):  # not JSON, or not the shape expected
            return self._unexpected(what, exc)
        return KubeError(
            what,
            f"cannot reach {self.server}: {type(exc).__name__}: {exc}",
            "check the tailnet path to the control plane (`cluster-mgr status`)",
        )

    @contextlib.contextmanager
    def _translated(self, what: str) -> Iterator[None]:
        """Any failure inside as one KubeError saying what was being done (the one place
        where the HTTP client's errors become Kubani's)."""
        try:
            yield
        except KubeError:
            raise
        except Exception as exc:
            raise self._failed(what, exc) from exc

    @staticmethod
    def _refused(what: str, code: int, body: Any) -> KubeError:
        """An HTTP error as the API's Status object explains it."""
        message = body.get("message") if isinstance(body, dict) else None
        return KubeError(what, f"HTTP {code}: {message or 'no reason given'}", None, code)

    async def _call(
        self,
        method: str,
        path: str,
        what: str,
        body: dict[str, Any] | None = None,
        content_type: str = "application/json",
        params: dict[str, str] | None = None,
        decoder: Any = None,
    ) -> Any:
        """The reply decoded (``decoder``: a msgspec decoder; else any JSON); a KubeError
        for any HTTP error, with the API's reason."""
        import json

        content = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": content_type} if content is not None else None
        with self._translated(what):
            response = await self._http.request(
                method, path, content=content, headers=headers, params=params
            )
            if response.status_code >= 400:
                try:
                    reason = jsonsafe.loads(response.content)
                except ValueError:
                    reason = None
                raise self._refused(what, response.status_code, reason)
            if decoder is not None:
                return decoder.decode(response.content)
            return jsonsafe.loads(response.content) if response.content else None

    async def _raw(self, path: str) -> Any:
        """A GET whose failure means "not served here" (None), not an error."""
        with self._translated(f"GET {path}"):
            response = await self._http.get(path)
        if response.status_code >= 400:
            return None
        with self._translated(f"GET {path}"):
            return jsonsafe.loads(response.content)

    # ---- list and watch ---------------------------------------------------------------

    async def list_path(
        self, path: str, params: dict[str, str] | None = None, shape: Any = None
    ) -> tuple[list[dict[str, Any]], str]:
        """Every item at a collection path, and the list's resourceVersion. Read a page at
        a time (the API server never builds one huge reply, and the caller's event loop
        breathes between pages); ``shape`` keeps only the fields a reader uses."""
        from kubani.kube.decoding import WHOLE, page_decoder

        what = f"cannot list {path}"
        decoder = page_decoder(shape or WHOLE)
        items: list[dict[str, Any]] = []
        resume: str | None = None
        restarted = False
        while True:
            query = {**(params or {}), "limit": str(LIST_PAGE)}
            if resume:
                query["continue"] = resume
            try:
                body = await self._call("GET", path, what, params=query, decoder=decoder)
            except KubeError as exc:
                # The snapshot a continued list reads from has expired: start once more.
                if exc.status != 410 or not resume or restarted:
                    raise
                items, resume, restarted = [], None, True
                continue
            page = body.items or []
            if not all(_is_object(item) for item in page):
                raise self._unexpected(what, "an item that is not an object of the API")
            items += page
            resume = str(body.metadata.get("continue") or "")
            if not resume:
                return items, str(body.metadata.get("resourceVersion", ""))

    async def watch_path(
        self, path: str, resource_version: str, timeout_s: int = 300, shape: Any = None
    ) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        """Watch events from ``resource_version``; a KubeError with status 410 means the
        version is too old and the caller must list again."""
        from kubani.kube.decoding import EVENT_DECODER, STATUS_DECODER, WHOLE, object_decoder

        what = f"watch {path}"
        params = {
            "watch": "1",
            "resourceVersion": resource_version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(timeout_s),
        }
        decoder = object_decoder(shape or WHOLE)
        with self._translated(what):
            async with self._http.stream("GET", path, params=params, timeout=None) as response:
                if response.status_code >= 400:
                    raise self._refused(what, response.status_code, None)
                async for line in response.aiter_lines():
                    if not line.strip():
                        continue
                    event = EVENT_DECODER.decode(line)
                    if not len(event.object):
                        raise self._unexpected(what, "an event without an object")
                    if event.type == "ERROR":
                        status = STATUS_DECODER.decode(event.object)
                        raise self._refused(what, int(status.get("code") or 500), status)
                    obj = decoder.decode(event.object)
                    if not _is_object(obj):
                        raise self._unexpected(what, "an event without an object of the API")
                    yield event.type, obj

    async def text(self, path: str) -> str | None:
        with self._translated(f"GET {path}"):
            response = await self._http.get(path)
        return response.text if response.status_code < 400 else None

    # ---- reads ----------------------------------------------------------------------

    async def nodes(self) -> list[dict[str, Any]]:
        return (await self.list_path("/api/v1/nodes"))[0]

    async def pods(
        self, namespace: str | None = None, node: str | None = None
    ) -> list[dict[str, Any]]:
        path = f"/api/v1/namespaces/{namespace}/pods" if namespace else "/api/v1/pods"
        params = {"fieldSelector": f"spec.nodeName={node}"} if node else None
        return (await self.list_path(path, params))[0]

    async def node_metrics(self) -> dict[str, dict[str, str]] | None:
        """Node CPU and memory use, or None when metrics.k8s.io is not served."""
        body = await self._raw("/apis/metrics.k8s.io/v1beta1/nodes")
        if not isinstance(body, dict):
            return None
        return {
            item["metadata"]["name"]: item.get("usage") or {}
            for item in body.get("items") or []
            if _is_object(item) and isinstance((item.get("metadata") or {}).get("name"), str)
        }

    async def node_stats(self, name: str) -> dict[str, Any] | None:
        """The kubelet's stats/summary for a node (disk use), or None when unreachable."""
        body = await self._raw(f"/api/v1/nodes/{name}/proxy/stats/summary")
        return body if isinstance(body, dict) else None

    # ---- writes ---------------------------------------------------------------------

    async def cordon(self, name: str, unschedulable: bool = True) -> None:
        await self._call(
            "PATCH",
            f"/api/v1/nodes/{name}",
            f"cannot {'cordon' if unschedulable else 'uncordon'} {name}",
            {"spec": {"unschedulable": unschedulable or None}},
            content_type="application/merge-patch+json",
        )

    async def annotate_node(self, name: str, annotations: dict[str, str | None]) -> Any:
        """Set (a value) or remove (None) annotations of a Node; its new state."""
        return await self._call(
            "PATCH",
            f"/api/v1/nodes/{name}",
            f"cannot annotate node {name}",
            {"metadata": {"annotations": annotations}},
            content_type="application/merge-patch+json",
        )

    async def evict(self, namespace: str, name: str) -> bool:
        """Evict a pod through the eviction API; False when a PodDisruptionBudget refuses."""
        eviction = {
            "apiVersion": "policy/v1",
            "kind": "Eviction",
            "metadata": {"name": name, "namespace": namespace},
        }
        try:
            await self._call(
                "POST",
                f"/api/v1/namespaces/{namespace}/pods/{name}/eviction",
                f"cannot evict {namespace}/{name}",
                eviction,
            )
        except KubeError as exc:
            if exc.status == 429:  # a PodDisruptionBudget says not now
                return False
            if exc.status != 404:  # 404: the pod is gone already
                raise
        return True

    async def delete_node(self, name: str) -> None:
        await self._call("DELETE", f"/api/v1/nodes/{name}", f"cannot delete node {name}")
