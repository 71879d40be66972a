"""The lab's tailnet: the real tailscaled on every node and on the management side.

Nodes get tailscale the way a package installs it (``/usr/sbin/tailscaled``,
``/usr/bin/tailscale``, a ``tailscaled.service`` reading ``/etc/default/tailscaled``) and
trust the lab CA through their system store, as a machine trusts a private CA. The
management side runs its own tailscaled per lab (own state folder, socket and TUN name),
with ``--accept-dns=false`` and ``--netfilter-mode=off``: it adds routes for the lab's
tailnet peers only and leaves the machine's DNS and firewall alone.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubani_lab.host import LabError, start_daemon

TAILSCALED_PORT = 41641
NODE_UNIT = """[Unit]
Description=Tailscale node agent
Documentation=https://tailscale.com/kb/
Wants=network-pre.target
After=network-pre.target

[Service]
EnvironmentFile=/etc/default/tailscaled
ExecStart=/usr/sbin/tailscaled --state=/var/lib/tailscale/tailscaled.state \\
 --socket=/run/tailscale/tailscaled.sock --port=${PORT} $FLAGS
ExecStopPost=/usr/sbin/tailscaled --cleanup
Restart=on-failure
RuntimeDirectory=tailscale
RuntimeDirectoryMode=0755
StateDirectory=tailscale
StateDirectoryMode=0700
CacheDirectory=tailscale
CacheDirectoryMode=0750
Type=notify

[Install]
WantedBy=multi-user.target
"""
# No log upload, no support, no port mapping probes of a gateway: the lab never talks to
# anything outside itself.
QUIET_ENV = {"TS_NO_LOGS_NO_SUPPORT": "true", "TS_DISABLE_PORTMAPPER": "true"}
NODE_DEFAULTS = f'PORT="{TAILSCALED_PORT}"\nFLAGS="--no-logs-no-support"\n' + "".join(
    f"{name}={value}\n" for name, value in QUIET_ENV.items()
)
LAB_CA_NAME = "kubani-lab-ca.crt"
JOIN_WAIT_S = 60.0


def install_on_node(root: Path, binaries: Path, ca_cert: Path) -> None:
    """tailscale, tailscaled and their unit in a node's root filesystem (before it boots)."""
    for name, target in (("tailscaled", "usr/sbin/tailscaled"), ("tailscale", "usr/bin/tailscale")):
        destination = root / target
        if (
            not destination.exists()
            or destination.stat().st_size != (binaries / name).stat().st_size
        ):
            shutil.copy2(binaries / name, destination)
    (root / "lib/systemd/system/tailscaled.service").write_text(NODE_UNIT)
    (root / "etc/default/tailscaled").write_text(NODE_DEFAULTS)
    wants = root / "etc/systemd/system/multi-user.target.wants"
    wants.mkdir(parents=True, exist_ok=True)
    link = wants / "tailscaled.service"
    if not link.is_symlink():
        link.symlink_to("/lib/systemd/system/tailscaled.service")
    trust_ca(root, ca_cert)


def trust_ca(root: Path, ca_cert: Path) -> None:
    """Make a node trust the lab CA as ``update-ca-certificates`` would: the certificate in
    ``/usr/local/share/ca-certificates`` (so that a later run keeps it) and in the bundle
    that OpenSSL and Go read (written here, as running the tool in a chroot takes seconds)."""
    pem = ca_cert.read_bytes()
    local = root / "usr/local/share/ca-certificates" / LAB_CA_NAME
    local.parent.mkdir(parents=True, exist_ok=True)
    local.write_bytes(pem)
    bundle = root / "etc/ssl/certs/ca-certificates.crt"
    if pem not in bundle.read_bytes():
        with bundle.open("ab") as handle:
            handle.write(pem)


def up_flags(login_server: str, hostname: str) -> list[str]:
    """``tailscale up`` flags for a lab machine; its tags come from its auth key."""
    return [
        "--reset",  # exactly these settings, whatever an earlier `up` left
        f"--login-server={login_server}",
        f"--hostname={hostname}",
        f"--timeout={JOIN_WAIT_S:.0f}s",
    ]


@dataclass(frozen=True)
class ManagementDaemon:
    """The management machine's tailscaled for one lab."""

    folder: Path
    tun: str
    port: int
    binaries: Path
    # The only name server it may ask: a lab address where none answers. tailscaled looks up
    # controlplane.tailscale.com and login.tailscale.com (captive portal detection, right as
    # it comes up); those lookups must not leave the lab either.
    nameserver: str

    @property
    def socket(self) -> Path:
        return self.folder / "tailscaled.sock"

    @property
    def log(self) -> Path:
        return self.folder / "tailscaled.log"

    def cli(self, *args: str, check: bool = True, timeout: float = 90) -> str:
        result = subprocess.run(
            [str(self.binaries / "tailscale"), f"--socket={self.socket}", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            stdin=subprocess.DEVNULL,
        )
        if check and result.returncode != 0:
            raise LabError(
                f"tailscale {args[0]} failed on the management side",
                (result.stderr or result.stdout).strip()[-400:],
                f"see {self.log}",
            )
        return result.stdout

    def start(self, ca_cert: Path) -> subprocess.Popen[bytes]:
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        env = {
            "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
            # Go's TLS trusts only the lab CA: the control server is the lab's, nothing else.
            "SSL_CERT_FILE": str(ca_cert),
            # Its log configuration in the lab's folder, not the machine's /var/lib/tailscale.
            "TS_LOGS_DIR": str(self.folder / "logs"),
            **QUIET_ENV,
        }
        resolv = self.folder / "resolv.conf"
        resolv.write_text(f"nameserver {self.nameserver}\noptions timeout:1 attempts:1\n")
        # A mount namespace of its own (the network one stays the machine's) in which
        # /etc/resolv.conf is the lab's.
        contained = f'mount --bind {resolv} /etc/resolv.conf && exec "$0" "$@"'
        return start_daemon(
            [
                "unshare",
                "--mount",
                "--propagation",
                "private",
                "sh",
                "-c",
                contained,
                str(self.binaries / "tailscaled"),
                f"--tun={self.tun}",
                f"--statedir={self.folder / 'state'}",
                f"--socket={self.socket}",
                f"--port={self.port}",
                "--no-logs-no-support",
            ],
            self.log,
            lambda: self.socket.exists() and self.status(check=False) is not None,
            "the management side's tailscaled",
            20,
            env,
        )

    def status(self, check: bool = True) -> dict[str, Any] | None:
        try:
            text = self.cli("status", "--json", check=check, timeout=15)
        except subprocess.TimeoutExpired:
            return None
        try:
            parsed: dict[str, Any] = json.loads(text)
        except ValueError:
            return None
        return parsed

    def join(self, login_server: str, hostname: str, auth_key_file: Path) -> None:
        self.cli(
            "up",
            f"--auth-key=file:{auth_key_file}",
            *up_flags(login_server, hostname),
            "--accept-dns=false",
            "--netfilter-mode=off",
            "--accept-routes=false",
        )


def write_private(path: Path, text: str) -> None:
    """A secret on disk: 0600 from the first byte."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(text)
