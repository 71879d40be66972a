"""The lab's tailnet control server: the real headscale, in a network namespace of its own.

It serves HTTPS (a lab CA signs its certificate; nodes trust that CA through their system
store, the management tailscaled through ``SSL_CERT_FILE``), runs its embedded DERP server
as the only DERP region, hands out addresses from the lab's own slice of 100.64.0.0/10 and
has MagicDNS on under a lab base domain. Everything that would call out is off: no public
DERP map, no update check, no log upload, no global nameservers; and its namespace has no
route beyond the lab bridge anyway.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from kubani_lab.host import LabError, start_daemon
from kubani_lab.k3s import pki

HTTPS_PORT = 443
STUN_PORT = 3478
DERP_REGION_ID = 900
DERP_REGION_CODE = "lab"
USER = "lab"
CLUSTER_TAGS = ("tag:k3s",)
GPU_TAG = "tag:gpu"
START_WAIT_S = 30.0


@dataclass(frozen=True)
class ControlServer:
    """Where a lab's headscale keeps its files and how it is reached."""

    folder: Path
    address: str  # on the lab bridge
    tailnet_prefix: str  # the slice of 100.64.0.0/10 it hands out
    base_domain: str

    @property
    def url(self) -> str:
        return f"https://{self.address}"

    @property
    def config(self) -> Path:
        return self.folder / "config.yaml"

    @property
    def socket(self) -> Path:
        return self.folder / "headscale.sock"

    @property
    def ca_cert(self) -> Path:
        return self.folder / "ca.crt"

    @property
    def api_key_file(self) -> Path:
        return self.folder / "api-key"

    @property
    def log(self) -> Path:
        return self.folder / "headscale.log"

    def api_key(self) -> str:
        return self.api_key_file.read_text().strip()


def write_config(server: ControlServer) -> None:
    """Certificates, ACL policy and headscale's config.yaml (idempotent)."""
    folder = server.folder
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    pki.make_ca(server.ca_cert, folder / "ca.key", "kubani-lab-ca")
    if not (folder / "tls.crt").exists():
        pki.issue(
            server.ca_cert,
            folder / "ca.key",
            folder / "tls.crt",
            folder / "tls.key",
            "headscale",
            sans=[server.address],
            server=True,
        )
    tags = [*CLUSTER_TAGS, GPU_TAG]
    policy = {
        "tagOwners": {tag: [f"{USER}@"] for tag in tags},
        "acls": [{"action": "accept", "src": ["*"], "dst": ["*:*"]}],
        # Captive portal detection would probe controlplane.tailscale.com and
        # login.tailscale.com: the control server turns it off, as a tailnet admin can.
        "nodeAttrs": [{"target": ["*"], "attr": ["disable-captive-portal-detection"]}],
    }
    (folder / "policy.json").write_text(json.dumps(policy, indent=2))
    config = {
        "server_url": server.url,
        "listen_addr": f"{server.address}:{HTTPS_PORT}",
        "metrics_listen_addr": "127.0.0.1:9090",
        "grpc_listen_addr": "127.0.0.1:50443",
        "noise": {"private_key_path": str(folder / "noise_private.key")},
        "prefixes": {"v4": server.tailnet_prefix, "allocation": "sequential"},
        "derp": {
            "server": {
                "enabled": True,
                "region_id": DERP_REGION_ID,
                "region_code": DERP_REGION_CODE,
                "region_name": "Kubani lab DERP",
                "verify_clients": True,
                "stun_listen_addr": f"{server.address}:{STUN_PORT}",
                "private_key_path": str(folder / "derp_server_private.key"),
                "automatically_add_embedded_derp_region": True,
                "ipv4": server.address,
            },
            # No public DERP map: the embedded server is the only region.
            "urls": [],
            "paths": [],
            "auto_update_enabled": False,
        },
        "disable_check_updates": True,
        "node": {"expiry": 0},
        "database": {"type": "sqlite", "sqlite": {"path": str(folder / "db.sqlite")}},
        "tls_cert_path": str(folder / "tls.crt"),
        "tls_key_path": str(folder / "tls.key"),
        "log": {"level": "info", "format": "text"},
        "policy": {"mode": "file", "path": str(folder / "policy.json")},
        "dns": {
            "magic_dns": True,
            "base_domain": server.base_domain,
            "override_local_dns": False,
            "nameservers": {"global": [], "split": {}},
            "search_domains": [],
            "extra_records": [],
        },
        "unix_socket": str(server.socket),
        "unix_socket_permission": "0700",
        "logtail": {"enabled": False},
        "taildrop": {"enabled": False},
    }
    (folder / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))


def start(server: ControlServer, binary: Path, netns: str) -> subprocess.Popen[bytes]:
    """Start headscale inside ``netns`` and wait until it answers on its socket."""
    return start_daemon(
        ["ip", "netns", "exec", netns, str(binary), "serve", "--config", str(server.config)],
        server.log,
        lambda: (
            server.socket.exists() and cli(server, binary, "users", "list", check=False)[0] == 0
        ),
        "the lab's headscale",
        START_WAIT_S,
    )


def cli(server: ControlServer, binary: Path, *args: str, check: bool = True) -> tuple[int, str]:
    """headscale's own CLI, over its unix socket (no network)."""
    result = subprocess.run(
        [str(binary), "--config", str(server.config), "--output", "json", *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if check and result.returncode != 0:
        raise LabError(f"headscale {' '.join(args[:2])} failed", result.stderr.strip()[-400:], None)
    return result.returncode, result.stdout


def ensure_api_key(server: ControlServer, binary: Path) -> None:
    """An API key for the lab (0600), made once through the CLI."""
    if server.api_key_file.exists():
        return
    _, out = cli(server, binary, "apikeys", "create", "--expiration", "3650d")
    key = json.loads(out) if out.strip().startswith('"') else out.strip()
    partial = server.api_key_file.with_name(".api-key.partial")
    partial.touch(mode=0o600)
    partial.chmod(0o600)
    partial.write_text(str(key).strip() + "\n")
    partial.replace(server.api_key_file)


def _api(server: ControlServer, method: str, path: str, body: Any = None) -> Any:
    import ssl

    import httpx

    trusted = ssl.create_default_context(cafile=str(server.ca_cert))
    with httpx.Client(verify=trusted, timeout=15, trust_env=False) as client:
        response = client.request(
            method,
            f"{server.url}/api/v1/{path}",
            headers={"Authorization": f"Bearer {server.api_key()}"},
            json=body,
        )
    if response.status_code >= 400:
        raise LabError(
            f"headscale API {method} /api/v1/{path} failed",
            f"HTTP {response.status_code}: {response.text[:300]}",
            None,
        )
    return response.json()


def ensure_user(server: ControlServer) -> str:
    """The id of the lab's headscale user."""
    for user in _api(server, "GET", "user").get("users") or []:
        if user.get("name") == USER:
            return str(user["id"])
    return str(_api(server, "POST", "user", {"name": USER})["user"]["id"])


def mint_auth_key(server: ControlServer, tags: list[str]) -> str:
    """A single-use, pre-authorised key that tags the node it joins."""
    user = ensure_user(server)
    expiration = (datetime.now(UTC) + timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%SZ")
    reply = _api(
        server,
        "POST",
        "preauthkey",
        {
            "user": user,
            "reusable": False,
            "ephemeral": False,
            "expiration": expiration,
            "aclTags": tags,
        },
    )
    return str(reply["preAuthKey"]["key"])


def nodes(server: ControlServer) -> list[dict[str, Any]]:
    reply = _api(server, "GET", "node")
    return list(reply.get("nodes") or [])


def node_id(server: ControlServer, hostname: str) -> str | None:
    for node in nodes(server):
        if node.get("name") == hostname or node.get("givenName") == hostname:
            return str(node["id"])
    return None


def _known_node(server: ControlServer, hostname: str) -> str:
    found = node_id(server, hostname)
    if found is None:
        raise LabError(
            f"headscale has no node {hostname!r}", "it never joined the lab tailnet", None
        )
    return found


def expire_node(server: ControlServer, hostname: str) -> None:
    """Expire the node's key now: it has to log in again."""
    _api(server, "POST", f"node/{_known_node(server, hostname)}/expire")


def disable_expiry(server: ControlServer, hostname: str) -> None:
    """Key expiry off, as for a server. Also what lets a logged-out tagged node log in again:
    headscale 0.29 keeps a tagged node's (past) expiry when it re-registers."""
    _api(server, "POST", f"node/{_known_node(server, hostname)}/expire?disableExpiry=true")
