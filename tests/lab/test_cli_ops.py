"""cluster-mgr's operations on a real lab, driven through the CLI as a user would."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubani_lab.lab import Lab
from tests.conftest import BIN, CliResult, run_cli
from tests.lab.ansible_run import kubectl, tmux_screen
from tests.lab.lifecycle import lab_in_use

# A module's first test boots its lab and provisions it; on a two-core machine that shares
# its cores with a second lab this takes four to five minutes, more than the suite-wide
# 300 s hang guard allows for setup and call together.
pytestmark = [pytest.mark.lab, pytest.mark.timeout(600)]

NODES = ("cp-1", "w-1", "w-2")
SCREENS = Path(__file__).resolve().parents[2] / ".kubani" / "screens"


# The first step of a run that reaches every node (site.yml reads each node's record first).
FIRST_CONTACT = "Reach the node and read its record of the last complete run"


@pytest.fixture(scope="module")
def ops(request: pytest.FixtureRequest) -> Iterator[Lab]:
    with lab_in_use(Lab("pytest-ops"), request) as lab:
        lab.up(nodes=3, control_planes=1, bare_nodes=1)
        yield lab


def cli(lab: Lab, *args: str | Path, timeout: float = 600) -> CliResult:
    return run_cli("-i", lab.inventory, *args, timeout=timeout)


def status(lab: Lab) -> dict[str, Any]:
    result = cli(lab, "status", "--json", "--tailscale-bin", lab.bin_dir / "tailscale")
    assert result.code == 0, result.stderr
    return dict(result.json())


def wait_for(check: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(1)
    raise AssertionError(f"not within {seconds:.0f}s: {what}")


def test_provision_succeeds_with_a_summary(ops: Lab) -> None:
    result = cli(ops, "provision")
    assert result.code == 0, result.stderr[-4000:]
    for node in NODES:
        assert any(
            line.split("│")[1:3] and line.split("│")[1].strip() == node and "ok" in line
            for line in result.stderr.splitlines()
        ), result.stderr[-3000:]
    assert "log: " in result.stderr
    # One phase alone, by its tag, with an extra variable: only node_config's tasks run.
    phase = cli(ops, "provision", "--tags", "node-config", "-e", "node_config_unused=1", "--json")
    assert phase.code == 0, phase.stderr[-3000:]
    events = [json.loads(line) for line in phase.stdout.splitlines()]
    roles = {
        e["role"]
        for e in events
        if e["kind"] == "task"
        and e.get("role")
        # Every role's argument check is tagged `always`, as Ansible does.
        and not str(e.get("task", "")).startswith("Validating arguments")
    }
    assert roles == {"node_config"}, roles


def test_provision_names_a_logged_out_node_and_the_fix(ops: Lab) -> None:
    """w-2 logged out of the real tailnet: unreachable, and Kubani says why from its own
    machine's view of the tailnet (the lab's management tailscaled)."""
    tailscale = {"KUBANI_TAILSCALE_BIN": str(ops.bin_dir / "tailscale")}
    try:
        ops.set_tailscale("w-2", backend_state="NeedsLogin")
        # Kubani explains from this machine's view of the tailnet: wait until the control
        # server has told it (a fast run reaches w-2 within a second of the logout).
        wait_for(
            lambda: not next(r for r in ops.status() if r["name"] == "w-2")["online"],
            60,
            "the management side to see w-2 offline",
        )
        result = run_cli("-i", ops.inventory, "provision", env=tailscale, timeout=600)
        assert result.code == 1
        failed_at = f"✗ w-2 failed at node_state : {FIRST_CONTACT}"
        assert failed_at in result.stderr, result.stderr[-3000:]
        assert "No route to host" in result.stderr
        assert (
            "fix: w-2 is offline on the tailnet: it is off, logged out, its key expired or "
            "tailscaled is stopped; run `sudo tailscale up` on w-2"
        ) in " ".join(result.stderr.split())
        streamed = run_cli("-i", ops.inventory, "provision", "--json", env=tailscale, timeout=600)
        assert streamed.code == 1
        events = [json.loads(line) for line in streamed.stdout.splitlines()]
        summary = events[-1]
        assert summary["kind"] == "summary" and summary["succeeded"] is False
        failure = next(f for f in summary["failures"] if f["host"] == "w-2")
        assert failure["task"] == FIRST_CONTACT
        assert "offline on the tailnet" in failure["hint"]
        assert any(e["kind"] == "task" for e in events)
    finally:
        ops.set_tailscale("w-2", backend_state="Running")
        # Back on the tailnet, w-2's agent reaches the API again: the tests after this one
        # start from a Ready cluster (a re-run that finds every record current does not
        # wait for it, as the full runs before the records did).
        wait_for(lambda: _ready(ops, "w-2"), 120, "w-2 Ready again")


def _ready(lab: Lab, node: str) -> bool:
    out = kubectl(
        lab, "get", "node", node, "-o", "jsonpath={.status.conditions[?(@.type=='Ready')].status}"
    )
    return out.stdout.strip() == "True"


def test_provision_seen_in_a_terminal(ops: Lab) -> None:
    """The live view and the summary as a person sees them (tmux, 120x40)."""
    if shutil.which("tmux") is None:
        pytest.fail("tmux is needed for the terminal test (scripts/setup.sh installs it)")
    session = "kubani-provision"
    SCREENS.mkdir(parents=True, exist_ok=True)
    done = ops.folder / "provision.done"
    done.unlink(missing_ok=True)
    command = f"{BIN / 'cluster-mgr'} -i {ops.inventory} provision; echo $? > {done}; sleep 600"
    subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True, check=False)
    subprocess.run(
        ["tmux", "new-session", "-d", "-s", session, "-x", "120", "-y", "40", command],
        check=True,
        env={"PATH": f"{BIN}:/usr/bin:/bin", "TERM": "xterm-256color", "HOME": "/root"},
    )
    frames: list[str] = []
    try:
        deadline = time.monotonic() + 300
        while not done.exists() and time.monotonic() < deadline:
            frame = tmux_screen(session)
            if "current task" in frame:
                frames.append(frame)
            time.sleep(0.5)
        final = tmux_screen(session)
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True, check=False)
    assert done.read_text().strip() == "0", final
    assert frames, "the live view was never on screen"
    live = frames[len(frames) // 2]
    assert "play " in live and all(node in live for node in NODES)
    assert all(node in final for node in NODES) and "result" in final and "log:" in final
    (SCREENS / "provision-live.txt").write_text(live)
    (SCREENS / "provision-final.txt").write_text(final)


def test_status_merges_inventory_tailnet_and_api(ops: Lab) -> None:
    state = ops.require_state()
    # The tests before took w-2 off the tailnet and back; under CI's load a node's heartbeat
    # can lapse for a moment after. What status shows is compared with the API once the API
    # itself has every node Ready.
    members = [n.name for n in state.nodes if n.in_inventory]
    wait_for(lambda: all(_ready(ops, name) for name in members), 120, "every node Ready")
    report = status(ops)
    nodes = {n["name"]: n for n in report["nodes"]}
    assert set(nodes) == set(NODES)
    for node in (n for n in state.nodes if n.in_inventory):  # bare-1 joins only later
        row = nodes[node.name]
        assert row["state"] == "Ready" and row["tailscale_ip"] == node.address
        assert row["internal_ip"] == node.address and row["tailnet"] == "online"
        assert row["path"] == "direct" and row["flags"] == [], (node.name, row)
    assert report["healthy"] is True

    ops.ssh_run("w-1", "systemctl stop k3s-agent")
    try:
        wait_for(
            lambda: {n["name"]: n["state"] for n in status(ops)["nodes"]}["w-1"] == "NotReady",
            60,
            "w-1 NotReady after its k3s stopped",
        )
    finally:
        ops.ssh_run("w-1", "systemctl start k3s-agent")
    wait_for(
        lambda: all(n["state"] == "Ready" for n in status(ops)["nodes"]), 60, "w-1 Ready again"
    )

    # w-2 stops tailscale (`tailscale down`): offline on the tailnet at once, whatever the
    # API last heard.
    ops.set_tailscale("w-2", backend_state="Stopped")
    try:
        wait_for(
            lambda: {n["name"]: n["tailnet"] for n in status(ops)["nodes"]}["w-2"] == "offline",
            30,
            "w-2 offline on the tailnet",
        )
        row = {n["name"]: n for n in status(ops)["nodes"]}["w-2"]
        assert row["state"] == "unreachable"
    finally:
        ops.set_tailscale("w-2", backend_state="Running")
    # Direct UDP to w-2 blocked: traffic really goes through the DERP relay, and status says so.
    ops.set_tailscale("w-2", relayed=True)
    try:

        def relayed() -> bool:
            subprocess.run(
                [str(ops.bin_dir / "tailscale"), "ping", "-c", "2", "w-2"],
                capture_output=True,
                timeout=30,
                check=False,
            )
            return {n["name"]: n["path"] for n in status(ops)["nodes"]}["w-2"] == "relay:lab"

        wait_for(relayed, 60, "w-2 relayed in status")
    finally:
        ops.set_tailscale("w-2", relayed=False)
    human = cli(ops, "status", "--tailscale-bin", ops.bin_dir / "tailscale")
    assert human.code == 0 and "cp-1" in human.stdout and "Ready" in human.stdout
    listed = cli(ops, "status", "--json", "-n", "kube-system", "--tailscale-bin",
                 ops.bin_dir / "tailscale")  # fmt: skip
    assert listed.code == 0, listed.stderr
    pods = listed.json()["pods"]
    assert pods and {p["namespace"] for p in pods} == {"kube-system"}
    assert all(p["node"] for p in pods if p["status"] == "Running")


def test_kubeconfig_merge_keeps_other_contexts(ops: Lab, tmp_path: Path) -> None:
    mine = tmp_path / "config"
    mine.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "work", "cluster": {"server": "https://10.9.9.9:6443"}}],
                "users": [{"name": "work", "user": {"token": "keep-me"}}],
                "contexts": [{"name": "work", "context": {"cluster": "work", "user": "work"}}],
                "current-context": "work",
            }
        )
    )
    mine.chmod(0o644)
    result = cli(
        ops, "kubeconfig", "--merge", "--into", mine, "--output", tmp_path / "lab.yaml", "--json"
    )
    assert result.code == 0, result.stderr
    merged = yaml.safe_load(mine.read_text())
    assert mine.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "lab.yaml").stat().st_mode & 0o777 == 0o600
    assert {c["name"] for c in merged["contexts"]} == {"work", "lab-pytest-ops"}
    assert merged["current-context"] == "work"
    assert merged["users"][0] == {"name": "work", "user": {"token": "keep-me"}}
    cp = ops.require_state().node("cp-1").address
    assert result.json()["server"] == f"https://{cp}:6443"
    nodes = subprocess.run(
        ["kubectl", "--kubeconfig", str(mine), "--context", "lab-pytest-ops", "get", "nodes"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert nodes.returncode == 0 and "w-2" in nodes.stdout, nodes.stderr


def test_backup_then_restore_through_the_cli(ops: Lab, tmp_path: Path) -> None:
    backups = tmp_path / "backups"
    taken = cli(ops, "backup", "--output", backups)
    assert taken.code == 0, taken.stderr[-3000:]
    [snapshot] = [p for p in backups.rglob("*") if p.is_file() and p.suffix != ".token"]
    assert snapshot.with_name(snapshot.name + ".token").stat().st_mode & 0o777 == 0o600
    assert str(snapshot) in taken.stderr
    label = kubectl(ops, "label", "node", "w-1", "kubani.io/after-backup=yes")
    assert label.returncode == 0, label.stderr
    restored = cli(ops, "restore", snapshot)
    assert restored.code == 0, restored.stderr[-3000:]
    wait_for(
        lambda: (
            "kubani.io/after-backup"
            not in kubectl(ops, "get", "node", "w-1", "--show-labels").stdout
            and kubectl(ops, "get", "node", "w-1").returncode == 0
        ),
        60,
        "the label set after the backup is gone",
    )


def test_tui_follows_the_lab_live(ops: Lab) -> None:
    """3 Ready nodes with tailnet IPs on screen; a stopped k3s turns its node NotReady on
    screen within the refresh interval of the API saying so, without a restart."""
    import asyncio

    from kubani.cluster.live import KubeSource
    from kubani.tailscale.discover import DiscoveryOptions
    from kubani.tui.app import ClusterApp

    refresh = 2.0
    addresses = {n.name: n.address for n in ops.require_state().nodes if n.in_inventory}
    source = KubeSource(
        ops.folder / "kubeconfig",
        None,
        "lab",
        DiscoveryOptions(tailscale_bin=str(ops.bin_dir / "tailscale")),
    )
    app = ClusterApp(source, refresh_s=refresh)

    def column(name: str, node: str) -> str | None:
        return app.table("nodes").cell_text(node, name)

    def api_not_ready() -> bool:
        out = kubectl(
            ops, "get", "node", "w-1", "-o",
            "jsonpath={.status.conditions[?(@.type=='Ready')].status}",
        )  # fmt: skip
        return out.stdout.strip() not in ("True", "")

    async def scenario() -> float:
        async with app.run_test(size=(120, 40)) as pilot:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                if all(column("STATUS", n) == "Ready" for n in NODES):
                    break
                await pilot.pause(0.2)
            for node in NODES:
                assert column("STATUS", node) == "Ready", node
                assert column("TAILSCALE IP", node) == addresses[node]
            # The path with its round trip: one real `tailscale ping` per node, in the
            # tailnet poll (every two refreshes).
            pinged = re.compile(r"direct (<1|\d+)ms")
            deadline = time.monotonic() + 30
            while not all(pinged.fullmatch(str(column("PATH", n))) for n in NODES):
                assert time.monotonic() < deadline, {n: column("PATH", n) for n in NODES}
                await pilot.pause(0.2)
            SCREENS.mkdir(parents=True, exist_ok=True)
            app.save_screenshot("tui-lab.svg", str(SCREENS))
            await asyncio.to_thread(ops.ssh_run, "w-1", "systemctl stop k3s-agent")
            try:
                deadline = time.monotonic() + 90
                while not await asyncio.to_thread(api_not_ready):
                    assert time.monotonic() < deadline, "the API never marked w-1 NotReady"
                    await pilot.pause(0.2)
                said = time.monotonic()
                while not str(column("STATUS", "w-1")).startswith("NotReady"):
                    assert time.monotonic() - said < refresh + 1, "not on screen in time"
                    await pilot.pause(0.05)
                return time.monotonic() - said
            finally:
                await asyncio.to_thread(ops.ssh_run, "w-1", "systemctl start k3s-agent")

    lag = asyncio.run(scenario())
    SCREENS.mkdir(parents=True, exist_ok=True)
    (SCREENS / "tui-notready-lag.txt").write_text(f"{lag:.3f}\n")
    wait_for(
        lambda: all(n["state"] == "Ready" for n in status(ops)["nodes"]), 60, "w-1 Ready again"
    )


def test_tui_screen_on_the_lab(ops: Lab) -> None:
    """The real cluster-tui in a terminal (tmux 120x40): the screen as text for the note."""
    session = "kubani-tui"
    command = (
        f"{BIN / 'cluster-tui'} -i {ops.inventory} --tailscale-bin {ops.bin_dir / 'tailscale'}"
        " --refresh 2"
    )
    subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True, check=False)
    subprocess.run(
        ["tmux", "new-session", "-d", "-s", session, "-x", "120", "-y", "40", command],
        check=True,
        env={"PATH": f"{BIN}:/usr/bin:/bin", "TERM": "xterm-256color", "HOME": "/root"},
    )
    screen = ""
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            screen = tmux_screen(session)
            if screen.count("Ready") >= 3 and "direct" in screen and "LIVE" in screen:
                break
            time.sleep(0.5)
    finally:
        subprocess.run(["tmux", "send-keys", "-t", session, "q"], check=False)
        time.sleep(0.5)
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True, check=False)
    assert all(node in screen for node in NODES) and "LIVE" in screen, screen
    SCREENS.mkdir(parents=True, exist_ok=True)
    (SCREENS / "tui-lab.txt").write_text(screen)


def test_remove_node_drains_deletes_uninstalls_and_edits_the_inventory(ops: Lab) -> None:
    created = kubectl(ops, "create", "deployment", "web", "--image=nginx:1.27", "--replicas=6")
    assert created.returncode == 0, created.stderr

    def pods_on(node: str) -> list[str]:
        out = kubectl(
            ops, "get", "pods", "-A", "--field-selector", f"spec.nodeName={node}", "-o", "json"
        )
        return [
            p["metadata"]["name"]
            for p in json.loads(out.stdout)["items"]
            if not any(r["kind"] == "DaemonSet" for r in p["metadata"].get("ownerReferences", []))
        ]

    wait_for(lambda: len(pods_on("w-1")) > 0, 60, "pods running on w-1")
    # A budget that allows no disruption holds the drain (the real eviction API answers 429)
    # until the timeout: nothing is removed and the node stays cordoned.
    budget = kubectl(ops, "create", "poddisruptionbudget", "web", "--selector=app=web",
                     "--min-available=6")  # fmt: skip
    assert budget.returncode == 0, budget.stderr
    wait_for(
        lambda: (
            '"currentHealthy":6'
            in kubectl(ops, "get", "pdb", "web", "-o", "json").stdout.replace(" ", "")
        ),
        60,
        "the budget to count the pods",
    )
    held = cli(ops, "remove-node", "w-1", "--yes", "--timeout", "8")
    assert held.code == 1, held.stderr[-2000:]
    assert "PodDisruptionBudgets still refuse to evict default/web-" in held.stderr
    node = json.loads(kubectl(ops, "get", "node", "w-1", "-o", "json").stdout)
    assert node["spec"].get("unschedulable") is True
    assert "w-1" in ops.inventory.read_text()
    assert kubectl(ops, "delete", "pdb", "web").returncode == 0
    # And its device leaves the tailnet: deleted through the lab's real headscale API.
    server = ops.control_server(ops.require_state())
    control = {
        "HEADSCALE_URL": server.url,
        "HEADSCALE_API_KEY": server.api_key(),
        "SSL_CERT_FILE": str(server.ca_cert),
    }
    result = run_cli(
        "-i", ops.inventory, "remove-node", "w-1", "--yes", "--json", "--timeout", "60",
        "--forget-device", env=control, timeout=600,
    )  # fmt: skip
    assert result.code == 0, result.stderr[-4000:]
    report = result.json()
    assert report["removed"] == "w-1" and report["uninstalled"] is True
    assert report["forgot_device"]
    listed = run_cli(
        "-i", ops.inventory, "discover", "--json", "--source", "headscale", env=control
    )
    assert listed.code == 0, listed.stderr
    assert "w-1" not in {p["hostname"] for p in listed.json()}
    assert server.api_key() not in result.stdout + result.stderr
    assert report["drained"]["evicted"] and report["drained"]["blocked"] == []
    assert "evicted default/web-" in result.stderr
    nodes = kubectl(ops, "get", "nodes", "-o", "name").stdout
    assert "node/w-1" not in nodes and "node/w-2" in nodes
    assert "w-1" not in ops.inventory.read_text()
    assert ops.ssh_run("w-1", "test -e /usr/local/bin/k3s", check=False).returncode != 0
    assert pods_on("w-1") == []


# A full headscale key (hskey-auth-<12-character prefix>-<secret>); its listings show
# "hskey-auth-<prefix>-***" only.
FULL_KEY = re.compile(r"hskey-auth-[A-Za-z0-9_-]{12}-[A-Za-z0-9_-]{8,}")
PROJECT_STATE = Path(__file__).resolve().parents[2] / ".kubani"


def test_a_machine_off_the_tailnet_is_brought_on_provisioned_and_forgotten(ops: Lab) -> None:
    """--bootstrap-ssh: bare-1 was booted on the LAN without Tailscale. Kubani installs it
    from the air-gap folder, logs it in with a key it mints from the lab's real headscale,
    writes the inventory with the address headscale gave, and joins it to the cluster in the
    same run; the key is in no output, log or file afterwards; --forget-device removes it
    from headscale again."""
    started = time.time()
    state = ops.require_state()
    bare = state.node("bare-1")
    assert ops.ssh_run("bare-1", "test -e /usr/sbin/tailscaled", check=False).returncode != 0
    server = ops.control_server(state)
    control = {
        "HEADSCALE_URL": server.url,
        "HEADSCALE_API_KEY": server.api_key(),
        "SSL_CERT_FILE": str(server.ca_cert),
    }
    result = run_cli(
        "-i", ops.inventory, "add-node", "bare-1", "--bootstrap-ssh", bare.underlay,
        "--provision", "--json", env=control, timeout=600,
    )  # fmt: skip
    assert result.code == 0, result.stderr[-4000:]
    report = result.json()
    address = report["tailnet"]["address"]
    assert report["tailnet"]["joined"] is True and report["provisioned"] is True
    assert address.startswith(state.tailnet.removesuffix("0/24"))
    hosts = yaml.safe_load(ops.inventory.read_text())["all"]["children"]["workers"]["hosts"]
    assert hosts["bare-1"]["tailscale_ip"] == address and "ansible_host" not in hosts["bare-1"]
    # Its host keys, read over the LAN connection, are trusted at the new address (the lab
    # knew them at the LAN address only), so the provisioning over the tailnet could connect.
    assert any(line.startswith(f"{address} ") for line in ops.known_hosts.read_text().splitlines())
    listed = run_cli(
        "-i", ops.inventory, "discover", "--json", "--source", "headscale", env=control
    )
    assert listed.code == 0, listed.stderr
    [peer] = [p for p in listed.json() if p["hostname"] == "bare-1"]
    assert peer["ipv4"] == address and "tag:k3s" in peer["tags"]
    wait_for(lambda: _ready(ops, "bare-1"), 120, "bare-1 Ready in the cluster")
    # Installed from the release in the air-gap folder, quiet (no log upload).
    defaults = ops.ssh_run("bare-1", "cat /etc/default/tailscaled").stdout
    assert "--no-logs-no-support" in defaults and "TS_NO_LOGS_NO_SUPPORT" in defaults
    assert ops.ssh_run("bare-1", "systemctl is-enabled tailscaled").stdout.strip() == "enabled"
    # The key: in no output, no run log or fact written since, nowhere on the node, and its
    # private folder on this machine is gone.
    written = [p for p in PROJECT_STATE.rglob("*") if p.is_file() and p.stat().st_mtime >= started]
    assert written, "the runs left no log to check"
    texts = [result.stdout, result.stderr]
    texts += [p.read_text(errors="replace") for p in written]
    texts.append(ops.ssh_run(
        "bare-1",
        "test ! -e /run/kubani-tailscale-auth-key && journalctl --no-pager -o cat; "
        "grep -rs hskey /var/lib/kubani /etc/default /var/lib/tailscale || true",
    ).stdout)  # fmt: skip
    assert not any(FULL_KEY.search(text) for text in texts)
    assert not list(Path(tempfile.gettempdir()).glob("kubani-join-*"))
    # And off again: out of the cluster, the inventory and headscale.
    removed = run_cli(
        "-i", ops.inventory, "remove-node", "bare-1", "--yes", "--json", "--timeout", "60",
        "--forget-device", env=control, timeout=600,
    )  # fmt: skip
    assert removed.code == 0, removed.stderr[-4000:]
    assert removed.json()["forgot_device"]
    after = run_cli("-i", ops.inventory, "discover", "--json", "--source", "headscale", env=control)
    assert "bare-1" not in {p["hostname"] for p in after.json()}
    assert "bare-1" not in ops.inventory.read_text()
