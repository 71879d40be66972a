"""A K3s server that joins an existing one (``server:`` in a server's configuration).

It checks the cluster CA against the token, fetches the cluster's CAs with the server token
(as K3s's bootstrap does), issues its own serving certificate for its own addresses, and
serves the API on :6443. The datastore stays on the first server: requests are forwarded
there (watch streams included), so this is an HA control plane in shape and behaviour for
clients, not a replicated datastore.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from kubani.lab.k3s import pki
from kubani.lab.k3s.agent import Agent
from kubani.lab.k3s.apiserver import Response, status_error
from kubani.lab.k3s.client import ApiError, Client
from kubani.lab.k3s.http import KubeHTTPServer
from kubani.lab.k3s.notify import notify

BOOTSTRAP_FILES = ("server-ca.crt", "server-ca.key", "client-ca.crt", "client-ca.key")


def bootstrap_payload(tls: Path) -> dict[str, str]:
    """What the first server hands a joining server that presented the server token."""
    return {name: (tls / name).read_text() for name in BOOTSTRAP_FILES}


class Forwarder:
    """Sends API requests on to the server that holds the datastore."""

    def __init__(self, upstream: str, ca_pem: str, cert: Path, key: Path) -> None:
        parts = urlsplit(upstream)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 6443
        self.with_cert = ssl.create_default_context(cadata=ca_pem)
        self.with_cert.check_hostname = False
        self.with_cert.load_cert_chain(str(cert), str(key))
        self.without_cert = ssl.create_default_context(cadata=ca_pem)
        self.without_cert.check_hostname = False

    def handle(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Response:
        bearer = headers.get("authorization", "").startswith("Bearer ")
        context = self.without_cert if bearer else self.with_cert
        connection = http.client.HTTPSConnection(
            self.host, self.port, timeout=3700, context=context
        )
        forwarded = {
            k: v for k, v in headers.items() if k in ("authorization", "content-type", "accept")
        }
        try:
            connection.request(method, target, body=body or None, headers=forwarded)
            response = connection.getresponse()
        except OSError as exc:
            connection.close()
            return status_error(
                503,
                "ServiceUnavailable",
                f"cannot reach the datastore's server {self.host}:{self.port}: {exc}",
            )
        content_type = response.getheader("Content-Type", "application/json")
        if "watch=" in target and response.status == 200:
            return Response(200, content_type=content_type, stream=_lines(connection, response))
        data = response.read()
        connection.close()
        return Response(response.status, data, content_type)


def _lines(
    connection: http.client.HTTPSConnection, response: http.client.HTTPResponse
) -> Iterator[bytes]:
    try:
        while True:
            line = response.readline()
            if not line:
                return
            yield line
    finally:
        connection.close()


def run_joining_server(server: Any, version: str) -> int:
    """``k3s server`` with ``server:`` set. ``server`` is the K3sServer being started."""
    from kubani.lab.k3s.server import (
        API_PORT,
        FatalError,
        _heartbeat,
        _log,
        kubelet_cert_for,
    )

    config = server.config
    upstream = str(config["server"]).rstrip("/")
    token = pki.Token.parse(str(config.get("token") or ""))
    if not token.secret:
        raise FatalError("a joining server needs the cluster token")
    try:
        ca_pem = Client(upstream).request("GET", "/cacerts", raw=True).decode()
    except (ApiError, OSError) as exc:
        raise FatalError(f"failed to get CA certs from {upstream}: {exc}") from exc
    if token.ca_hash and hashlib.sha256(ca_pem.encode()).hexdigest() != token.ca_hash:
        raise FatalError("token CA hash does not match the Cluster CA certificate hash")
    bootstrap = Client(
        upstream, ca_pem=ca_pem, headers={"Authorization": pki.basic_auth("server", token.secret)}
    )
    try:
        files = bootstrap.request("POST", "/v1-k3s/server-bootstrap", {})
    except ApiError as exc:
        raise FatalError(f"{upstream}/v1-k3s/server-bootstrap: {exc}") from exc
    tls = server.paths.tls
    tls.mkdir(parents=True, exist_ok=True)
    for name in BOOTSTRAP_FILES:
        path = tls / name
        path.write_text(files[name])
        path.chmod(0o600 if name.endswith(".key") else 0o644)
    server.etcd = True
    server.prepare_pki()
    server.prepare_token()
    server.write_kubeconfig()

    forwarder = Forwarder(upstream, ca_pem, tls / "client-admin.crt", tls / "client-admin.key")

    def authenticate(headers: dict[str, str], cert: dict[str, Any] | None) -> bool:
        return bool(cert) or headers.get("authorization", "").startswith("Bearer node:")

    def extra(
        method: str, path: str, headers: dict[str, str], body: bytes, cert: dict[str, Any] | None
    ) -> Response | None:
        if path == "/cacerts":
            return Response(200, ca_pem, "text/plain")
        if path == "/ping":
            return Response(200, "pong", "text/plain")
        if path.startswith("/v1-k3s/"):
            if path == "/v1-k3s/snapshot" and not cert:
                return status_error(401, "Unauthorized", "Unauthorized")
            return forwarder.handle(method, path, headers, body)
        return None

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(
        str(tls / "serving-kube-apiserver.crt"), str(tls / "serving-kube-apiserver.key")
    )
    context.load_verify_locations(str(tls / "client-ca.crt"))
    context.verify_mode = ssl.CERT_OPTIONAL
    bind = str(config.get("bind-address") or "0.0.0.0")
    http_server = KubeHTTPServer((bind, API_PORT), forwarder, context, authenticate, extra)
    http_server.serve_in_thread()
    agent = Agent(
        config,
        f"https://127.0.0.1:{API_PORT}",
        server.node_name,
        is_server=True,
        etcd=True,
        version=version,
        data_dir=server.paths.data_dir,
        heartbeat_s=_heartbeat(config),
        stop=server.stop,
    )
    agent.join(token.secret)
    kubelet_cert_for(server.paths.data_dir, tls, agent)
    agent.register()
    threading.Thread(target=agent.heartbeat_forever, daemon=True, name="heartbeat").start()
    notify("READY=1")
    _log("info", f"k3s server {server.node_name} joined {upstream}")
    server.stop.wait()
    http_server.shutdown()
    return 0


def bootstrap_route(tls: Path, secret: str, headers: dict[str, str]) -> Response:
    try:
        user, _, given = (
            base64.b64decode(headers.get("authorization", "").removeprefix("Basic "))
            .decode()
            .partition(":")
        )
    except ValueError:
        return status_error(401, "Unauthorized", "Unauthorized")
    if user != "server" or given != secret:
        return status_error(401, "Unauthorized", "Unauthorized")
    return Response(200, json.dumps(bootstrap_payload(tls)))
