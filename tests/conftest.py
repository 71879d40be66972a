"""Shared test helpers: the real console script, inventories in tmp, a local HTTP server."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
BIN = Path(sys.executable).parent


# The keys every discovered peer has, whatever the source.
PEER_KEYS = frozenset(
    {
        "hostname",
        "dns_name",
        "tailscale_ips",
        "ipv4",
        "os",
        "online",
        "last_seen",
        "tags",
        "relay",
        "is_self",
        "in_cluster",
    }
)


def local_kubeconfig(path: Path, port: int) -> Path:
    """A kubeconfig for a local fake API on ``port`` (plain HTTP, a bearer token)."""
    path.write_text(
        "apiVersion: v1\nkind: Config\n"
        f"clusters: [{{name: c, cluster: {{server: 'http://127.0.0.1:{port}'}}}}]\n"
        "users: [{name: u, user: {token: t}}]\n"
        "contexts: [{name: c, context: {cluster: c, user: u}}]\ncurrent-context: c\n"
    )
    return path


def fixture_json(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


def run_cli(
    *args: str | Path,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 60,
) -> CliResult:
    """Run the installed ``cluster-mgr`` as a user would, in a clean environment."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("KUBANI_", "TAILSCALE_"))}
    full_env.update({"NO_COLOR": "1", "COLUMNS": "200"})
    # The environment's own bin first, as `uv run` does (sops comes from there in tests).
    full_env["PATH"] = f"{BIN}{os.pathsep}{full_env.get('PATH', '')}"
    full_env.update(env or {})
    proc = subprocess.run(
        [str(BIN / "cluster-mgr"), *map(str, args)],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd,
        timeout=timeout,
        check=False,
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Records kept under the cache folder (the inventory's last good check) stay in tmp."""
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("xdg-cache"))


@pytest.fixture
def cli() -> Callable[..., CliResult]:
    return run_cli


@pytest.fixture
def inventory(tmp_path: Path) -> Path:
    """A copy of the comment-rich test inventory (hosts.yml + group_vars/)."""
    target = tmp_path / "inventory"
    shutil.copytree(FIXTURES / "inventory", target)
    return target / "hosts.yml"


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` with its bytes, to prove that nothing changed."""
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not p.name.endswith(".lock")
    }


Handler = Callable[[str, str, dict[str, str], bytes], tuple[int, Any]]


@dataclass
class FakeHttp:
    """A real HTTP server on loopback whose replies the test decides."""

    url: str
    routes: dict[tuple[str, str], Handler | tuple[int, Any]] = field(default_factory=dict)
    requests: list[tuple[str, str, dict[str, str], bytes]] = field(default_factory=list)
    delay: float = 0.0


@pytest.fixture
def fake_http() -> Iterator[FakeHttp]:
    state = FakeHttp(url="")

    class Handle(BaseHTTPRequestHandler):
        def _serve(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            path = self.path.split("?")[0]
            headers = {k.lower(): v for k, v in self.headers.items()}
            state.requests.append((method, self.path, headers, body))
            if state.delay:
                threading.Event().wait(state.delay)
            route = state.routes.get((method, path))
            if route is None:
                status, payload = 404, {"message": "not found"}
            elif callable(route):
                status, payload = route(method, self.path, headers, body)
            else:
                status, payload = route
            raw = isinstance(payload, bytes)  # an HTML page, say, as some servers answer
            data = payload if raw else json.dumps(payload).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "text/html" if raw else "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def do_DELETE(self) -> None:
            self._serve("DELETE")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handle)
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
