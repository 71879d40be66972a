"""The lab itself: real hosts on a simulated tailnet, a K3s stand-in that behaves like K3s,
and a teardown that leaves nothing behind."""

from __future__ import annotations

import ipaddress
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from kubani_lab import cgroups
from kubani_lab.lab import Lab
from kubani_lab.network import netns_list
from tests.conftest import run_cli
from tests.lab import k3s_install

pytestmark = pytest.mark.lab

ROOT = Path(__file__).resolve().parents[2]


def _pinned_tailscale() -> str:
    go_mod = (ROOT / "lab/components/tailscale/go.mod").read_text()
    match = re.search(r"^\s*tailscale\.com v(\S+)", go_mod, re.M)
    assert match, "tailscale.com is not pinned in lab/components/tailscale/go.mod"
    return match.group(1)


def _peer(status: dict[str, Any], hostname: str) -> dict[str, Any]:
    return next(p for p in (status.get("Peer") or {}).values() if p["HostName"] == hostname)


def _eventually(check: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {seconds:.0f} s: {what}")
        time.sleep(0.5)


def test_nodes_run_the_real_tailscale_on_a_tun_device(lab: Lab) -> None:
    state = lab.require_state()
    names = {n.name for n in state.nodes}
    assert names == {"cp-1", "w-1", "w-2"}
    tailnet = ipaddress.ip_network(state.tailnet)
    suffix = f"{lab.name}.lab.kubani.test."
    for node in state.nodes:
        result = lab.ssh_run(
            node.name,
            "hostname; systemctl is-system-running; tailscale version | head -1; "
            "ip -d link show tailscale0; tailscale status --json",
        )
        hostname, system_state, version, *rest = result.stdout.splitlines()
        link = "\n".join(line for line in rest if not line.startswith((" ", "{", "}", '"')))
        assert hostname == node.name
        assert system_state == "running"
        assert version == _pinned_tailscale()
        assert "tun type tun" in result.stdout and "mtu 1280" in link
        status = json.loads(result.stdout[result.stdout.index("\n{") :])
        assert status["BackendState"] == "Running"
        assert status["Self"]["TailscaleIPs"][0] == node.address
        assert ipaddress.ip_address(node.address) in tailnet  # handed out by headscale
        assert status["Self"]["DNSName"] == f"{node.name}.{suffix}"  # MagicDNS name
        peers = {p["HostName"] for p in status["Peer"].values()}
        assert names - {node.name} <= peers


def test_paths_are_direct_then_really_relayed_through_derp(lab: Lab) -> None:
    state = lab.require_state()
    cp1, w1 = state.node("cp-1"), state.node("w-1")
    direct = lab.ssh_run("w-1", "tailscale ping -c 5 cp-1")
    assert f"pong from cp-1 ({cp1.address}) via {cp1.underlay}:41641" in direct.stdout
    lab.set_tailscale("w-1", relayed=True)
    try:
        # Direct UDP between w-1 and everyone else is now blocked on the bridge: WireGuard
        # falls back to the control server's DERP relay, for the nodes and for Kubani.
        relayed = lab.ssh_run("cp-1", "tailscale ping -c 10 w-1", check=False)
        assert f"pong from w-1 ({w1.address}) via DERP(lab)" in relayed.stdout, relayed.stdout
        mgmt = subprocess.run(
            [str(lab.bin_dir / "tailscale"), "ping", "-c", "3", "w-1"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert "via DERP(lab)" in mgmt.stdout, mgmt.stdout + mgmt.stderr
        seen = _peer(lab.management_status(), "w-1")
        assert seen["CurAddr"] == "" and seen["Relay"] == "lab" and seen["Active"]
        peers = run_cli(
            "-i", lab.inventory, "discover", "--json", "--tailscale-bin", lab.bin_dir / "tailscale"
        ).json()
        assert next(p for p in peers if p["hostname"] == "w-1")["relay"] == "lab"
    finally:
        lab.set_tailscale("w-1", relayed=False)
    back = lab.ssh_run("w-1", "tailscale ping -c 10 cp-1")
    assert f"via {cp1.underlay}:41641" in back.stdout


def test_discovery_reads_the_real_cli_and_the_real_headscale_api(lab: Lab) -> None:
    state = lab.require_state()
    result = run_cli("-i", lab.inventory, "validate", "--json")
    assert result.code == 0, result.stderr
    assert result.json()["nodes"] == 3
    assigned = {n.name: n.address for n in state.nodes}
    cli_peers = run_cli(
        "-i", lab.inventory, "discover", "--json", "--tailscale-bin", lab.bin_dir / "tailscale"
    ).json()
    assert {p["hostname"]: p["ipv4"] for p in cli_peers if p["in_cluster"]} == assigned
    assert next(p for p in cli_peers if p["is_self"])["hostname"] == "mgmt"
    server = lab.control_server(state)
    api = run_cli(
        "-i",
        lab.inventory,
        "discover",
        "--json",
        "--source",
        "headscale",
        env={
            "HEADSCALE_URL": server.url,
            "HEADSCALE_API_KEY": server.api_key(),
            "SSL_CERT_FILE": str(server.ca_cert),
        },
    )
    assert api.code == 0, api.stderr
    from_api = {p["hostname"]: p for p in api.json()}
    assert {h: p["ipv4"] for h, p in from_api.items() if p["in_cluster"]} == assigned
    assert not from_api["mgmt"]["in_cluster"]
    assert from_api["cp-1"]["tags"] == ["tag:k3s"]
    assert oct(server.api_key_file.stat().st_mode & 0o777) == "0o600"


def _shared_rule_present() -> bool:
    shown = subprocess.run(
        ["ip", "rule", "show", "pref", "5270"], capture_output=True, text=True, check=False
    )
    return "lookup 52" in shown.stdout


def test_a_tailscaled_stopping_beside_the_lab_does_not_cut_it_off(lab: Lab) -> None:
    """A stopping tailscaled deletes the ip rules every tailscaled in the namespace shares
    (other labs' management daemons, on a CI machine); the lab's own rule for its slice keeps
    its nodes reachable until the survivors put theirs back."""
    address = lab.require_state().node("cp-1").address
    shared = ["pref", "5270", "lookup", "52"]
    assert subprocess.run(["ip", "rule", "del", *shared], check=False).returncode == 0
    try:
        with socket.create_connection((address, 22), 5) as connection:
            assert connection.recv(4).startswith(b"SSH-")
    finally:
        deadline = time.monotonic() + 15
        while not _shared_rule_present() and time.monotonic() < deadline:
            time.sleep(0.5)
        if not _shared_rule_present():
            subprocess.run(["ip", "rule", "add", *shared], check=False)
            raise AssertionError("tailscaled did not put its rule back within 15 s")


def test_tailscale_failure_modes_are_real(lab: Lab) -> None:
    w2 = lab.require_state().node("w-2")
    lab.set_tailscale("w-2", backend_state="NeedsLogin")
    try:
        status = json.loads(lab.ssh_run("w-2", "tailscale status --json").stdout)
        assert status["BackendState"] == "NeedsLogin"
        assert lab.ssh_run("w-2", "tailscale ip -4", check=False).returncode == 1
        _eventually(
            lambda: not _peer(lab.management_status(), "w-2")["Online"], 30, "w-2 seen offline"
        )
        listed = run_cli(
            "-i", lab.inventory, "discover", "--tailscale-bin", lab.bin_dir / "tailscale", "--json"
        )
        assert next(p for p in listed.json() if p["hostname"] == "w-2")["online"] is False
        # Its tailnet address leads nowhere: not out of this machine either.
        with pytest.raises(OSError, match="No route to host"):
            socket.create_connection((w2.address, 22), 2)
    finally:
        lab.set_tailscale("w-2", backend_state="Running")
    assert lab.require_state().node("w-2").address == w2.address  # same node, same address
    _eventually(lambda: _peer(lab.management_status(), "w-2")["Online"], 30, "w-2 back online")

    lab.set_tailscale("w-2", expire=True)
    try:
        _eventually(
            lambda: (
                json.loads(lab.ssh_run("w-2", "tailscale status --json").stdout)["BackendState"]
                == "NeedsLogin"
            ),
            30,
            "w-2 logged out by its expired key",
        )
    finally:
        lab.set_tailscale("w-2", backend_state="Running")

    lab.set_tailscale("w-2", online=False)
    try:
        unreachable = lab.ssh_run("cp-1", f"ping -c 1 -W 1 {w2.address}", check=False)
        assert unreachable.returncode != 0
    finally:
        lab.set_tailscale("w-2", online=True)
    _eventually(
        lambda: lab.ssh_run("cp-1", f"ping -c 1 -W 1 {w2.address}", check=False).returncode == 0,
        30,
        "w-2 reachable again over the tailnet",
    )


def test_no_lab_namespace_has_a_route_out(lab: Lab) -> None:
    state = lab.require_state()
    allowed = [ipaddress.ip_network(state.underlay), ipaddress.ip_network(state.tailnet)]
    allowed.append(ipaddress.ip_network("100.100.100.100/32"))  # MagicDNS, on tailscale0
    namespaces = [ns for ns in netns_list() if ns.startswith(f"kubani-{lab.lab_id}-")]
    assert len(namespaces) == 4  # three nodes and the control server
    for namespace in namespaces:
        for table in ("main", "52"):
            routes = subprocess.run(
                ["ip", "-n", namespace, "route", "show", "table", table],
                capture_output=True,
                text=True,
                check=False,
            )
            for route in routes.stdout.splitlines():
                destination = route.split()[0]
                assert destination != "default", (namespace, route)
                network = ipaddress.ip_network(destination, strict=False)
                assert any(network.subnet_of(a) for a in allowed), (namespace, route)


SERVER_CONFIG = """node-ip: {ip}
advertise-address: {ip}
tls-san: [{ip}, {dns_name}]
flannel-iface: tailscale0
token: lab-test-token
cluster-init: true
write-kubeconfig-mode: "0600"
kubelet-arg: ["node-status-update-frequency=2s"]
kube-controller-manager-arg: ["node-monitor-grace-period=8s"]
"""

AGENT_CONFIG = """server: https://{server}:6443
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
    state = lab.require_state()
    server, w1, w2 = (state.node(n).address for n in ("cp-1", "w-1", "w-2"))
    dns_name = f"cp-1.{lab.name}.lab.kubani.test"
    try:
        started = k3s_install.install(
            lab, "cp-1", "server", SERVER_CONFIG.format(ip=server, dns_name=dns_name)
        )
        assert started.returncode == 0, started.stderr
        modes = lab.ssh_run(
            "cp-1",
            "stat -c '%a %n' /var/lib/rancher/k3s/server/token "
            "/etc/rancher/k3s/k3s.yaml /etc/rancher/k3s/config.yaml",
        ).stdout
        assert modes.split("\n")[0].startswith("600 ") and modes.count("600 ") == 3
        token = lab.ssh_run("cp-1", "cat /var/lib/rancher/k3s/server/token").stdout.strip()
        assert token.startswith("K10") and token.endswith("::server:lab-test-token")
        served = x509.load_pem_x509_certificate(ssl.get_server_certificate((server, 6443)).encode())
        sans = served.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert dns_name in sans.get_values_for_type(x509.DNSName)
        assert ipaddress.ip_address(server) in sans.get_values_for_type(x509.IPAddress)
        kubeconfig = tmp_path / "kubeconfig"
        kubeconfig.write_text(
            lab.ssh_run("cp-1", "cat /etc/rancher/k3s/k3s.yaml").stdout.replace(
                "https://127.0.0.1:6443", f"https://{server}:6443"
            )
        )
        kubeconfig.chmod(0o600)

        wrong = "K10" + token[3:67] + "::server:not-the-token"
        bad = k3s_install.install(
            lab, "w-2", "agent", AGENT_CONFIG.format(server=server, token=wrong, ip=w2)
        )
        assert bad.returncode != 0
        shown = lab.ssh_run("w-2", "systemctl show -p Result --value k3s-agent").stdout.strip()
        assert shown == "exit-code"
        log = lab.ssh_run("w-2", "journalctl -u k3s-agent --no-pager").stdout
        assert "401 Unauthorized" in log

        good = k3s_install.install(
            lab, "w-1", "agent", AGENT_CONFIG.format(server=server, token=token, ip=w1)
        )
        assert good.returncode == 0, good.stderr
        nodes = json.loads(_kubectl(kubeconfig, "get", "nodes", "-o", "json").stdout)["items"]
        by_name = {n["metadata"]["name"]: n for n in nodes}
        assert set(by_name) == {"cp-1", "w-1"}
        addresses = {a["type"]: a["address"] for a in by_name["w-1"]["status"]["addresses"]}
        assert addresses["InternalIP"] == w1
        # The unit is up once the kubelet runs; the node turns Ready at its first heartbeat.
        deadline = time.monotonic() + 30
        while _ready(kubeconfig, "w-1") != "True" and time.monotonic() < deadline:
            time.sleep(1)
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


def _lab_leftovers(lab: Lab, tailnet: str) -> list[str]:
    found = [ns for ns in netns_list() if ns.startswith(f"kubani-{lab.lab_id}-")]
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True, check=True)
    found += [
        line.split(":")[1].strip()
        for line in links.stdout.splitlines()
        if any(f"{kind}-{lab.lab_id}" in line for kind in ("kv", "kbr", "kts"))
    ]
    found += [f"pid {pid}" for pid in lab._leftover_pids()]
    found += [f"{program} {pid}" for pid, program in lab._leftover_daemons()]
    # A node's cgroup, and with it any process of its container (rmdir fails while one is left).
    found += [f"cgroup {folder}" for folder in cgroups.leftovers(lab.names.machine(""))]
    tables = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True, check=True)
    found += [line for line in tables.stdout.splitlines() if lab.names.nft_table in line]
    routes = subprocess.run(
        ["ip", "route", "show", tailnet], capture_output=True, text=True, check=True
    )
    found += routes.stdout.splitlines()
    rules = subprocess.run(
        ["ip", "rule", "show", "to", tailnet], capture_output=True, text=True, check=True
    )
    found += rules.stdout.splitlines()
    mounts = Path("/proc/self/mounts").read_text().splitlines()
    found += [line for line in mounts if f" {lab.folder}/" in line]
    if lab.folder.exists():
        found.append(str(lab.folder))
    return found


def test_down_leaves_nothing_even_after_a_crash() -> None:
    scratch = Lab("pytest-down")
    scratch.down()
    tailnet = ""
    try:
        tailnet = scratch.up(nodes=2, control_planes=1).tailnet
        assert len(list(scratch._leftover_pids())) == 2
        assert sorted(p for _, p in scratch._leftover_daemons()) == ["headscale", "tailscaled"]
        # What the check below must not find: namespaces, links, processes, nft tables, the
        # tailnet's route and rule, the nodes' root filesystem mounts, the folder.
        assert len(_lab_leftovers(scratch, tailnet)) > 12
        # A crashed `cluster-mgr` loses its state file: down must still find everything.
        scratch.state_file.unlink()
        # A node's nspawn killed outright leaves its container's systemd running, orphaned.
        orphaned = next(scratch._leftover_pids())
        os.kill(orphaned, signal.SIGKILL)
    finally:
        scratch.down()
    assert _lab_leftovers(scratch, tailnet) == []
    scratch.down()  # a second time is harmless
    assert _lab_leftovers(scratch, tailnet) == []


def test_lab_cli_status_and_ssh(lab: Lab) -> None:
    result = run_cli("lab", "status", "--name", "pytest", "--json")
    assert result.code == 0, result.stderr
    nodes = result.json()["nodes"]
    assert all(n["running"] and n["ssh"] for n in nodes)
    assert all(n["memory_bytes"] and n["memory_bytes"] > 0 for n in nodes)
    ssh = run_cli("lab", "ssh", "--name", "pytest", "w-1", "hostname")
    assert ssh.code == 0 and ssh.stdout.strip() == "w-1"
