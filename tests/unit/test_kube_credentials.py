"""Kubeconfigs from the wild (other clusters' contexts, exec plugins, missing files): each
failure says what in the kubeconfig is wrong, not that the API server is unreachable."""

from __future__ import annotations

import asyncio
import json
import ssl
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from kubani.kube.client import CredentialsError, Kube, KubeError


class _Api(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        seen = self.headers.get("Authorization", "")
        body = json.dumps({"kind": "NodeList", "items": [], "seen": seen}).encode()
        self.send_response(200 if seen == "Bearer from-plugin" else 401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def api() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), _Api)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _kubeconfig(tmp_path: Path, server: str, user: str, cluster_extra: str = "") -> Path:
    path = tmp_path / "kubeconfig"
    path.write_text(
        "apiVersion: v1\nkind: Config\n"
        f"clusters: [{{name: c, cluster: {{server: '{server}'{cluster_extra}}}}}]\n"
        f"users: [{{name: u, user: {user}}}]\n"
        "contexts: [{name: c, context: {cluster: c, user: u}}]\ncurrent-context: c\n"
    )
    return path


def _plugin(tmp_path: Path, output: str) -> Path:
    plugin = tmp_path / "plugin"
    plugin.write_text(f"#!{sys.executable}\nprint({output!r})\n")
    plugin.chmod(0o755)
    return plugin


def _nodes(kubeconfig: Path) -> object:
    async def call() -> object:
        async with Kube(kubeconfig, timeout=5) as kube:
            return await kube.nodes()

    return asyncio.run(call())


EXEC = "{{exec: {{apiVersion: client.authentication.k8s.io/v1beta1, command: '{}'}}}}"
TOKEN = json.dumps({"apiVersion": "client.authentication.k8s.io/v1beta1",
                    "kind": "ExecCredential", "status": {"token": "from-plugin"}})  # fmt: skip


def test_a_working_exec_plugin_gives_the_token(api: str, tmp_path: Path) -> None:
    kubeconfig = _kubeconfig(tmp_path, api, EXEC.format(_plugin(tmp_path, TOKEN)))
    assert _nodes(kubeconfig) == []  # the fake API answers 401 to any other token


@pytest.mark.parametrize(
    ("user", "said"),
    [
        (EXEC.format("/nonexistent/kubelogin"), "/nonexistent/kubelogin"),
        ("{tokenFile: /nonexistent/token}", "Token file /nonexistent/token not found"),
    ],
    ids=["missing-plugin", "missing-token-file"],
)
def test_credentials_that_cannot_be_had_are_named(
    api: str, tmp_path: Path, user: str, said: str
) -> None:
    with pytest.raises(CredentialsError) as caught:
        _nodes(_kubeconfig(tmp_path, api, user))
    message = str(caught.value)
    assert "cannot get the kubeconfig's credentials" in message and said in message
    assert "cannot reach" not in message


def test_a_plugin_that_prints_no_credential_is_named(api: str, tmp_path: Path) -> None:
    kubeconfig = _kubeconfig(tmp_path, api, EXEC.format(_plugin(tmp_path, "not json")))
    with pytest.raises(CredentialsError, match="kubeconfig's credentials"):
        _nodes(kubeconfig)


def test_missing_tls_files_are_named_with_their_path(tmp_path: Path) -> None:
    kubeconfig = _kubeconfig(
        tmp_path, "https://127.0.0.1:1", "{token: t}", ", certificate-authority: ca.crt"
    )
    with pytest.raises(KubeError) as caught:
        Kube(kubeconfig)
    assert f"certificate-authority file {tmp_path / 'ca.crt'} does not exist" in str(caught.value)


def test_a_certificate_that_is_not_pem_is_named(tmp_path: Path) -> None:
    (tmp_path / "ca.crt").write_text("not a certificate\n")
    kubeconfig = _kubeconfig(
        tmp_path, "https://127.0.0.1:1", "{token: t}", ", certificate-authority: ca.crt"
    )
    with pytest.raises(KubeError) as caught:
        Kube(kubeconfig)
    assert "not valid PEM" in str(caught.value)
    assert isinstance(caught.value.__cause__, ssl.SSLError)


def test_a_kubeconfig_without_a_current_context_says_so(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n")
    with pytest.raises(KubeError, match="it names no current context"):
        Kube(kubeconfig)


_CLUSTER = "clusters:\n- name: c\n  cluster: {server: 'https://127.0.0.1:1'}\n"
_USER = "users:\n- name: u\n  user: {token: t}\n"


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("", "it names no current context"),
        ("- 1\n", "it is not a kubeconfig (kind: Config)"),
        ("just text\n", "it is not a kubeconfig (kind: Config)"),
        ("kind: Config\ncontexts: {a: 1}\n", "contexts is not a list"),
        ("kind: Config\ncontexts: [7]\ncurrent-context: a\n", "it has no context named 'a'"),
        (f"kind: Config\n{_CLUSTER}{_USER}contexts:\n- name: a\n  context: {{cluster: c}}\n"
         "current-context: zzz\n", "it has no context named 'zzz'"),
        (f"kind: Config\n{_USER}contexts:\n- name: a\n  context: {{cluster: gone, user: u}}\n"
         "current-context: a\n", "context 'a' names cluster 'gone', which it does not define"),
        (f"kind: Config\n{_CLUSTER}users: null\ncontexts:\n- name: a\n"
         "  context: {cluster: c, user: u}\ncurrent-context: a\n",
         "context 'a' names user 'u', which it does not define"),
        ("kind: Config\nclusters:\n- name: c\n  cluster: {}\ncontexts:\n- name: a\n"
         "  context: {cluster: c}\ncurrent-context: a\n", "cluster 'c' has no server address"),
    ],
    ids=["empty", "list", "scalar", "contexts-map", "context-not-entry", "no-such-context",
         "no-such-cluster", "no-such-user", "no-server"],
)  # fmt: skip
def test_a_kubeconfig_whose_context_does_not_resolve_says_what_is_missing(
    tmp_path: Path, text: str, said: str
) -> None:
    """lightkube stops on these with bare Python messages ('NoneType' object has no
    attribute 'get', 'clusters'); the file's own shape is said instead."""
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(text)
    with pytest.raises(KubeError) as caught:
        Kube(kubeconfig)
    assert said in str(caught.value)
    assert str(caught.value).count("(fix: ") <= 1
    assert "object" not in str(caught.value)


def test_a_context_chosen_by_name_is_checked_too(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        f"kind: Config\n{_CLUSTER}{_USER}contexts:\n- name: a\n  context: {{cluster: c, user: u}}\n"
    )
    with pytest.raises(KubeError, match="it has no context named 'b'"):
        Kube(kubeconfig, context="b")
    assert Kube(kubeconfig, context="a").server == "https://127.0.0.1:1"


def test_the_home_kubeconfig_is_read_and_checked_as_kubectl_reads_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    home = tmp_path / ".kube" / "config"
    home.parent.mkdir()
    home.write_text(f"kind: Config\n{_CLUSTER}{_USER}contexts: []\ncurrent-context: gone\n")
    with pytest.raises(KubeError) as caught:
        Kube()
    assert f"cannot read the kubeconfig {home}: it has no context named 'gone'" in str(caught.value)
    home.write_text(
        f"kind: Config\n{_CLUSTER}{_USER}contexts:\n- name: a\n  context: {{cluster: c, user: u}}\n"
        "current-context: a\n"
    )
    assert Kube().server == "https://127.0.0.1:1"
