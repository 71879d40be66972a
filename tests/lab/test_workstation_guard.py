"""The workstation guard on a real lab node: a person's login (a real logind session over SSH)
keeps new pods off the node until idle_after after it ended; a GPU process that is not the
cluster's holds the node and, as its policy says, evicts the pods until it has ended; the
owner's word through `cluster-mgr node hold|auto` wins; a clean stop releases the node; and
the guard's own credential can change nothing but its Node's guard taints and annotations."""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubani.vocabulary import GUARD_GPU_TAINT, GUARD_HELD_REASON, GUARD_TAINT
from kubani_lab.lab import Lab
from tests.conftest import run_cli
from tests.lab.ansible_run import kubectl, run_playbook
from tests.lab.lifecycle import lab_in_use

pytestmark = [pytest.mark.lab, pytest.mark.timeout(600)]

SETTINGS = (
    "workstation_guard:\n  idle_after: 3\n  poll: 1\n  evict_gpu: true\n"
    # A hold no live guard refreshes is lifted after 8 s, looked for every 2 s.
    "workstation_guard_stale_after: 8\nworkstation_guard_sweep_every: 2\n"
)


@pytest.fixture(scope="module")
def guarded(request: pytest.FixtureRequest) -> Iterator[Lab]:
    with lab_in_use(Lab("pytest-guard"), request) as lab:
        lab.up(nodes=2, control_planes=1, gpu_nodes=1, desktops=("gpu-1",))
        host_vars = lab.inventory.parent / "host_vars"
        host_vars.mkdir(exist_ok=True)
        (host_vars / "gpu-1.yml").write_text("---\n" + SETTINGS)
        run = run_playbook(lab, "site.yml")
        assert run.code == 0, run.output[-6000:]
        yield lab


def _node(lab: Lab, name: str = "gpu-1") -> dict[str, Any]:
    out = kubectl(lab, "get", "node", name, "-o", "json")
    assert out.returncode == 0, out.stderr
    return dict(json.loads(out.stdout))


def _guard_taints(lab: Lab) -> set[str]:
    return {
        f"{t['key']}:{t['effect']}"
        for t in _node(lab)["spec"].get("taints") or []
        if t["key"] in (GUARD_TAINT, GUARD_GPU_TAINT)
    }


def wait_for(check: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.5)
    raise AssertionError(f"not within {seconds:.0f}s: {what}")


HELD = {f"{GUARD_TAINT}:NoSchedule", f"{GUARD_GPU_TAINT}:NoExecute"}


def test_a_foreign_gpu_process_holds_the_node_until_it_has_ended(guarded: Lab) -> None:
    assert guarded.ssh_run("gpu-1", "systemctl is-active kubani-guard").stdout.strip() == "active"
    assert _guard_taints(guarded) == set()
    # A game, in the simulation: a process the nvidia-smi stand-in lists as a compute app.
    guarded.ssh_run(
        "gpu-1",
        "KUBANI_LAB_GPU_APP=1 setsid nohup sleep 600 >/dev/null 2>&1 </dev/null & "
        "echo $! > /run/game.pid",
    )
    wait_for(lambda: _guard_taints(guarded) == HELD, 30, "the guard's taints on gpu-1")
    reason = _node(guarded)["metadata"]["annotations"][GUARD_HELD_REASON]
    assert reason.startswith("GPU: sleep (pid ")
    status = run_cli("-i", guarded.inventory, "status", "--json",
                     "--tailscale-bin", guarded.bin_dir / "tailscale")  # fmt: skip
    row = next(n for n in status.json()["nodes"] if n["name"] == "gpu-1")
    assert row["held"]["reason"] == reason
    guarded.ssh_run("gpu-1", "kill $(cat /run/game.pid)")
    wait_for(lambda: _guard_taints(guarded) == set(), 30, "the taints gone after idle_after")
    assert "kubani.io/held-since" not in _node(guarded)["metadata"].get("annotations", {})


def test_the_owner_s_word_wins_and_a_stop_releases(guarded: Lab) -> None:
    held = run_cli("-i", guarded.inventory, "node", "hold", "gpu-1")
    assert held.code == 0, held.stderr
    wait_for(lambda: f"{GUARD_TAINT}:NoSchedule" in _guard_taints(guarded), 30, "held by hand")

    # Each change is an Event on the node.
    def recorded() -> bool:
        listed = kubectl(guarded, "get", "events", "-A", "--field-selector",
                         "involvedObject.name=gpu-1,reason=HeldByOwner", "-o", "json")  # fmt: skip
        return "held by hand" in listed.stdout

    try:
        wait_for(recorded, 30, "the HeldByOwner event")
    except AssertionError:
        journal = guarded.ssh_run("gpu-1", "journalctl -u kubani-guard -n 20 --no-pager").stdout
        raise AssertionError(f"no HeldByOwner event; the guard said:\n{journal}") from None
    guarded.ssh_run("gpu-1", "systemctl stop kubani-guard")
    assert _guard_taints(guarded) == set()  # a clean stop took its taint off
    guarded.ssh_run("gpu-1", "systemctl start kubani-guard")
    wait_for(lambda: bool(_guard_taints(guarded)), 30, "held again after the restart")
    assert run_cli("-i", guarded.inventory, "node", "auto", "gpu-1").code == 0
    wait_for(lambda: _guard_taints(guarded) == set(), 30, "released when the word is gone")


def test_a_hold_no_guard_keeps_any_more_is_lifted(guarded: Lab) -> None:
    assert run_cli("-i", guarded.inventory, "node", "hold", "gpu-1").code == 0
    try:
        wait_for(lambda: f"{GUARD_TAINT}:NoSchedule" in _guard_taints(guarded), 30, "held")
        # The guard dies without releasing (and is not restarted): its taint stays, until the
        # control plane's sweeper finds no heartbeat for stale_after.
        guarded.ssh_run("gpu-1", "systemctl kill --signal=KILL kubani-guard; sleep 1; "
                                 "systemctl stop kubani-guard")  # fmt: skip
        assert f"{GUARD_TAINT}:NoSchedule" in _guard_taints(guarded)
        wait_for(lambda: _guard_taints(guarded) == set(), 30, "the stale hold lifted")
    finally:
        guarded.ssh_run("gpu-1", "systemctl start kubani-guard")
        assert run_cli("-i", guarded.inventory, "node", "auto", "gpu-1").code == 0
    wait_for(lambda: _guard_taints(guarded) == set(), 30, "released after the word is gone")


def test_the_guard_s_credential_changes_nothing_else(guarded: Lab, tmp_path: Path) -> None:
    token = guarded.ssh_run("gpu-1", "cat /etc/kubani/guard/guard.token").stdout.strip()
    admin = yaml.safe_load((guarded.folder / "kubeconfig").read_text())
    cluster = admin["clusters"][0]["cluster"]
    config = tmp_path / "guard.kubeconfig"
    config.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "guard",
        "clusters": [{"name": "lab", "cluster": cluster}],
        "users": [{"name": "guard", "user": {"token": token}}],
        "contexts": [{"name": "guard", "context": {"cluster": "lab", "user": "guard"}}],
    }))  # fmt: skip

    def as_guard(*args: str) -> Any:
        return subprocess.run(["kubectl", "--kubeconfig", str(config), *args],
                              capture_output=True, text=True, timeout=30, check=False)  # fmt: skip

    taint = '{"spec":{"unschedulable":true}}'
    refused = {
        "another node": as_guard(
            "patch", "node", "cp-1", "-p", '{"metadata":{"labels":{"x":"y"}}}'
        ),
        "a label of its own": as_guard("label", "node", "gpu-1", "x=y"),
        "cordoning itself": as_guard("patch", "node", "gpu-1", "-p", taint),
        "another taint": as_guard("taint", "node", "gpu-1", "other=x:NoSchedule"),
        "deleting itself": as_guard("delete", "node", "gpu-1", "--wait=false"),
        "reading secrets": as_guard("get", "secrets", "-A"),
        "listing nodes": as_guard("get", "nodes"),
        "creating a namespace": as_guard("create", "namespace", "guarded"),
        "lifting its own limits": as_guard(
            "delete", "validatingadmissionpolicy", "kubani-workstation-guard"
        ),
    }
    for what, result in refused.items():
        assert result.returncode != 0, f"the guard's token could do this: {what}"
        assert "forbidden" in result.stderr.lower() or "denied" in result.stderr.lower(), (
            what, result.stderr)  # fmt: skip
    own = as_guard("annotate", "node", "gpu-1", "kubani.io/held-reason=test", "--overwrite")
    assert own.returncode == 0, own.stderr


def _apply(lab: Lab, manifest: dict[str, Any]) -> None:
    done = subprocess.run(
        ["kubectl", "--kubeconfig", str(lab.folder / "kubeconfig"), "apply", "-f", "-"],
        input=json.dumps(manifest), capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


def _deployment(name: str, limits: dict[str, str] | None = None) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "work", "image": "busybox:1.36"}
    if limits:
        container["resources"] = {"limits": limits}
    template = {
        "metadata": {"labels": {"app": name}},
        "spec": {"nodeSelector": {"kubernetes.io/hostname": "gpu-1"}, "containers": [container]},
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}}, "template": template},
    }


def _pods(lab: Lab, app: str) -> list[dict[str, Any]]:
    out = kubectl(lab, "get", "pods", "-l", f"app={app}", "-o", "json")
    assert out.returncode == 0, out.stderr
    items = json.loads(out.stdout)["items"]
    return [p for p in items if not p["metadata"].get("deletionTimestamp")]


def _running_on_gpu_1(lab: Lab, app: str) -> bool:
    return any(
        p["spec"].get("nodeName") == "gpu-1" and p["status"].get("phase") == "Running"
        for p in _pods(lab, app)
    )


def _unschedulable(lab: Lab, app: str) -> bool:
    return any(
        c.get("reason") == "Unschedulable"
        for p in _pods(lab, app)
        for c in p["status"].get("conditions") or []
    )


def test_an_owner_s_login_keeps_new_pods_off_until_idle_after(guarded: Lab) -> None:
    guarded.ssh_run(
        "gpu-1",
        "id alice >/dev/null 2>&1 || useradd --create-home --shell /bin/bash alice; "
        "install -d -m 700 -o alice -g alice ~alice/.ssh; "
        "install -m 600 -o alice -g alice /root/.ssh/authorized_keys ~alice/.ssh/",
    )
    ssh = guarded.ssh_command("gpu-1")
    login = [*ssh[:-1], "-tt", ssh[-1].replace("root@", "alice@"), "sleep 300"]
    session = subprocess.Popen(login, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        wait_for(lambda: _guard_taints(guarded) == {f"{GUARD_TAINT}:NoSchedule"}, 30,
                 "alice's login holding gpu-1")  # fmt: skip
        reason = _node(guarded)["metadata"]["annotations"][GUARD_HELD_REASON]
        # logind knows the login's terminal, or at least where it comes from.
        assert re.match(r"alice on (pts/\d+|SSH from \S+)", reason), reason
        _apply(guarded, _deployment("desk-work"))
        wait_for(lambda: _unschedulable(guarded, "desk-work"), 60, "the new pod kept off gpu-1")
        assert not _running_on_gpu_1(guarded, "desk-work")
    finally:
        session.terminate()
        session.wait(10)
    wait_for(lambda: _guard_taints(guarded) == set(), 30, "released after alice left")
    wait_for(lambda: _running_on_gpu_1(guarded, "desk-work"), 90, "the pod on gpu-1 after all")
    assert kubectl(guarded, "delete", "deployment", "desk-work").returncode == 0


def test_gpu_pods_leave_while_the_owner_games_and_come_back(guarded: Lab) -> None:
    def gpus() -> int:
        capacity = _node(guarded)["status"].get("capacity") or {}
        return int(capacity.get("nvidia.com/gpu", "0"))

    wait_for(lambda: gpus() >= 1, 90, "gpu-1's GPU in the cluster")
    _apply(guarded, _deployment("gpu-work", {"nvidia.com/gpu": "1"}))
    wait_for(lambda: _running_on_gpu_1(guarded, "gpu-work"), 90, "the GPU pod running on gpu-1")
    guarded.ssh_run(
        "gpu-1",
        "KUBANI_LAB_GPU_APP=1 setsid nohup sleep 600 >/dev/null 2>&1 </dev/null & "
        "echo $! > /run/game.pid",
    )
    try:
        wait_for(lambda: _guard_taints(guarded) == HELD, 30, "the guard's taints on gpu-1")
        wait_for(lambda: not _running_on_gpu_1(guarded, "gpu-work"), 90, "the GPU pod evicted")
    finally:
        guarded.ssh_run("gpu-1", "kill $(cat /run/game.pid)")
    wait_for(lambda: _guard_taints(guarded) == set(), 30, "released after the game")
    wait_for(lambda: _running_on_gpu_1(guarded, "gpu-work"), 120, "the GPU pod back on gpu-1")
    assert kubectl(guarded, "delete", "deployment", "gpu-work").returncode == 0


def test_a_full_run_again_changes_nothing_on_the_guarded_node(guarded: Lab) -> None:
    run = run_playbook(guarded, "site.yml", "-e", "kubani_full_run=true")
    assert run.code == 0, run.failures()
    assert run.recap()["gpu-1"]["changed"] == 0, run.output[-4000:]
    assert guarded.ssh_run("gpu-1", "systemctl is-active kubani-guard").stdout.strip() == "active"
