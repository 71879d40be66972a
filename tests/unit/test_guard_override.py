"""`cluster-mgr node hold|release|auto` set the owner's word on the Node (a merge patch of
one annotation, against a local HTTP server answering as the API does), and a held node is
shown as such by `status`."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from kubani.kube.summary import Held, held_of, summarise
from kubani.vocabulary import GUARD_HELD_REASON, GUARD_HELD_SINCE, GUARD_OVERRIDE
from tests.conftest import CliResult, local_kubeconfig


class NodeApi(http.server.BaseHTTPRequestHandler):
    node: ClassVar[dict[str, Any]] = {}
    patches: ClassVar[list[tuple[str, str, Any]]] = []

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_PATCH(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        NodeApi.patches.append((self.path, self.headers["Content-Type"], body))
        if self.path != "/api/v1/nodes/desk":
            reply, code = {"kind": "Status", "code": 404, "message": 'nodes "x" not found'}, 404
        else:
            notes = NodeApi.node.setdefault("metadata", {}).setdefault("annotations", {})
            for key, value in body["metadata"]["annotations"].items():
                if value is None:
                    notes.pop(key, None)
                else:
                    notes[key] = value
            reply, code = NodeApi.node, 200
        data = json.dumps(reply).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def kubeconfig(tmp_path: Path) -> Iterator[Path]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), NodeApi)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    path = local_kubeconfig(tmp_path / "kubeconfig", server.server_address[1])
    NodeApi.node = {"metadata": {"name": "desk", "annotations": {"other": "kept"}}}
    NodeApi.patches = []
    try:
        yield path
    finally:
        server.shutdown()


def test_hold_release_and_auto_set_one_annotation(
    cli: Callable[..., CliResult], inventory: Path, kubeconfig: Path
) -> None:
    for command, value in (("hold", "hold"), ("release", "release"), ("auto", None)):
        result = cli("-i", inventory, "node", command, "desk", "--kubeconfig", kubeconfig, "--json")
        assert result.code == 0, result.stderr
        assert result.json()["override"] == value
        path, kind, body = NodeApi.patches[-1]
        assert (path, kind) == ("/api/v1/nodes/desk", "application/merge-patch+json")
        assert body == {"metadata": {"annotations": {GUARD_OVERRIDE: value}}}
    assert NodeApi.node["metadata"]["annotations"] == {"other": "kept"}
    said = cli("-i", inventory, "node", "hold", "desk", "--kubeconfig", kubeconfig)
    assert said.code == 0 and "desk: the cluster stays off it" in said.stderr


def test_an_unknown_node_is_a_clear_error(
    cli: Callable[..., CliResult], inventory: Path, kubeconfig: Path
) -> None:
    result = cli("-i", inventory, "node", "hold", "nope", "--kubeconfig", kubeconfig)
    assert result.code == 1 and "cannot annotate node nope" in result.stderr
    assert "not found" in result.stderr and "Traceback" not in result.stderr


def test_a_held_node_reads_as_held() -> None:
    notes = {GUARD_HELD_SINCE: "2026-12-01T12:00:00+00:00", GUARD_HELD_REASON: "alice on seat0"}
    node = {"metadata": {"name": "desk", "annotations": notes}, "spec": {}, "status": {}}
    assert summarise(node).held == Held("2026-12-01T12:00:00+00:00", "alice on seat0")
    by_hand = {"metadata": {"annotations": {GUARD_OVERRIDE: "hold"}}}
    assert held_of(by_hand) == Held("", "", "hold")
    assert held_of({"metadata": {"annotations": {GUARD_OVERRIDE: "sometimes"}}}) is None
    assert held_of({"metadata": {}}) is None


def test_status_shows_who_holds_a_node() -> None:
    from rich.console import Console

    from kubani.cli.status import render
    from kubani.cluster.status import ClusterStatus, MachineStatus
    from kubani.vocabulary import NodeState

    notes = {GUARD_HELD_SINCE: "2026-12-01T12:00:00+00:00", GUARD_HELD_REASON: "alice on seat0"}
    node = summarise({"metadata": {"name": "desk", "annotations": notes},
                      "status": {"conditions": [{"type": "Ready", "status": "True"}]}})  # fmt: skip
    machine = MachineStatus("desk", NodeState.READY, "worker", True, True, "100.64.0.9",
                            "online", "direct", node)  # fmt: skip
    since = "2026-12-01T12:00:00+00:00"
    held = {"since": since, "reason": "alice on seat0", "override": None}
    assert machine.as_json()["held"] == held
    status = ClusterStatus("lab", "https://100.64.0.1:6443", None, None, machines=[machine])
    console = Console(width=250, record=True)
    console.print(render(status))
    assert (
        "held by its owner since 2026-12-01T12:00:00+00:00: alice on seat0" in console.export_text()
    )


def test_the_tui_s_node_row_says_held() -> None:
    from kubani.cluster.rows import node_row

    notes = {GUARD_HELD_SINCE: "2026-12-01T12:00:00+00:00", GUARD_HELD_REASON: "alice on seat0"}
    ready = {"conditions": [{"type": "Ready", "status": "True"}]}
    held = {"metadata": {"name": "desk", "annotations": notes}, "status": ready}
    let_in = {"metadata": {"name": "desk", "annotations": {GUARD_OVERRIDE: "release"}},
              "status": ready}  # fmt: skip
    assert node_row(held, None, False, None, None, 0).cells[2] == "Ready,Held"
    assert node_row(let_in, None, False, None, None, 0).cells[2] == "Ready"
