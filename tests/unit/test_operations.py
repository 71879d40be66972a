"""The data behind provision, status, kubeconfig, remove-node, doctor and init."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from kubani.ansible.doctor import node_checks, unreachable
from kubani.ansible.events import parse_event
from kubani.ansible.hints import hint_for
from kubani.ansible.progress import RunState
from kubani.ansible.project import count_plays
from kubani.cluster.status import InventoryNode, flux_object, gpu_requests, merge
from kubani.errors import KubaniError
from kubani.inventory.initial import suggest_reservations
from kubani.kube import kubeconfig as kc
from kubani.kube.drain import drain, must_stay
from kubani.kube.summary import summarise
from kubani.models.peer import TailscalePeer
from tests.conftest import run_cli

ROOT = Path(__file__).resolve().parents[2]


def event(name: str, **data: Any) -> dict[str, Any]:
    return {"event": name, **data}


# ---- playbook events -------------------------------------------------------------------


def test_events_build_per_host_progress_and_failures_with_hints() -> None:
    state = RunState("site", total_plays=2)
    stream = [
        event("playbook_on_play_start", play="Check"),
        event("runner_on_start", host="w-2", task="Check that tailscale is logged in",
              role="prerequisites"),
        event("runner_on_ok", host="cp-1", task="Gather", res={"changed": True}),
        event("runner_on_failed", host="w-2", task="Check that tailscale is logged in",
              role="prerequisites", res={"msg": "w-2: tailscale is not connected (BackendState "
              "NeedsLogin). Fix: run `sudo tailscale up` on w-2."}),
        event("runner_on_failed", host="cp-1", task="Start nft", role="prerequisites",
              res={"msg": "boom"}),  # rescued later: not a failure in the end
        event("runner_on_unreachable", host="w-3", task="Gather",
              res={"msg": "Failed to connect to the host via ssh: Permission denied (publickey)"}),
        event("playbook_on_stats", ok={"cp-1": 5, "w-2": 1}, changed={"cp-1": 1},
              failures={"w-2": 1}, dark={"w-3": 1}, rescued={"cp-1": 1}),
    ]  # fmt: skip
    for raw in stream:
        parsed = parse_event(raw)
        assert parsed is not None
        state.apply(parsed)
    state.rc = 2
    assert state.hosts["cp-1"].status == "ok" and state.hosts["cp-1"].changed == 1
    assert state.hosts["w-2"].status == "failed" and state.hosts["w-3"].status == "unreachable"
    assert [(f.host, f.task) for f in state.failures] == [
        ("w-2", "Check that tailscale is logged in"),
        ("w-3", "Gather"),
    ]
    assert state.failures[0].hint == "run `sudo tailscale up` on w-2"
    assert "Fix:" not in state.failures[0].message
    assert state.failures[1].hint is not None and "ssh w-3 true" in state.failures[1].hint
    assert not state.succeeded
    assert parse_event({"event": "verbose"}) is None


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("w-1 cannot reach cp-1 (100.64.0.11) on 6443/tcp: timed out.", "allow the port"),
        ("The K3s binary /x/k3s does not match sha256sum-amd64.txt", "corrupt"),
        ("Missing sudo password", "password-less sudo"),
        (
            "Task failed: Host key checking is enabled, and SSH reported an unrecognized or "
            "mismatching host key.",
            "`ssh w-1`",
        ),
        ("Task failed: EOF on stream; last 100 lines received:", "/run/nologin"),
        (
            "EOF on stream; last 100 lines received:\nbash: python3: command not found",
            None,
        ),
        ("something else entirely", None),
    ],
)
def test_hints_for_known_failures(message: str, expected: str | None) -> None:
    hint = hint_for(message, "w-1")
    assert (hint is None) if expected is None else (hint is not None and expected in hint)


def test_plays_are_counted_through_imports() -> None:
    playbooks = ROOT / "ansible" / "playbooks"
    assert count_plays(playbooks / "site.yml") == count_plays(playbooks / "provision_cluster.yml")
    assert count_plays(playbooks / "provision_cluster.yml") >= 6


def test_provision_refuses_an_invalid_inventory_without_running(tmp_path: Path) -> None:
    hosts = tmp_path / "hosts.yml"
    hosts.write_text(
        "all:\n  children:\n    control_plane:\n      hosts:\n"
        "        cp-1:\n          tailscale_ip: 10.0.0.1\n"
    )
    result = run_cli("-i", hosts, "provision")
    assert result.code == 1 and "cluster-mgr validate" in result.stderr
    assert not (tmp_path / ".kubani").exists()


# ---- status ------------------------------------------------------------------------------


def peer(name: str, ip: str, online: bool = True, relay: str | None = None) -> TailscalePeer:
    return TailscalePeer(
        hostname=name, dns_name=f"{name}.ts.net", tailscale_ips=(ip,), ipv4=ip, os="linux",
        online=online, last_seen=None, relay=relay,
    )  # fmt: skip


def api_node(name: str, ip: str, ready: str = "True") -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": {}},
        "spec": {},
        "status": {
            "conditions": [{"type": "Ready", "status": ready}],
            "addresses": [{"type": "InternalIP", "address": ip}],
            "allocatable": {"cpu": "4", "memory": "8Gi"},
            "capacity": {"nvidia.com/gpu": "4"} if name == "gpu-1" else {},
            "nodeInfo": {"kubeletVersion": "v1.31.4+k3s1"},
        },
    }


def test_status_merges_the_three_views() -> None:
    inventory = [
        InventoryNode("cp-1", "control-plane", "100.64.0.1"),
        InventoryNode("w-1", "worker", "100.64.0.2"),
        InventoryNode("w-2", "worker", "100.64.0.3"),
        InventoryNode("w-3", "worker", "100.64.0.4"),
        InventoryNode("gpu-1", "worker", "100.64.0.5", gpu=True),
    ]
    peers = [
        peer("cp-1", "100.64.0.1"),
        peer("w-1", "100.64.0.2", relay="fra"),
        peer("w-2", "100.64.0.3", online=False),
        peer("gpu-1", "100.64.0.5"),
        peer("stray", "100.64.0.9"),
    ]
    nodes = [
        summarise(api_node("cp-1", "100.64.0.1")),
        summarise(api_node("w-1", "100.64.0.2", ready="False")),
        summarise(api_node("w-2", "100.64.0.3")),  # stale Ready, but offline on the tailnet
        summarise(api_node("gpu-1", "100.64.0.5")),
        summarise(api_node("stray", "100.64.0.9")),
    ]
    pods = [
        {"spec": {"nodeName": "gpu-1", "containers": [
            {"resources": {"limits": {"nvidia.com/gpu": 1}}}]}, "status": {"phase": "Running"}},
        {"spec": {"nodeName": "gpu-1", "containers": [
            {"resources": {"limits": {"nvidia.com/gpu": 1}}}]}, "status": {"phase": "Succeeded"}},
    ]  # fmt: skip
    rows = {r.name: r for r in merge(inventory, peers, nodes, gpu_requests(pods))}
    assert rows["cp-1"].state == "Ready" and rows["cp-1"].path == "direct"
    assert rows["w-1"].state == "NotReady" and rows["w-1"].path == "relay:fra"
    assert rows["w-2"].state == "unreachable" and rows["w-2"].tailnet == "offline"
    assert rows["w-3"].state == "unreachable" and "not on the tailnet" in rows["w-3"].flags
    assert rows["stray"].flags == ("in the cluster but not in the inventory",)
    assert rows["gpu-1"].gpu_allocated == 1 and rows["gpu-1"].node is not None
    assert rows["gpu-1"].node.gpu_capacity == 4
    unknown = {r.name: r.state for r in merge(inventory[:1], None, None)}
    assert unknown == {"cp-1": "unknown"}
    not_joined = {r.name: r.state for r in merge(inventory[:2], peers, nodes[:1])}
    assert not_joined["w-1"] == "not joined"


def test_flux_objects_report_ready_reason_and_revision() -> None:
    objects = [
        {"kind": "Kustomization", "metadata": {"name": "apps", "namespace": "flux-system",
         "generation": 2}, "spec": {}, "status": {"observedGeneration": 1,
         "lastAttemptedRevision": "main@sha1:132f", "conditions": [{"type": "Ready",
         "status": "False", "reason": "DependencyNotReady", "message": "dependency"}]}},
        {"kind": "GitRepository", "metadata": {"name": "flux-system", "generation": 1},
         "spec": {"suspend": True}, "status": {"observedGeneration": 1,
         "artifact": {"revision": "main@sha1:abcd"}, "conditions": [
             {"type": "Ready", "status": "True", "reason": "Succeeded", "message": "ok"}]}},
    ]  # fmt: skip
    parsed = {o["metadata"]["name"]: flux_object(o["kind"], o) for o in objects}
    apps = parsed["apps"]
    assert apps.ready == "False" and apps.reason == "DependencyNotReady"
    assert apps.revision == "main@sha1:132f"
    source = parsed["flux-system"]
    assert (source.ready, source.revision, source.suspended) == ("True", "main@sha1:abcd", True)


# ---- kubeconfig -----------------------------------------------------------------------------


K3S_KUBECONFIG = """apiVersion: v1
kind: Config
clusters:
- cluster: {certificate-authority-data: Q0E=, server: "https://127.0.0.1:6443"}
  name: default
users:
- name: default
  user: {client-certificate-data: Q0VSVA==, client-key-data: S0VZ}
contexts:
- context: {cluster: default, user: default}
  name: default
current-context: default
"""


def test_kubeconfig_rewrite_and_merge_keep_other_contexts() -> None:
    ours = kc.rewrite(kc.parse(K3S_KUBECONFIG, "k3s.yaml"), "https://100.64.0.1:6443", "home")
    [cluster] = ours["clusters"]
    assert cluster["name"] == "home"
    assert cluster["cluster"]["server"] == "https://100.64.0.1:6443"
    assert cluster["cluster"]["certificate-authority-data"] == "Q0E="
    assert all(kc.is_kubanis(ours[s][0], body) for s, body in kc.SECTIONS)
    existing = {
        "apiVersion": "v1", "kind": "Config", "current-context": "work",
        "clusters": [{"name": "work", "cluster": {"server": "https://w"}}],
        "users": [{"name": "work", "user": {"token": "t"}}],
        "contexts": [{"name": "work", "context": {"cluster": "work", "user": "work"}}],
    }  # fmt: skip
    merged = kc.merge(existing, ours)
    assert merged["current-context"] == "work"
    assert [c["name"] for c in merged["clusters"]] == ["work", "home"]
    assert {u["name"] for u in merged["users"]} == {"work", "home"}
    # Merging again replaces Kubani's own entries (a new server address), nothing else.
    again = kc.rewrite(kc.parse(K3S_KUBECONFIG, "k3s.yaml"), "https://100.64.0.9:6443", "home")
    merged = kc.merge(merged, again)
    assert [c["name"] for c in merged["clusters"]] == ["work", "home"]
    assert merged["clusters"][1]["cluster"]["server"] == "https://100.64.0.9:6443"
    assert kc.merge({}, ours)["current-context"] == "home"
    with pytest.raises(KubaniError):
        kc.parse("kind: Pod\n", "x")
    with pytest.raises(KubaniError):
        kc.parse("clusters: {a: b}\n", "x")


def test_kubeconfig_merge_never_overwrites_entries_kubani_did_not_write() -> None:
    text = """# my clusters, do not lose this comment
apiVersion: v1
kind: Config
clusters:
- name: home   # the old k3s
  cluster: {server: https://old}
users:
- name: home
  user:
    exec: {command: aws, args: [eks, get-token], apiVersion: client.authentication.k8s.io/v1}
contexts:
- name: work
  context: {cluster: home, user: home}
current-context: work
"""
    ours = kc.rewrite(kc.parse(K3S_KUBECONFIG, "k3s.yaml"), "https://100.64.0.1:6443", "home")
    existing = kc.load_round_trip(text, "config")
    with pytest.raises(KubaniError) as refused:
        kc.merge(existing, ours)
    message = str(refused.value)
    assert "cluster 'home'" in message and "user 'home'" in message
    assert "--context NEW-NAME" in message
    assert kc.dump_round_trip(existing) == text  # refused: nothing changed
    renamed = kc.rewrite(kc.parse(K3S_KUBECONFIG, "k3s.yaml"), "https://100.64.0.1:6443", "lab")
    written = kc.dump_round_trip(kc.merge(existing, renamed))
    assert "# my clusters, do not lose this comment" in written
    assert "# the old k3s" in written and "eks, get-token" in written
    assert kc.parse(written, "config")["current-context"] == "work"


# ---- drain ---------------------------------------------------------------------------------


class FakeKube:
    def __init__(self, pods: list[dict[str, Any]], refusals: dict[str, int]) -> None:
        self._pods = pods
        self.refusals = refusals
        self.cordoned: list[str] = []

    async def cordon(self, name: str) -> None:
        self.cordoned.append(name)

    async def pods(
        self, namespace: str | None = None, node: str | None = None
    ) -> list[dict[str, Any]]:
        return [p for p in self._pods if p["spec"]["nodeName"] == node]

    async def evict(self, namespace: str, name: str) -> bool:
        if self.refusals.get(name, 0) > 0:
            self.refusals[name] -= 1
            return False
        self._pods = [p for p in self._pods if p["metadata"]["name"] != name]
        return True


def pod(name: str, owner: str | None = None, node: str = "w-1") -> dict[str, Any]:
    refs = [{"kind": owner, "name": "x"}] if owner else []
    return {
        "metadata": {"name": name, "namespace": "default", "ownerReferences": refs},
        "spec": {"nodeName": node},
        "status": {"phase": "Running"},
    }


def test_drain_evicts_retries_pdbs_and_keeps_daemonsets() -> None:
    kube = FakeKube(
        [pod("web-1", "ReplicaSet"), pod("web-2", "ReplicaSet"), pod("agent", "DaemonSet"),
         pod("other", "ReplicaSet", node="w-2")],
        {"web-2": 2},
    )  # fmt: skip
    result = asyncio.run(drain(kube, "w-1", timeout=5, poll=0.01))
    assert kube.cordoned == ["w-1"]
    assert result.evicted == ["default/web-1", "default/web-2"]
    assert result.kept == ["default/agent"] and result.complete
    stuck = FakeKube([pod("db-0", "StatefulSet")], {"db-0": 10**6})
    blocked = asyncio.run(drain(stuck, "w-1", timeout=0.05, poll=0.01))
    assert blocked.blocked == ["default/db-0"] and not blocked.complete
    assert must_stay({"metadata": {"annotations": {"kubernetes.io/config.mirror": "x"}}})


# ---- doctor and init --------------------------------------------------------------------------


def report(**overrides: Any) -> dict[str, Any]:
    base = {
        "kubani_doctor": True, "os_family": "Debian", "distribution": "Debian 12",
        "architecture": "x86_64", "memtotal_mb": 8000, "disk_free_bytes": 50 * 2**30,
        "sudo_error": "", "tailscale_rc": 0,
        "tailscale": json.dumps({"BackendState": "Running",
                                 "Self": {"TailscaleIPs": ["100.64.0.2"]}, "Peer": {}}),
        "tailscale_error": "", "time_synchronised": "yes",
        "ports": json.dumps({"checked": 2, "blocked": []}), "cluster_ips": [],
    }  # fmt: skip
    return base | overrides


def test_doctor_turns_findings_into_a_checklist_with_fixes() -> None:
    healthy = node_checks("w-1", "worker", "100.64.0.2", report())
    assert {c.result for c in healthy} == {"ok"}
    sick = node_checks(
        "w-1",
        "worker",
        "100.64.0.9",
        report(
            tailscale=json.dumps(
                {"BackendState": "Running", "Self": {"TailscaleIPs": ["100.64.0.2"]}}
            ),
            disk_free_bytes=2**30,
            time_synchronised="no",
            ports=json.dumps({"checked": 1, "blocked": [
                {"name": "cp-1", "address": "100.64.0.1", "port": 6443, "error": "timed out"}]}),
            sudo_error="Missing sudo password",
        ),
    )  # fmt: skip
    by_name = {c.name: c for c in sick}
    assert by_name["tailnet IP"].result == "fail" and "100.64.0.9" in by_name["tailnet IP"].detail
    assert by_name["disk"].result == "fail" and by_name["time"].result == "warn"
    assert by_name["ports"].result == "fail" and "cp-1:6443" in by_name["ports"].detail
    assert by_name["sudo"].result == "fail"
    logged_out = node_checks(
        "w-1", "worker", None, report(tailscale=json.dumps({"BackendState": "NeedsLogin"}))
    )
    tailscale = next(c for c in logged_out if c.name == "tailscale")
    assert tailscale.result == "fail" and tailscale.fix == "run `sudo tailscale up` on w-1"
    assert unreachable("w-9", None)[0].result == "fail"


def test_reservations_are_sized_from_the_machine() -> None:
    assert suggest_reservations(16, 32768, workstation=True) == {
        "reserved_cpu": "4",
        "reserved_memory": "8192Mi",
    }
    assert suggest_reservations(4, 4096, workstation=False) == {
        "reserved_cpu": "500m",
        "reserved_memory": "512Mi",
    }
    assert suggest_reservations(None, None, workstation=False) == {}


def test_init_writes_a_valid_inventory_and_never_overwrites(tmp_path: Path) -> None:
    status = tmp_path / "status.json"
    status.write_text((ROOT / "tests/fixtures/tailscale-status.json").read_text())
    peers = json.loads(status.read_text())["Peer"].values()
    online = [p["HostName"].lower() for p in peers if p.get("Online")]
    out = tmp_path / "inv"
    args = ["init", "--output", out, "--no-probe", "--control-plane", online[0], "--json",
            "--status-file", status]  # fmt: skip
    result = run_cli(*args)
    assert result.code == 0, result.stderr
    assert run_cli("-i", out / "hosts.yml", "validate").code == 0
    before = (out / "hosts.yml").read_bytes()
    again = run_cli(*args)
    assert again.code == 1 and "already there" in again.stderr
    assert (out / "hosts.yml").read_bytes() == before
    unknown = run_cli("init", "--output", tmp_path / "x", "--no-probe", "--control-plane",
                      "no-such-host", "--status-file", status)  # fmt: skip
    assert unknown.code == 1 and "not on the tailnet: no-such-host" in unknown.stderr
    assert not (tmp_path / "x" / "hosts.yml").exists()


def _local_project(tmp_path: Path, config: str, play: str) -> tuple[Path, dict[str, str]]:
    """A throwaway Ansible project (``config``, ``playbooks/site.yml``) and an inventory of
    one control plane reached locally: the inventory's path and cluster-mgr's environment."""
    import os

    from tests.conftest import BIN

    project = tmp_path / "ansible"
    (project / "playbooks").mkdir(parents=True)
    (project / "ansible.cfg").write_text(config)
    (project / "playbooks" / "site.yml").write_text(play)
    hosts = tmp_path / "inventory" / "hosts.yml"
    hosts.parent.mkdir()
    hosts.write_text(
        "all:\n  vars:\n    ansible_connection: local\n    ansible_python_interpreter: "
        f"{BIN / 'python'}\n  children:\n    control_plane:\n      hosts:\n"
        "        cp-1:\n          tailscale_ip: 100.64.0.1\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "ANSIBLE_HOST_KEY_CHECKING"}
    env |= {"KUBANI_ANSIBLE_DIR": str(project), "NO_COLOR": "1",
            "PATH": f"{BIN}:{os.environ.get('PATH', '')}"}  # fmt: skip
    return hosts, env


def test_ctrl_c_stops_a_run_cleanly_with_130(tmp_path: Path) -> None:
    """A real run (local connection) interrupted by SIGINT."""
    import signal
    import subprocess
    import time

    from tests.conftest import BIN

    hosts, env = _local_project(
        tmp_path,
        "[defaults]\nhost_key_checking = False\n",
        "---\n- name: Slow play\n  hosts: all\n  gather_facts: false\n  tasks:\n"
        "    - name: Take a while\n      ansible.builtin.command: sleep 60\n"
        "      changed_when: false\n",
    )
    process = subprocess.Popen(
        [str(BIN / "cluster-mgr"), "-i", str(hosts), "provision"],
        stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env, cwd=tmp_path,
    )  # fmt: skip
    assert process.stderr is not None
    seen = ""
    deadline = time.monotonic() + 60
    while "play 1/1" not in seen and time.monotonic() < deadline:
        seen += process.stderr.readline()
    time.sleep(2)  # the sleep task is running
    started = time.monotonic()
    process.send_signal(signal.SIGINT)
    _out, rest = process.communicate(timeout=60)
    assert process.returncode == 130, seen + rest
    assert time.monotonic() - started < 30
    assert (
        "interrupted" in rest and "cp-1 (Take a while)" in rest and "run the same command" in rest
    )
    assert (tmp_path / ".kubani" / "runs").is_dir()


def test_pods_read_as_kubectl_shows_them() -> None:
    from io import StringIO

    from rich.console import Console

    from kubani.cli.status import render
    from kubani.cluster.status import ClusterStatus, pod_status

    def pod(name: str, state: dict[str, Any], **meta: Any) -> dict[str, Any]:
        return {"metadata": {"name": name, "namespace": "apps", **meta},
                "spec": {"nodeName": "w-1", "containers": [{"name": "c"}, {"name": "d"}]},
                "status": state}  # fmt: skip

    running = pod("web", {"phase": "Running", "containerStatuses": [
        {"name": "c", "ready": True, "restartCount": 2, "state": {"running": {}}},
        {"name": "d", "ready": True, "restartCount": 1, "state": {"running": {}}}]})  # fmt: skip
    crashing = pod("api", {"phase": "Running", "containerStatuses": [
        {"name": "c", "ready": False, "restartCount": 7,
         "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]})  # fmt: skip
    leaving = pod("old", {"phase": "Running"}, deletionTimestamp="2026-01-01T00:00:00Z")
    pending = pod("new", {"phase": "Pending"})
    rows = [pod_status(p) for p in (running, crashing, leaving, pending)]
    assert [(r.ready, r.status, r.restarts) for r in rows] == [
        ("2/2", "Running", 3), ("0/2", "CrashLoopBackOff", 7), ("0/2", "Terminating", 0),
        ("0/2", "Pending", 0),
    ]  # fmt: skip
    status = ClusterStatus("lab", None, None, None, pods=rows)
    assert [p["status"] for p in status.as_json()["pods"]][:2] == ["Running", "CrashLoopBackOff"]
    assert "pods" not in ClusterStatus("lab", None, None, None).as_json()
    out = StringIO()
    Console(file=out, width=160, no_color=True).print(render(status))
    text = out.getvalue()
    assert "Pods (4)" in text
    assert "CrashLoopBackOff" in text and "api" in text


def test_runs_keep_facts_between_them_and_check_host_keys(tmp_path: Path) -> None:
    """A run from cluster-mgr keeps facts per inventory (a later run need not discover each
    node's Python again; two clusters may name nodes alike), privately, and leaves host key
    checking as ansible-playbook has it."""
    import json
    import stat
    import subprocess

    from tests.conftest import BIN

    hosts, env = _local_project(
        tmp_path,
        "[defaults]\nfact_caching = jsonfile\n",
        "---\n- name: Facts\n  hosts: all\n  gather_facts: true\n  gather_subset: [min]\n"
        "  tasks:\n    - name: Nothing\n      ansible.builtin.debug:\n        msg: ok\n",
    )
    for _ in range(2):
        run = subprocess.run(
            [str(BIN / "cluster-mgr"), "-i", str(hosts), "provision", "--json"],
            capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120, check=False,
        )  # fmt: skip
        assert run.returncode == 0, run.stderr[-2000:]
    [facts] = (tmp_path / ".kubani" / "facts").iterdir()
    assert stat.S_IMODE(facts.stat().st_mode) == 0o700
    # ansible-core 2.19 prefixes the file with its serialisation version (s1_cp-1).
    [cached] = [f for f in facts.iterdir() if f.name.endswith("cp-1")]
    payload = json.loads(cached.read_text())
    facts_of_cp1 = json.loads(payload["__payload__"]) if "__payload__" in payload else payload
    assert facts_of_cp1["module_setup"] is True and "ansible_python" in facts_of_cp1
    runs = sorted((tmp_path / ".kubani" / "runs").iterdir())
    assert len(runs) == 2
    command = json.loads((runs[-1] / "command.json").read_text())
    assert "ANSIBLE_HOST_KEY_CHECKING" not in command["env"]
    assert command["env"]["ANSIBLE_CACHE_PLUGIN_CONNECTION"] == str(facts)


def test_kubeconfig_merge_keeps_entries_whose_name_is_not_text() -> None:
    ours = kc.rewrite(kc.parse(K3S_KUBECONFIG, "k3s.yaml"), "https://100.64.0.1:6443", "home")
    existing = kc.load_round_trip(
        "kind: Config\nclusters:\n- name: {odd: 1}\n  cluster: {server: https://x}\n- name: [a]\n",
        "config",
    )
    merged = kc.merge(existing, ours)
    assert [c["name"] for c in merged["clusters"]] == [{"odd": 1}, ["a"], "home"]
