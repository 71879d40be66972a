"""The lab's stand-in API server on loopback (plain HTTP) with a kubeconfig for it."""

from __future__ import annotations

from pathlib import Path

from kubani.lab.k3s.apiserver import ApiServer
from kubani.lab.k3s.http import KubeHTTPServer
from kubani.lab.k3s.store import Store


def write_kubeconfig(path: Path, server: str, name: str = "lab") -> Path:
    path.write_text(
        "apiVersion: v1\nkind: Config\n"
        f"clusters: [{{name: {name}, cluster: {{server: '{server}'}}}}]\n"
        "users: [{name: u, user: {token: t}}]\n"
        f"contexts: [{{name: {name}, context: {{cluster: {name}, user: u}}}}]\n"
        f"current-context: {name}\n"
    )
    return path


class StandInApi:
    def __init__(self, tmp: Path, store: Store | None = None) -> None:
        self.store = store or Store()
        self.api = ApiServer(self.store)
        self.http = KubeHTTPServer(("127.0.0.1", 0), self.api)
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}"
        self.api.advertise = self.url.removeprefix("http://")
        self.http.serve_in_thread()
        self.kubeconfig = write_kubeconfig(tmp / "kubeconfig", self.url)

    def close(self) -> None:
        self.http.shutdown()
        self.http.server_close()
