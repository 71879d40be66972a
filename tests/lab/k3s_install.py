"""Install the K3s stand-in on a lab node the way an air-gapped admin installs K3s."""

from __future__ import annotations

import shlex
import subprocess

from kubani_lab.lab import K3S_VERSION, Lab

UNIT = """[Unit]
Description=Lightweight Kubernetes
Wants=network-online.target
After=network-online.target

[Service]
Type=notify
KillMode=process
Delegate=yes
TimeoutStartSec=0
Restart=always
RestartSec=5s
ExecStart=/usr/local/bin/k3s {mode}

[Install]
WantedBy=multi-user.target
"""


def copy_artifacts(lab: Lab, node: str, version: str = K3S_VERSION) -> None:
    folder = lab.k3s_artifacts(version)
    lab.ssh_run(node, "mkdir -p /root/k3s-airgap")
    address = lab.require_state().node(node).address
    subprocess.run(
        [
            "scp",
            "-q",
            "-i",
            str(lab.key),
            "-o",
            f"UserKnownHostsFile={lab.known_hosts}",
            "-o",
            "StrictHostKeyChecking=accept-new",
            str(folder / "k3s"),
            str(folder / "sha256sum-amd64.txt"),
            f"root@{address}:/root/k3s-airgap/",
        ],
        check=True,
        timeout=60,
    )
    lab.ssh_run(
        node,
        "cd /root/k3s-airgap && grep ' k3s$' sha256sum-amd64.txt | sha256sum -c - "
        "&& install -m 0755 k3s /usr/local/bin/k3s",
    )


def install(lab: Lab, node: str, mode: str, config: str) -> subprocess.CompletedProcess[str]:
    """Write config and unit, start the service; returns the `systemctl start` result."""
    copy_artifacts(lab, node)
    unit = "k3s" if mode == "server" else "k3s-agent"
    lab.ssh_run(
        node,
        "mkdir -p /etc/rancher/k3s && umask 077 && "
        f"printf %s {shlex.quote(config)} > /etc/rancher/k3s/config.yaml",
    )
    lab.ssh_run(
        node,
        f"printf %s {shlex.quote(UNIT.format(mode=mode))} > "
        f"/etc/systemd/system/{unit}.service && systemctl daemon-reload",
    )
    return lab.ssh_run(node, f"timeout 60 systemctl start {unit}", check=False)


def uninstall(lab: Lab, node: str) -> None:
    lab.ssh_run(
        node,
        "systemctl stop k3s k3s-agent 2>/dev/null; systemctl reset-failed 2>/dev/null;"
        " rm -rf /etc/systemd/system/k3s*.service /usr/local/bin/k3s /etc/rancher "
        "/var/lib/rancher /root/k3s-airgap; systemctl daemon-reload",
        check=False,
    )
