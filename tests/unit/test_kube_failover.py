"""Which API server a client uses when the kubeconfig's does not answer (HA clusters)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from kubani.kube.client import Kube, first_answering


@pytest.fixture
def listening() -> Iterator[str]:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        yield f"https://127.0.0.1:{server.getsockname()[1]}"


def _closed_port() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"https://127.0.0.1:{probe.getsockname()[1]}"  # closed once the block ends


def test_the_kubeconfigs_server_is_kept_while_it_answers(listening: str) -> None:
    assert first_answering(listening, [_closed_port()]) == listening


def test_the_first_answering_alternative_is_taken(listening: str) -> None:
    down = _closed_port()
    assert first_answering(down, [_closed_port(), listening]) == listening


def test_nothing_answers_keeps_the_kubeconfigs_server_for_its_error() -> None:
    down = _closed_port()
    assert first_answering(down, [_closed_port()]) == down
    assert first_answering(down, []) == down


def test_the_client_talks_to_the_alternative(listening: str, tmp_path: Path) -> None:
    down = _closed_port()
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\n"
        f"clusters: [{{name: c, cluster: {{server: '{down}'}}}}]\n"
        "users: [{name: u, user: {token: t}}]\n"
        "contexts: [{name: c, context: {cluster: c, user: u}}]\ncurrent-context: c\n"
    )
    kube = Kube(kubeconfig, alternatives=[listening])
    assert (kube.server, kube.configured_server) == (listening, down)
