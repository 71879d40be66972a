"""K3s's supervisor port (6443): its own endpoints (``/cacerts``, ``/ping``, ``/v1-k3s/...``)
answered here, every other request passed to the real kube-apiserver behind it (6444).

K3s serves both from one process, so the API server sees the client's own certificate. Here
the API server is another process: for a client that shows a certificate (verified against
the client CA), the supervisor opens its upstream connection with a certificate for the same
user and groups, issued from that CA (the server holds its key, as K3s does), and then relays
the bytes unchanged. A client without a certificate is relayed as it is (bearer tokens reach
the API server untouched). A connection whose first request is one of K3s's own is answered
and closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubani_lab.k3s import pki

MAX_HEAD = 64 * 1024
OWN_PATHS = frozenset({"/cacerts", "/ping", "/db/info"})
OWN_PREFIX = "/v1-k3s/"


@dataclass(frozen=True)
class Identity:
    user: str
    groups: tuple[str, ...]


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    identity: Identity | None


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes
    content_type: str = "application/json"


Route = Callable[[Request], Reply | None]
REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found"}


def identity_of(peer: dict[str, Any] | None) -> Identity | None:
    """The user (CN) and groups (O) of a verified client certificate."""
    if not peer:
        return None
    user, groups = "", []
    for rdn in peer.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                user = value
            elif key == "organizationName":
                groups.append(value)
    return Identity(user, tuple(groups)) if user else None


class Supervisor:
    def __init__(
        self,
        address: tuple[str, int],
        tls: Path,
        upstream_port: int,
        route: Route,
    ) -> None:
        self.address = address
        self.tls = tls
        self.upstream_port = upstream_port
        self.route = route
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._contexts: dict[Identity | None, ssl.SSLContext] = {}
        self._started = threading.Event()
        self._error: OSError | None = None

    # ---- TLS -------------------------------------------------------------------------

    def _server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(
            str(self.tls / "serving-kube-apiserver.crt"),
            str(self.tls / "serving-kube-apiserver.key"),
        )
        context.load_verify_locations(str(self.tls / "client-ca.crt"))
        context.verify_mode = ssl.CERT_OPTIONAL
        context.set_alpn_protocols(["http/1.1"])
        return context

    def _upstream_context(self, identity: Identity | None) -> ssl.SSLContext:
        context = self._contexts.get(identity)
        if context is not None:
            return context
        context = ssl.create_default_context(cafile=str(self.tls / "server-ca.crt"))
        context.check_hostname = False  # 127.0.0.1, verified against the server CA
        context.set_alpn_protocols(["http/1.1"])
        if identity is not None:
            folder = self.tls / "supervisor-relay"
            folder.mkdir(mode=0o700, exist_ok=True)
            stem = f"{len(self._contexts)}"
            pki.issue(
                self.tls / "client-ca.crt",
                self.tls / "client-ca.key",
                folder / f"{stem}.crt",
                folder / f"{stem}.key",
                identity.user,
                organizations=identity.groups,
            )
            context.load_cert_chain(str(folder / f"{stem}.crt"), str(folder / f"{stem}.key"))
        self._contexts[identity] = context
        return context

    # ---- serving -----------------------------------------------------------------------

    def start(self) -> None:
        thread = threading.Thread(target=self._run, name="supervisor", daemon=True)
        thread.start()
        self._started.wait(30)
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._server = self._loop.run_until_complete(
                asyncio.start_server(
                    self._connection,
                    *self.address,
                    ssl=self._server_context(),
                    reuse_address=True,
                    ssl_handshake_timeout=10,
                )
            )
        except OSError as exc:  # the port is taken, an address is not ours...
            self._error = exc
            self._started.set()
            return
        self._started.set()
        self._loop.run_forever()

    def stop(self) -> None:
        if self._server is not None:
            self._loop.call_soon_threadsafe(self._server.close)
        self._loop.call_soon_threadsafe(self._loop.stop)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await self._serve(reader, writer)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            pass
        finally:
            with contextlib.suppress(OSError, RuntimeError):
                writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        if len(head) > MAX_HEAD:
            return
        request_line, *header_lines = head.decode("latin-1").split("\r\n")
        method, target, _version = request_line.split(" ", 2)
        path = target.split("?", 1)[0]
        identity = identity_of(writer.get_extra_info("peercert"))
        if path in OWN_PATHS or path.startswith(OWN_PREFIX):
            headers = {}
            for line in header_lines:
                if ":" in line:
                    name, value = line.split(":", 1)
                    headers[name.strip().lower()] = value.strip()
            length = int(headers.get("content-length") or 0)
            body = await reader.readexactly(length) if length else b""
            # K3s's own work (joins, snapshots) may take a while: off the relaying loop.
            reply = await asyncio.get_running_loop().run_in_executor(
                None, self.route, Request(method, path, headers, body, identity)
            )
            if reply is None:
                reply = Reply(404, b'{"kind":"Status","status":"Failure","code":404}')
            writer.write(
                f"HTTP/1.1 {reply.status} {REASONS.get(reply.status, 'Error')}\r\n"
                f"Content-Type: {reply.content_type}\r\nContent-Length: {len(reply.body)}\r\n"
                "Connection: close\r\n\r\n".encode()
                + reply.body
            )
            await writer.drain()
            return
        upstream_reader, upstream_writer = await asyncio.open_connection(
            "127.0.0.1", self.upstream_port, ssl=self._upstream_context(identity)
        )
        upstream_writer.write(head)
        try:
            await asyncio.gather(_pump(reader, upstream_writer), _pump(upstream_reader, writer))
        finally:
            with contextlib.suppress(OSError, RuntimeError):
                upstream_writer.close()


async def _pump(source: asyncio.StreamReader, target: asyncio.StreamWriter) -> None:
    try:
        while chunk := await source.read(65536):
            target.write(chunk)
            await target.drain()
    finally:
        with contextlib.suppress(OSError, RuntimeError):
            if target.can_write_eof():
                target.write_eof()
            else:
                target.close()
