"""Lists read a page at a time, and watches decoded line by line, against a local HTTP
server that answers as the API does (continue tokens, an expired snapshot, watch lines)."""

from __future__ import annotations

import asyncio
import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

import pytest

from kubani.cluster.shapes import POD
from kubani.kube.client import LIST_PAGE, Kube, KubeError
from tests.conftest import local_kubeconfig

TOTAL = LIST_PAGE * 2 + 7


def _pod(index: int) -> dict[str, Any]:
    return {
        "metadata": {"name": f"p{index}", "namespace": "ns", "managedFields": [{}]},
        "spec": {"nodeName": "n", "volumes": [{"name": "v"}]},
        "status": {"phase": "Running"},
    }


class Api(http.server.BaseHTTPRequestHandler):
    seen: ClassVar[list[dict[str, list[str]]]] = []
    expire_once = False

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, code: int, body: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        query = parse_qs(urlsplit(self.path).query)
        Api.seen.append(query)
        if "watch" in query:
            lines = [
                {"type": "ADDED", "object": _pod(1)},
                {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "12"}}},
                {"type": "ERROR", "object": {"kind": "Status", "code": 410, "message": "too old"}},
            ]
            self._send(200, b"".join(json.dumps(line).encode() + b"\n" for line in lines))
            return
        start = int(query.get("continue", ["0"])[0])
        if start and Api.expire_once:
            Api.expire_once = False
            self._send(
                410, json.dumps({"kind": "Status", "code": 410, "message": "expired"}).encode()
            )
            return
        limit = int(query["limit"][0])
        end = min(start + limit, TOTAL)
        meta = {"resourceVersion": "11", "continue": str(end) if end < TOTAL else ""}
        self._send(
            200,
            json.dumps({"metadata": meta, "items": [_pod(i) for i in range(start, end)]}).encode(),
        )


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Path]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Api)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    kubeconfig = local_kubeconfig(tmp_path / "kubeconfig", server.server_address[1])
    Api.seen, Api.expire_once = [], False
    try:
        yield kubeconfig
    finally:
        server.shutdown()


def _list(kubeconfig: Path, shape: Any = None) -> tuple[list[dict[str, Any]], str]:
    async def scenario() -> tuple[list[dict[str, Any]], str]:
        async with Kube(kubeconfig) as kube:
            return await kube.list_path("/api/v1/pods", {"fieldSelector": "x=y"}, shape=shape)

    return asyncio.run(scenario())


def test_a_list_is_read_page_by_page_with_the_callers_parameters(api: Path) -> None:
    items, version = _list(api)
    assert [p["metadata"]["name"] for p in items] == [f"p{i}" for i in range(TOTAL)]
    assert version == "11"
    assert [q.get("continue") for q in Api.seen] == [None, [str(LIST_PAGE)], [str(2 * LIST_PAGE)]]
    assert all(q["limit"] == [str(LIST_PAGE)] and q["fieldSelector"] == ["x=y"] for q in Api.seen)
    assert items[0]["spec"]["volumes"]  # no shape: the whole object


def test_a_shape_keeps_only_its_fields(api: Path) -> None:
    items, _ = _list(api, POD)
    assert items[0] == {"metadata": {"name": "p0", "namespace": "ns"},
                        "spec": {"nodeName": "n"}, "status": {"phase": "Running"}}  # fmt: skip


def test_an_expired_snapshot_starts_the_list_once_more(api: Path) -> None:
    Api.expire_once = True
    items, _ = _list(api)
    assert len(items) == TOTAL and len({p["metadata"]["name"] for p in items}) == TOTAL
    assert [q.get("continue") for q in Api.seen][:3] == [None, [str(LIST_PAGE)], None]


def test_a_watch_yields_objects_and_ends_on_the_servers_error(api: Path) -> None:
    async def scenario(seen: list[tuple[str, Any]]) -> None:
        async with Kube(api) as kube:
            async for kind, obj in kube.watch_path("/api/v1/pods", "10", shape=POD):
                seen.append((kind, obj))

    seen: list[tuple[str, Any]] = []
    with pytest.raises(KubeError, match="HTTP 410: too old") as info:
        asyncio.run(scenario(seen))
    assert info.value.status == 410
    assert [kind for kind, _ in seen] == ["ADDED", "BOOKMARK"]
    assert "volumes" not in seen[0][1]["spec"]
