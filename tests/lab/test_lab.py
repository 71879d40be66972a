"""The lab itself: real hosts on a simulated tailnet, a K3s stand-in that behaves like K3s,
and a teardown that leaves nothing behind."""

from __future__ import annotations

import ipaddress
import json
import ssl
import subprocess
import time
from pathlib import Path

import pytest
from cryptography import x509

from kubani.lab.lab import Lab
from kubani.lab.network import netns_list
from tests.conftest import run_cli
from tests.lab import k3s_install

pytestmark = pytest.mark.lab


def test_nodes_are_real_hosts_on_the_tailnet(lab: Lab) -> None:
    state = lab.require_state()
    names = {n.name for n in state.nodes}
    assert names == {"cp-1", "w-1", "w-2"}
    for node in state.nodes:
        result = lab.ssh_run(
            node.name,
            "hostname; systemctl is-system-running; "
            "ip -4 -o addr show dev tailscale0; tailscale status --json",
        )
        hostname, system_state, address_line, *status_lines = result.stdout.splitlines()
        assert hostname == node.name
        assert system_state == "running"
        assert f"{node.address}/" in address_line
        status = json.loads("\n".join(status_lines))
        assert status["BackendState"] == "Running"
        assert status["Self"]["TailscaleIPs"][0] == node.address
        peers = {p["HostName"] for p in status["Peer"].values()}
        assert names - {node.name} <= peers


def test_nodes_reach_each_other_over_tailscale0(lab: Lab) -> None:
    result = lab.ssh_run("w-1", "tailscale ping -c 1 cp-1 && ping -c 1 -W 2 100.64.0.13")
    assert "pong from cp-1 (100.64.0.11)" in result.stdout


def test_inventory_is_written_and_valid(lab: Lab) -> None:
    result = run_cli("-i", lab.inventory, "validate", "--json")
    assert result.code == 0, result.stderr
    assert result.json()["nodes"] == 3
    peers = run_cli(
        "-i", lab.inventory, "discover", "--json", "--tailscale-bin", lab.bin_dir / "tailscale"
    ).json()
    assert sorted(p["hostname"] for p in peers if p["in_cluster"]) == ["cp-1", "w-1", "w-2"]
    assert next(p for p in peers if p["is_self"])["hostname"] == "mgmt"


def test_tailscale_failure_modes(lab: Lab) -> None:
    lab.set_tailscale("w-2", backend_state="NeedsLogin")
    try:
        status = json.loads(lab.ssh_run("w-2", "tailscale status --json").stdout)
        assert status["BackendState"] == "NeedsLogin"
        assert lab.ssh_run("w-2", "tailscale ip -4", check=False).returncode == 1
        seen = json.loads(lab.ssh_run("cp-1", "tailscale status --json").stdout)
        w2 = next(p for p in seen["Peer"].values() if p["HostName"] == "w-2")
        assert w2["Online"] is False
        failed = run_cli(
            "-i", lab.inventory, "discover", "--tailscale-bin", lab.bin_dir / "tailscale", "--json"
        )
        assert next(p for p in failed.json() if p["hostname"] == "w-2")["online"] is False
    finally:
        lab.set_tailscale("w-2", backend_state="Running")
    lab.set_tailscale("w-2", relay="fra")
    seen = json.loads(lab.ssh_run("cp-1", "tailscale status --json").stdout)
    w2 = next(p for p in seen["Peer"].values() if p["HostName"] == "w-2")
    assert w2["CurAddr"] == "" and w2["Relay"] == "fra"
    lab.set_tailscale("w-2", direct=True, online=False)
    try:
        unreachable = lab.ssh_run("cp-1", "ping -c 1 -W 1 100.64.0.13", check=False)
        assert unreachable.returncode != 0
    finally:
        lab.set_tailscale("w-2", online=True)
    lab.ssh_run("cp-1", "ping -c 1 -W 2 100.64.0.13")


SERVER_CONFIG = """node-ip: 100.64.0.11
advertise-address: 100.64.0.11
tls-san: [100.64.0.11, cp-1.tail0lab.ts.net]
flannel-iface: tailscale0
token: lab-test-token
cluster-init: true
write-kubeconfig-mode: "0600"
kubelet-arg: ["node-status-update-frequency=2s"]
kube-controller-manager-arg: ["node-monitor-grace-period=8s"]
"""

AGENT_CONFIG = """server: https://100.64.0.11:6443
token: {token}
node-ip: {ip}
flannel-iface: tailscale0
kubelet-arg: ["node-status-update-frequency=2s"]
"""


def _kubectl(kubeconfig: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["kubectl", "--kubeconfig", str(kubeconfig), *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def _ready(kubeconfig: Path, node: str) -> str:
    result = _kubectl(
        kubeconfig,
        "get",
        "node",
        node,
        "-o",
        "jsonpath={.status.conditions[?(@.type=='Ready')].status}",
    )
    return result.stdout.strip()


def test_k3s_stand_in_joins_only_with_the_right_token(lab: Lab, tmp_path: Path) -> None:
    try:
        started = k3s_install.install(lab, "cp-1", "server", SERVER_CONFIG)
        assert started.returncode == 0, started.stderr
        modes = lab.ssh_run(
            "cp-1",
            "stat -c '%a %n' /var/lib/rancher/k3s/server/token "
            "/etc/rancher/k3s/k3s.yaml /etc/rancher/k3s/config.yaml",
        ).stdout
        assert modes.split("\n")[0].startswith("600 ") and modes.count("600 ") == 3
        token = lab.ssh_run("cp-1", "cat /var/lib/rancher/k3s/server/token").stdout.strip()
        assert token.startswith("K10") and token.endswith("::server:lab-test-token")
        served = x509.load_pem_x509_certificate(
            ssl.get_server_certificate(("100.64.0.11", 6443)).encode()
        )
        sans = served.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert "cp-1.tail0lab.ts.net" in sans.get_values_for_type(x509.DNSName)
        assert ipaddress.ip_address("100.64.0.11") in sans.get_values_for_type(x509.IPAddress)
        kubeconfig = tmp_path / "kubeconfig"
        kubeconfig.write_text(
            lab.ssh_run("cp-1", "cat /etc/rancher/k3s/k3s.yaml").stdout.replace(
                "https://127.0.0.1:6443", "https://100.64.0.11:6443"
            )
        )
        kubeconfig.chmod(0o600)

        wrong = "K10" + token[3:67] + "::server:not-the-token"
        bad = k3s_install.install(
            lab, "w-2", "agent", AGENT_CONFIG.format(token=wrong, ip="100.64.0.13")
        )
        assert bad.returncode != 0
        shown = lab.ssh_run("w-2", "systemctl show -p Result --value k3s-agent").stdout.strip()
        assert shown == "exit-code"
        log = lab.ssh_run("w-2", "journalctl -u k3s-agent --no-pager").stdout
        assert "401 Unauthorized" in log

        good = k3s_install.install(
            lab, "w-1", "agent", AGENT_CONFIG.format(token=token, ip="100.64.0.12")
        )
        assert good.returncode == 0, good.stderr
        nodes = json.loads(_kubectl(kubeconfig, "get", "nodes", "-o", "json").stdout)["items"]
        by_name = {n["metadata"]["name"]: n for n in nodes}
        assert set(by_name) == {"cp-1", "w-1"}
        addresses = {a["type"]: a["address"] for a in by_name["w-1"]["status"]["addresses"]}
        assert addresses["InternalIP"] == "100.64.0.12"
        assert _ready(kubeconfig, "w-1") == "True"

        lab.ssh_run("w-1", "systemctl stop k3s-agent")
        deadline = time.monotonic() + 30
        while _ready(kubeconfig, "w-1") == "True" and time.monotonic() < deadline:
            time.sleep(1)
        assert _ready(kubeconfig, "w-1") == "Unknown"
        table = _kubectl(kubeconfig, "get", "nodes").stdout
        assert "NotReady" in table
    finally:
        for node in ("cp-1", "w-1", "w-2"):
            k3s_install.uninstall(lab, node)


def _lab_leftovers(lab: Lab) -> list[str]:
    found = [ns for ns in netns_list() if ns.startswith(f"kubani-{lab.lab_id}-")]
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True, check=True)
    found += [
        line.split(":")[1].strip()
        for line in links.stdout.splitlines()
        if f"kv-{lab.lab_id}-" in line or f"kbr-{lab.lab_id}" in line
    ]
    found += [f"pid {pid}" for pid in lab._leftover_pids()]
    if lab.folder.exists():
        found.append(str(lab.folder))
    return found


def test_down_leaves_nothing_even_after_a_crash() -> None:
    scratch = Lab("pytest-down")
    scratch.down()
    try:
        scratch.up(nodes=2, control_planes=1)
        assert len(list(scratch._leftover_pids())) == 2
        # A crashed `cluster-mgr` loses its state file: down must still find everything.
        scratch.state_file.unlink()
    finally:
        scratch.down()
    assert _lab_leftovers(scratch) == []
    scratch.down()  # a second time is harmless
    assert _lab_leftovers(scratch) == []


def test_lab_cli_status_and_ssh(lab: Lab) -> None:
    result = run_cli("lab", "status", "--name", "pytest", "--json")
    assert result.code == 0, result.stderr
    nodes = result.json()["nodes"]
    assert all(n["running"] and n["ssh"] for n in nodes)
    assert all(n["memory_bytes"] and n["memory_bytes"] > 0 for n in nodes)
    ssh = run_cli("lab", "ssh", "--name", "pytest", "w-1", "hostname")
    assert ssh.code == 0 and ssh.stdout.strip() == "w-1"
