"""A Kubernetes API server over the stand-in store, in the real wire shapes.

Discovery (``/version``, ``/api``, ``/apis``), lists with ``kind``/``resourceVersion``, get,
create, update, the four PATCH types, delete, ``deletecollection``, status subresources,
watch streams (resumable, 410 when too old), label and field selectors, eviction with
PodDisruptionBudgets, node proxy and ``metrics.k8s.io``. Authentication is the caller's
business (see ``server.py``); this module only serves requests.
"""

from __future__ import annotations

import copy
import json
import queue
import re
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from kubani.lab.k3s import patch as patching
from kubani.lab.k3s.resources import COMPUTED_GROUPS, Registry, ResourceType
from kubani.lab.k3s.selectors import field_matcher, label_matcher
from kubani.lab.k3s.store import Conflict, Event, Gone, Key, Store, now
from kubani.lab.k3s.tables import to_table, wants_table

DEFAULT_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")


@dataclass
class Response:
    status: int
    body: Any = None
    content_type: str = "application/json"
    stream: Iterator[bytes] | None = None

    def encode(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode()
        return json.dumps(self.body).encode()


def status_error(
    code: int, reason: str, message: str, details: dict[str, Any] | None = None
) -> Response:
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if details:
        body["details"] = details
    return Response(code, body)


@dataclass
class Route:
    kind: ResourceType
    namespace: str | None
    name: str | None
    subresource: str | None
    rest: str = ""

    @property
    def key(self) -> Key:
        return (self.kind.group, self.kind.plural, self.namespace or "", self.name or "")


@dataclass
class ApiServer:
    store: Store
    version: str = "v1.31.4+k3s1"
    registry: Registry = field(default_factory=Registry)
    advertise: str = "127.0.0.1:6443"
    node_proxy: Callable[[dict[str, Any], str], Response] | None = None
    metrics: Callable[[str, str | None], list[dict[str, Any]]] | None = None
    pod_log: Callable[[dict[str, Any]], str] | None = None
    watch_poll_s: float = 1.0

    def __post_init__(self) -> None:
        for crd, _ in [
            (o, 0) for o in self._all("apiextensions.k8s.io", "customresourcedefinitions")
        ]:
            self.registry.add_crd(crd)
        for name in DEFAULT_NAMESPACES:
            key = ("", "namespaces", "", name)
            if self.store.get(key) is None:
                self.store.create(key, self._namespace(name))

    def _all(self, group: str, plural: str) -> list[dict[str, Any]]:
        return self.store.list(group, plural)[0]

    @staticmethod
    def _namespace(name: str) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": name, "labels": {"kubernetes.io/metadata.name": name}},
            "spec": {"finalizers": ["kubernetes"]},
            "status": {"phase": "Active"},
        }

    # ---- entry ------------------------------------------------------------------

    def handle(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Response:
        url = urlsplit(target)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        path = url.path.rstrip("/") or "/"
        try:
            return self._dispatch(method, path, query, headers, body)
        except patching.PatchError as exc:
            return status_error(422, "Invalid", str(exc))
        except json.JSONDecodeError as exc:
            return status_error(400, "BadRequest", f"invalid JSON: {exc.msg}")

    def _dispatch(
        self, method: str, path: str, query: dict[str, str], headers: dict[str, str], body: bytes
    ) -> Response:
        if path in ("/healthz", "/livez", "/readyz"):
            return Response(200, "ok", "text/plain")
        if path == "/version":
            major, minor = self.version.lstrip("v").split(".")[:2]
            return Response(
                200,
                {
                    "major": major,
                    "minor": minor,
                    "gitVersion": self.version,
                    "gitCommit": "0" * 40,
                    "gitTreeState": "clean",
                    "buildDate": "2025-01-01T00:00:00Z",
                    "goVersion": "go1.24.0",
                    "compiler": "gc",
                    "platform": "linux/amd64",
                },
            )
        if path == "/api":
            return Response(
                200,
                {
                    "kind": "APIVersions",
                    "versions": ["v1"],
                    "serverAddressByClientCIDRs": [
                        {"clientCIDR": "0.0.0.0/0", "serverAddress": self.advertise}
                    ],
                },
            )
        if path == "/apis":
            return Response(
                200,
                {
                    "kind": "APIGroupList",
                    "apiVersion": "v1",
                    "groups": [self._group(g, vs) for g, vs in self.registry.groups().items()],
                },
            )
        parts = path.strip("/").split("/")
        if parts[0] == "api" and len(parts) == 2:
            return Response(200, self._resource_list("", parts[1]))
        if parts[0] == "apis" and len(parts) == 2:
            versions = self.registry.groups().get(parts[1])
            if not versions:
                return status_error(
                    404, "NotFound", "the server could not find the requested resource"
                )
            return Response(
                200, {"kind": "APIGroup", "apiVersion": "v1", **self._group(parts[1], versions)}
            )
        if parts[0] == "apis" and len(parts) == 3:
            if parts[2] not in self.registry.groups().get(parts[1], []):
                return status_error(
                    404, "NotFound", "the server could not find the requested resource"
                )
            return Response(200, self._resource_list(parts[1], parts[2]))
        route = self._route(parts)
        if route is None:
            return status_error(404, "NotFound", "the server could not find the requested resource")
        return self._serve(method, route, query, headers, body)

    # ---- discovery ----------------------------------------------------------------

    def _group(self, group: str, versions: list[str]) -> dict[str, Any]:
        listed = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
        return {"name": group, "versions": listed, "preferredVersion": listed[0]}

    def _resource_list(self, group: str, version: str) -> dict[str, Any]:
        resources = []
        for kind in self.registry.types:
            if kind.group != group or kind.version != version:
                continue
            resources.append(
                {
                    "name": kind.plural,
                    "singularName": kind.singular,
                    "namespaced": kind.namespaced,
                    "kind": kind.kind,
                    "verbs": list(kind.verbs),
                    **({"shortNames": list(kind.short_names)} if kind.short_names else {}),
                    **({"categories": list(kind.categories)} if kind.categories else {}),
                }
            )
            for sub in kind.subresources:
                sub_kind = {"eviction": "Eviction", "binding": "Binding", "scale": "Scale"}.get(
                    sub, kind.kind
                )
                verbs = {
                    "status": ["get", "patch", "update"],
                    "eviction": ["create"],
                    "binding": ["create"],
                    "log": ["get"],
                    "proxy": ["get", "create"],
                    "scale": ["get", "patch", "update"],
                }.get(sub, ["get"])
                resources.append(
                    {
                        "name": f"{kind.plural}/{sub}",
                        "singularName": "",
                        "namespaced": kind.namespaced,
                        "kind": sub_kind,
                        "verbs": verbs,
                    }
                )
        gv = f"{group}/{version}" if group else version
        return {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": gv,
            "resources": resources,
        }

    def _route(self, parts: list[str]) -> Route | None:
        if parts[0] == "api" and len(parts) >= 3:
            group, version, rest = "", parts[1], parts[2:]
        elif parts[0] == "apis" and len(parts) >= 4:
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            return None
        namespace = None
        if rest[0] == "namespaces" and len(rest) >= 3:
            candidate = self.registry.find(group, version, rest[2])
            if candidate is not None and candidate.namespaced:
                namespace, rest = rest[1], rest[2:]
        kind = self.registry.find(group, version, rest[0])
        if kind is None:
            return None
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        return Route(kind, namespace, name, sub, "/".join(rest[3:]))

    # ---- resources ------------------------------------------------------------------

    def _serve(
        self, method: str, route: Route, query: dict[str, str], headers: dict[str, str], body: bytes
    ) -> Response:
        kind = route.kind
        if kind.group in COMPUTED_GROUPS:
            return self._metrics(route, method)
        if route.subresource == "proxy" and kind.plural == "nodes":
            return self._proxy(route)
        if route.subresource == "log" and kind.plural == "pods":
            return self._log(route)
        if route.subresource == "eviction" and kind.plural == "pods" and method == "POST":
            return self._evict(route)
        if route.subresource == "binding" and kind.plural == "pods" and method == "POST":
            return self._bind(route, json.loads(body or b"{}"))
        if route.subresource not in (None, "status", "scale"):
            return status_error(404, "NotFound", f"no subresource {route.subresource}")
        if route.name is None:
            if method == "GET":
                if query.get("watch") in ("1", "true"):
                    return self._watch(route, query)
                return self._list(route, query, wants_table(headers))
            if method == "POST":
                return self._create(route, json.loads(body or b"{}"), query)
            if method == "DELETE":
                return self._delete_collection(route, query)
            return status_error(405, "MethodNotAllowed", f"{method} is not allowed here")
        if method == "GET":
            obj = self.store.get(route.key)
            if obj is None:
                return self._not_found(route)
            if route.subresource == "scale":
                return Response(200, self._scale(obj))
            if wants_table(headers):
                table = to_table(route.kind.kind, [obj], obj["metadata"]["resourceVersion"], True)
                return Response(200, table)
            return Response(200, obj)
        if method == "PUT":
            return self._update(route, json.loads(body or b"{}"))
        if method == "PATCH":
            return self._patch(route, headers.get("content-type", ""), body, query)
        if method == "DELETE":
            return self._delete(route)
        return status_error(405, "MethodNotAllowed", f"{method} is not allowed here")

    def _not_found(self, route: Route) -> Response:
        resource = (
            route.kind.plural if not route.kind.group else f"{route.kind.plural}.{route.kind.group}"
        )
        return status_error(
            404,
            "NotFound",
            f'{resource} "{route.name}" not found',
            {"name": route.name, "group": route.kind.group, "kind": route.kind.plural},
        )

    def _decorate(self, obj: dict[str, Any], kind: ResourceType) -> dict[str, Any]:
        obj["apiVersion"] = kind.api_version
        obj["kind"] = kind.kind
        return obj

    def _list(self, route: Route, query: dict[str, str], table: bool = False) -> Response:
        items, revision = self.store.list(route.kind.group, route.kind.plural, route.namespace)
        labels = label_matcher(query.get("labelSelector"))
        fields = field_matcher(query.get("fieldSelector"))
        selected = [self._decorate(o, route.kind) for o in items if labels(o) and fields(o)]
        if table:
            return Response(
                200,
                to_table(
                    route.kind.kind, selected, str(revision), query.get("includeObject") != "None"
                ),
            )
        return Response(
            200,
            {
                "kind": f"{route.kind.kind}List",
                "apiVersion": route.kind.api_version,
                "metadata": {"resourceVersion": str(revision)},
                "items": selected,
            },
        )

    def _watch(self, route: Route, query: dict[str, str]) -> Response:
        kind = route.kind
        labels = label_matcher(query.get("labelSelector"))
        fields = field_matcher(query.get("fieldSelector"))
        name = None
        selector = query.get("fieldSelector") or ""
        if selector.startswith("metadata.name=") and "," not in selector:
            name = selector.split("=", 1)[1]

        def accepts(event: Event) -> bool:
            group, plural, namespace, _ = event.key
            if (group, plural) != (kind.group, kind.plural):
                return False
            if route.namespace is not None and namespace != route.namespace:
                return False
            return labels(event.obj) and fields(event.obj)

        since_text = query.get("resourceVersion", "")
        timeout = min(float(query.get("timeoutSeconds") or 1800), 3600.0)
        initial: list[dict[str, Any]] = []
        since: int | None
        if since_text in ("", "0"):
            items, since = self.store.list(kind.group, kind.plural, route.namespace)
            initial = [o for o in items if labels(o) and fields(o)]
        else:
            since = int(since_text)
        try:
            sink, stop = self.store.watch(accepts, since)
        except Gone as exc:
            error = {
                "type": "ERROR",
                "object": {
                    "kind": "Status",
                    "apiVersion": "v1",
                    "metadata": {},
                    "status": "Failure",
                    "message": str(exc),
                    "reason": "Expired",
                    "code": 410,
                },
            }
            return Response(200, stream=iter([json.dumps(error).encode() + b"\n"]))
        bookmarks = query.get("allowWatchBookmarks") in ("1", "true")

        def stream() -> Iterator[bytes]:
            try:
                for obj in initial:
                    yield self._event_line("ADDED", obj, kind)
                deadline = time.monotonic() + timeout
                last_bookmark = time.monotonic()
                while time.monotonic() < deadline:
                    try:
                        event = sink.get(timeout=self.watch_poll_s)
                    except queue.Empty:
                        if bookmarks and time.monotonic() - last_bookmark > 30:
                            last_bookmark = time.monotonic()
                            mark = {
                                "type": "BOOKMARK",
                                "object": {
                                    "kind": kind.kind,
                                    "apiVersion": kind.api_version,
                                    "metadata": {"resourceVersion": str(self.store.revision)},
                                },
                            }
                            yield json.dumps(mark).encode() + b"\n"
                        else:
                            yield b""  # lets the connection notice a gone client
                        continue
                    if event is None:
                        return
                    if name is not None and event.key[3] != name:
                        continue
                    yield self._event_line(event.kind, event.obj, kind)
            finally:
                stop()

        return Response(200, stream=stream())

    def _event_line(self, kind_name: str, obj: dict[str, Any], kind: ResourceType) -> bytes:
        return (
            json.dumps(
                {"type": kind_name, "object": self._decorate(copy.deepcopy(obj), kind)}
            ).encode()
            + b"\n"
        )

    def _prepare_new(self, route: Route, obj: dict[str, Any]) -> dict[str, Any] | Response:
        kind = route.kind
        meta = obj.setdefault("metadata", {})
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + secrets.token_hex(3)[:5]
        name = meta.get("name")
        if not name or not _NAME.match(str(name)) or len(str(name)) > 253:
            return status_error(
                422,
                "Invalid",
                f'{kind.kind} "{name}" is invalid: metadata.name: '
                "Invalid value: a lowercase RFC 1123 subdomain must consist of lower "
                "case alphanumeric characters, '-' or '.'",
            )
        if obj.get("kind") and obj["kind"] != kind.kind:
            return status_error(
                400,
                "BadRequest",
                f"the kind {obj['kind']} does not match the resource {kind.plural}",
            )
        if kind.namespaced:
            namespace = route.namespace or meta.get("namespace") or "default"
            if meta.get("namespace") and route.namespace and meta["namespace"] != route.namespace:
                return status_error(
                    400,
                    "BadRequest",
                    "the namespace of the provided object does "
                    "not match the namespace sent on the request",
                )
            meta["namespace"] = namespace
            if (
                kind.plural != "namespaces"
                and self.store.get(("", "namespaces", "", namespace)) is None
            ):
                return status_error(
                    404,
                    "NotFound",
                    f'namespaces "{namespace}" not found',
                    {"name": namespace, "kind": "namespaces"},
                )
        else:
            meta.pop("namespace", None)
        self._decorate(obj, kind)
        if kind.plural == "pods":
            obj.setdefault("status", {"phase": "Pending", "conditions": []})
            obj.setdefault("spec", {}).setdefault("schedulerName", "default-scheduler")
        if kind.plural == "namespaces":
            obj.setdefault("status", {"phase": "Active"})
            meta.setdefault("labels", {})["kubernetes.io/metadata.name"] = name
        return obj

    def _create(self, route: Route, obj: dict[str, Any], query: dict[str, str]) -> Response:
        prepared = self._prepare_new(route, obj)
        if isinstance(prepared, Response):
            return prepared
        meta = prepared["metadata"]
        key = (route.kind.group, route.kind.plural, meta.get("namespace", ""), meta["name"])
        if query.get("dryRun"):
            return Response(201, prepared)
        try:
            created = self.store.create(key, prepared)
        except Conflict:
            resource = (
                route.kind.plural
                if not route.kind.group
                else f"{route.kind.plural}.{route.kind.group}"
            )
            return status_error(
                409,
                "AlreadyExists",
                f'{resource} "{meta["name"]}" already exists',
                {"name": meta["name"], "group": route.kind.group, "kind": route.kind.plural},
            )
        self._after_write(route.kind, created)
        return Response(201, created)

    def _merge_for_subresource(
        self, route: Route, current: dict[str, Any], new: dict[str, Any]
    ) -> dict[str, Any]:
        if route.subresource == "status":
            merged = copy.deepcopy(current)
            merged["status"] = new.get("status", current.get("status"))
            merged["metadata"]["resourceVersion"] = new.get("metadata", {}).get(
                "resourceVersion", current["metadata"]["resourceVersion"]
            )
            return merged
        if "status" in route.kind.subresources and "status" in current:
            new["status"] = current["status"]
        return new

    def _update(self, route: Route, obj: dict[str, Any]) -> Response:
        current = self.store.get(route.key)
        if current is None:
            return self._not_found(route)
        if route.subresource == "scale":
            obj = self._apply_scale(current, obj)
        return self._update_checked(route, self._merge_for_subresource(route, current, obj))

    def _patch(
        self, route: Route, content_type: str, body: bytes, query: dict[str, str]
    ) -> Response:
        current = self.store.get(route.key)
        media = content_type.split(";", maxsplit=1)[0].strip()
        if media == "application/apply-patch+yaml":
            applied = _load_yaml_or_json(body)
            if current is None:
                return self._create(Route(route.kind, route.namespace, None, None), applied, query)
            merged = patching.strategic_merge(current, applied)
        elif current is None:
            return self._not_found(route)
        elif media == "application/json-patch+json":
            merged = patching.json_patch(current, json.loads(body))
        elif media == "application/merge-patch+json":
            merged = patching.merge_patch(current, json.loads(body))
        elif media == "application/strategic-merge-patch+json":
            merged = patching.strategic_merge(current, json.loads(body))
        else:
            return status_error(
                415,
                "UnsupportedMediaType",
                "the body of the request was in an "
                "unknown format - accepted media types include: "
                "application/json-patch+json, application/merge-patch+json, "
                "application/apply-patch+yaml",
            )
        if route.subresource == "scale":
            merged = self._apply_scale(current, merged)
        merged = self._merge_for_subresource(route, current, merged)
        if merged["metadata"].get("resourceVersion") == current["metadata"]["resourceVersion"]:
            merged["metadata"].pop("resourceVersion")
        return self._update_checked(route, merged)

    def _update_checked(self, route: Route, obj: dict[str, Any]) -> Response:
        obj.setdefault("metadata", {})["name"] = route.name
        self._decorate(obj, route.kind)
        try:
            updated = self.store.update(route.key, obj, bump_generation=route.subresource is None)
        except Conflict as exc:
            return status_error(
                409,
                "Conflict",
                f'Operation cannot be fulfilled on {route.kind.plural} "{route.name}": {exc}',
            )
        self._after_write(route.kind, updated)
        return Response(200, updated)

    def _delete(self, route: Route) -> Response:
        obj = self.store.delete(route.key)
        if obj is None:
            return self._not_found(route)
        if route.kind.plural == "namespaces":
            for key in list(self.store.iter_keys()):
                if key[2] == route.name and key[1] != "namespaces":
                    self.store.delete(key)
        return Response(
            200,
            {
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Success",
                "details": {
                    "name": route.name,
                    "group": route.kind.group,
                    "kind": route.kind.plural,
                    "uid": obj["metadata"].get("uid"),
                },
            },
        )

    def _delete_collection(self, route: Route, query: dict[str, str]) -> Response:
        items, _ = self.store.list(route.kind.group, route.kind.plural, route.namespace)
        labels, fields = (
            label_matcher(query.get("labelSelector")),
            field_matcher(query.get("fieldSelector")),
        )
        for obj in items:
            if labels(obj) and fields(obj):
                meta = obj["metadata"]
                self.store.delete(
                    (route.kind.group, route.kind.plural, meta.get("namespace", ""), meta["name"])
                )
        return Response(
            200, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}
        )

    def _after_write(self, kind: ResourceType, obj: dict[str, Any]) -> None:
        if kind.plural == "customresourcedefinitions":
            self.registry.add_crd(obj)
            if not (obj.get("status") or {}).get("conditions"):
                obj["status"] = {
                    "conditions": [
                        {
                            "type": "NamesAccepted",
                            "status": "True",
                            "reason": "NoConflicts",
                            "lastTransitionTime": now(),
                            "message": "no conflicts found",
                        },
                        {
                            "type": "Established",
                            "status": "True",
                            "reason": "InitialNamesAccepted",
                            "lastTransitionTime": now(),
                            "message": "the initial names have been accepted",
                        },
                    ],
                    "acceptedNames": (obj.get("spec") or {}).get("names", {}),
                }
                key = (
                    "apiextensions.k8s.io",
                    "customresourcedefinitions",
                    "",
                    obj["metadata"]["name"],
                )
                self.store.update(key, obj, check_version=False, bump_generation=False)

    # ---- scale ----------------------------------------------------------------------

    def _scale(self, obj: dict[str, Any]) -> dict[str, Any]:
        meta = obj["metadata"]
        return {
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": {
                "name": meta["name"],
                "namespace": meta.get("namespace"),
                "resourceVersion": meta["resourceVersion"],
            },
            "spec": {"replicas": (obj.get("spec") or {}).get("replicas", 1)},
            "status": {"replicas": (obj.get("status") or {}).get("replicas", 0)},
        }

    @staticmethod
    def _apply_scale(current: dict[str, Any], scale: dict[str, Any]) -> dict[str, Any]:
        updated = copy.deepcopy(current)
        replicas = (scale.get("spec") or {}).get("replicas")
        if replicas is not None:
            updated.setdefault("spec", {})["replicas"] = replicas
        return updated

    # ---- pods -----------------------------------------------------------------------

    def _evict(self, route: Route) -> Response:
        pod = self.store.get(route.key)
        if pod is None:
            return self._not_found(route)
        labels = pod["metadata"].get("labels") or {}
        for pdb in self.store.list("policy", "poddisruptionbudgets", route.namespace)[0]:
            selector = (pdb.get("spec") or {}).get("selector") or {}
            wanted = selector.get("matchLabels") or {}
            if not wanted or any(labels.get(k) != v for k, v in wanted.items()):
                continue
            if self._disruptions_allowed(pdb) < 1:
                return status_error(
                    429,
                    "TooManyRequests",
                    "Cannot evict pod as it would violate the pod's disruption budget.",
                    {
                        "causes": [
                            {
                                "reason": "DisruptionBudget",
                                "message": f"The disruption budget {pdb['metadata']['name']} "
                                "needs more healthy pods",
                            }
                        ]
                    },
                )
        self.store.delete(route.key)
        return Response(
            201, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}
        )

    def _disruptions_allowed(self, pdb: dict[str, Any]) -> int:
        spec = pdb.get("spec") or {}
        wanted = (spec.get("selector") or {}).get("matchLabels") or {}
        namespace = pdb["metadata"].get("namespace")
        pods = [
            p
            for p in self.store.list("", "pods", namespace)[0]
            if all((p["metadata"].get("labels") or {}).get(k) == v for k, v in wanted.items())
        ]
        healthy = sum(1 for p in pods if (p.get("status") or {}).get("phase") == "Running")
        if "minAvailable" in spec:
            return healthy - _count(spec["minAvailable"], len(pods))
        if "maxUnavailable" in spec:
            unhealthy = len(pods) - healthy
            return _count(spec["maxUnavailable"], len(pods)) - unhealthy
        return healthy

    def _bind(self, route: Route, binding: dict[str, Any]) -> Response:
        pod = self.store.get(route.key)
        if pod is None:
            return self._not_found(route)
        pod.setdefault("spec", {})["nodeName"] = (binding.get("target") or {}).get("name")
        self.store.update(route.key, pod, check_version=False, bump_generation=False)
        return Response(
            201, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}
        )

    def _log(self, route: Route) -> Response:
        pod = self.store.get(route.key)
        if pod is None:
            return self._not_found(route)
        text = self.pod_log(pod) if self.pod_log else ""
        return Response(200, text, "text/plain")

    # ---- nodes ----------------------------------------------------------------------

    def _proxy(self, route: Route) -> Response:
        node = self.store.get(route.key)
        if node is None:
            return self._not_found(route)
        if self.node_proxy is None:
            return status_error(503, "ServiceUnavailable", "no kubelet connection in this server")
        return self.node_proxy(node, route.rest)

    def _metrics(self, route: Route, method: str) -> Response:
        if method != "GET":
            return status_error(405, "MethodNotAllowed", "metrics are read-only")
        if self.metrics is None:
            return status_error(503, "ServiceUnavailable", "the metrics API is not available")
        items = self.metrics(route.kind.plural, route.namespace)
        if route.name is not None:
            for item in items:
                if item["metadata"]["name"] == route.name:
                    return Response(200, item)
            return self._not_found(route)
        return Response(
            200,
            {
                "kind": f"{route.kind.kind}List",
                "apiVersion": "metrics.k8s.io/v1beta1",
                "metadata": {},
                "items": items,
            },
        )


def _count(value: int | str, total: int) -> int:
    if isinstance(value, str) and value.endswith("%"):
        return -(-int(value[:-1]) * total // 100)
    return int(value)


def _load_yaml_or_json(body: bytes) -> dict[str, Any]:
    try:
        loaded = json.loads(body)
    except json.JSONDecodeError:
        import yaml

        loaded = yaml.safe_load(body)
    if not isinstance(loaded, dict):
        raise patching.PatchError("the applied configuration is not an object")
    return loaded
