"""HTTP(S) front of the stand-in API server: HTTP/1.1, chunked watch streams, TLS with
client certificates or bearer tokens, and extra routes (K3s's own endpoints)."""

from __future__ import annotations

import contextlib
import select
import socket
import ssl
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

from kubani.lab.k3s.apiserver import Response, status_error


class Handler(Protocol):
    def handle(
        self, method: str, target: str, headers: dict[str, str], body: bytes
    ) -> Response: ...


# (method, path, headers, body, peer certificate) -> Response, or None to fall through
ExtraRoute = Callable[[str, str, dict[str, str], bytes, dict[str, Any] | None], Response | None]
Authenticator = Callable[[dict[str, str], dict[str, Any] | None], bool]


class KubeHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(
        self,
        address: tuple[str, int],
        api: Handler,
        ssl_context: ssl.SSLContext | None = None,
        authenticate: Authenticator | None = None,
        extra: ExtraRoute | None = None,
    ) -> None:
        self.api = api
        self.ssl_context = ssl_context
        self.authenticate = authenticate
        self.extra = extra
        super().__init__(address, _Handler)

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, address = super().get_request()
        if self.ssl_context is not None:
            sock = self.ssl_context.wrap_socket(
                sock, server_side=True, do_handshake_on_connect=False
            )
        return sock, address

    def serve_in_thread(self) -> threading.Thread:
        thread = threading.Thread(target=self.serve_forever, name="apiserver", daemon=True)
        thread.start()
        return thread


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: KubeHTTPServer

    def setup(self) -> None:
        if isinstance(self.request, ssl.SSLSocket):
            self.request.settimeout(10)
            try:
                self.request.do_handshake()
            except (ssl.SSLError, OSError):
                self.close_connection = True
            self.request.settimeout(None)
        super().setup()

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _peer_cert(self) -> dict[str, Any] | None:
        if isinstance(self.connection, ssl.SSLSocket):
            with contextlib.suppress(ValueError):
                cert = self.connection.getpeercert()
                return dict(cert) if cert else None
        return None

    def _serve(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        response: Response | None = None
        if self.server.extra is not None:
            response = self.server.extra(method, self.path, headers, body, self._peer_cert())
        if response is None:
            authenticate = self.server.authenticate
            if authenticate is not None and not authenticate(headers, self._peer_cert()):
                response = status_error(401, "Unauthorized", "Unauthorized")
            else:
                response = self.server.api.handle(method, self.path, headers, body)
        self._write(response)

    def _write(self, response: Response) -> None:
        if response.stream is None:
            data = response.encode()
            self.send_response(response.status)
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-cache, private")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
            return
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache, private")
        self.end_headers()
        self.wfile.flush()
        try:
            for chunk in response.stream:
                if not chunk:
                    if self._client_gone():
                        break
                    continue
                self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
            self.close_connection = True
        finally:
            close = getattr(response.stream, "close", None)
            if close is not None:
                close()

    def _client_gone(self) -> bool:
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            if not readable:
                return False
            if isinstance(self.connection, ssl.SSLSocket):
                return bool(self.connection.pending() == 0 and self.connection.recv(1) == b"")
            return bool(self.connection.recv(1, socket.MSG_PEEK) == b"")
        except (OSError, ValueError, ssl.SSLError):
            return True

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def do_PATCH(self) -> None:
        self._serve("PATCH")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def do_HEAD(self) -> None:
        self._serve("GET")
