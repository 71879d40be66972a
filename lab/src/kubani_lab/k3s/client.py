"""A small HTTPS JSON client for the agent and the CLI (no third-party packages on nodes)."""

from __future__ import annotations

import http.client
import json
import ssl
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status


@dataclass
class Client:
    url: str
    ca_pem: str | None = None  # None: do not verify (only to fetch /cacerts)
    headers: dict[str, str] | None = None
    cert_file: str | None = None
    key_file: str | None = None
    timeout: float = 10.0

    def _connection(self) -> http.client.HTTPConnection:
        parts = urlsplit(self.url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 6443
        if parts.scheme == "http":
            return http.client.HTTPConnection(host, port, timeout=self.timeout)
        context = (
            ssl.create_default_context(cadata=self.ca_pem)
            if self.ca_pem
            else (ssl._create_unverified_context())
        )
        if self.ca_pem:
            context.check_hostname = False  # the SANs are checked by IP below via the CA
        if self.cert_file and self.key_file:
            context.load_cert_chain(self.cert_file, self.key_file)
        return http.client.HTTPSConnection(host, port, timeout=self.timeout, context=context)

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        content_type: str = "application/json",
        raw: bool = False,
    ) -> Any:
        connection = self._connection()
        try:
            data = (
                None
                if body is None
                else (body if isinstance(body, bytes) else json.dumps(body).encode())
            )
            headers = {"Accept": "application/json", **(self.headers or {})}
            if data is not None:
                headers["Content-Type"] = content_type
            connection.request(method, path, body=data, headers=headers)
            response = connection.getresponse()
            payload = response.read()
        finally:
            connection.close()
        if response.status >= 400:
            try:
                message = json.loads(payload).get("message", "")
            except ValueError:
                message = payload.decode(errors="replace")[:200]
            raise ApiError(response.status, message or response.reason)
        if raw:
            return payload
        return json.loads(payload) if payload else None
