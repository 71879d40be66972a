"""The workstation guard's decisions from local signals (logind sessions, foreign GPU
processes), its hysteresis, quiet hours and overrides, and the Node patch it sends."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from tests.guard_module import load_guard

guard = load_guard()
NOON = datetime(2026, 12, 1, 12, 0)


def _policy(**extra: Any) -> Any:
    return guard.Policy.from_json({"node": "desk", "ignore_users": ["kubani"], **extra})


def _session(user: str = "alice", **extra: str) -> Any:
    fields = {"Id": "3", "Name": user, "Class": "user", "Active": "yes", "IdleHint": "no",
              "Remote": "no", "Seat": "seat0", "TTY": "tty2", **extra}  # fmt: skip
    return guard.parse_session("".join(f"{k}={v}\n" for k, v in fields.items()))


@pytest.mark.parametrize(
    ("settings", "said"),
    [
        ({}, "node's name"),
        ({"node": "desk", "idle_after_s": "soon"}, "numbers of seconds"),
        ({"node": "desk", "poll_s": 0}, "poll_s more than 0"),
        ({"node": "desk", "quiet_hours": ["22:00"]}, "HH:MM-HH:MM"),
        ({"node": "desk", "quiet_hours": ["25:00-07:00"]}, "not a time of day"),
        ({"node": "desk", "ignore_users": "kubani"}, "list of user names"),
    ],
)
def test_bad_settings_are_refused_with_what_is_wrong(settings: dict[str, Any], said: str) -> None:
    with pytest.raises(guard.PolicyError, match=said):
        guard.Policy.from_json(settings)


def test_quiet_hours_may_cross_midnight() -> None:
    policy = _policy(quiet_hours=["22:30-07:00", "12:00-12:30"])
    at = [datetime(2026, 12, 1, h, m) for h, m in ((23, 0), (6, 59), (7, 0), (12, 15), (22, 29))]
    assert [policy.quiet(moment) for moment in at] == [True, True, False, True, False]


def test_only_an_active_owner_s_session_that_is_not_idle_counts() -> None:
    sessions = [
        _session(),
        _session("kubani", Remote="yes", Seat="", TTY="pts/0"),  # Ansible's own login
        _session("bob", IdleHint="yes"),
        _session("carol", Active="no"),
        _session("gdm", Class="greeter"),
        _session("dave", Remote="yes", Seat="", TTY="pts/1"),  # a person over SSH
        _session("erin", Remote="yes", Seat="", TTY="", RemoteHost="100.64.0.9"),
        _session("frank", Remote="yes", Seat="", TTY=""),
    ]
    busy = guard.owners_sessions(sessions, frozenset({"kubani"}))
    assert [(s.user, s.where) for s in busy] == [
        ("alice", "seat0"), ("dave", "pts/1"), ("erin", "SSH from 100.64.0.9"), ("frank", "SSH")
    ]  # fmt: skip
    assert guard.parse_session("Id=4\n") is None  # ended while it was read
    assert guard.session_ids("  3 1000 alice seat0 tty2\n  c1  120 gdm  seat0 tty1\n\n") == [
        "3", "c1"]  # fmt: skip


def test_gpu_processes_outside_the_pods_are_the_owner_s() -> None:
    listed = "pid, process_name\n4242, /usr/bin/blender\n77, python3\nNo running processes found\n"
    assert guard.compute_apps(listed) == [(4242, "/usr/bin/blender"), (77, "python3")]
    pod = "0::/kubepods/besteffort/pod1234/cri-containerd-abc\n"
    desktop = "0::/user.slice/user-1000.slice/session-3.scope\n"
    assert guard.is_pod(pod) and not guard.is_pod(desktop)


def _decide(g: Any, at: float, signals: Any = None, override: str | None = None) -> Any:
    return g.decide(at, NOON, signals or guard.Signals(), override)


def test_held_while_in_use_and_released_only_after_idle_after() -> None:
    g = guard.Guard(_policy(idle_after_s=600))
    busy = guard.Signals(sessions=(_session(),))
    assert _decide(g, 0).hold is False
    held = _decide(g, 100, busy)
    assert held.hold and held.since == 100 and held.reason == "alice on seat0"
    assert _decide(g, 200, busy).since == 100  # still the same hold
    assert _decide(g, 799).hold  # a pause shorter than idle_after changes nothing
    assert not _decide(g, 800).hold
    assert _decide(g, 900, busy).since == 900  # a new hold


def test_gpu_pods_are_evicted_only_when_the_policy_says_so() -> None:
    gaming = guard.Signals(gpu_processes=((4242, "game"),))
    plain = guard.Guard(_policy())
    assert _decide(plain, 0, gaming) == guard.Desired(True, False, "GPU: game (pid 4242)", 0)
    evicting = guard.Guard(_policy(evict_gpu=True, idle_after_s=60))
    assert _decide(evicting, 0, gaming).evict_gpu
    # A session alone holds the node but leaves GPU pods alone, once the GPU is idle long enough.
    person = guard.Signals(sessions=(_session(),))
    assert _decide(evicting, 30, person).evict_gpu
    later = _decide(evicting, 61, person)
    assert later.hold and not later.evict_gpu


def test_quiet_hours_and_overrides_win_over_the_signals() -> None:
    g = guard.Guard(_policy(quiet_hours=["11:00-13:00"]))
    busy = guard.Signals(sessions=(_session(),))
    assert not g.decide(0, NOON, busy, None).hold
    assert g.decide(0, datetime(2026, 12, 1, 14, 0), busy, None).hold
    assert not g.decide(1, NOON, busy, guard.RELEASE).hold
    held = g.decide(2, NOON, guard.Signals(), guard.HOLD)
    assert held.hold and held.reason.startswith("held by hand")


def _node(taints: list[dict[str, str]] | None = None, **annotations: str) -> dict[str, Any]:
    return {"metadata": {"name": "desk", "resourceVersion": "41", "annotations": annotations},
            "spec": {"taints": taints or []}}  # fmt: skip


def _apply(node: dict[str, Any], ops: list[dict[str, Any]]) -> dict[str, Any]:
    """A small JSON-patch applier for the ops the guard sends (test, add, remove)."""
    import copy

    out = copy.deepcopy(node)
    for op in ops:
        parts = [p.replace("~1", "/").replace("~0", "~") for p in op["path"][1:].split("/")]
        *parents, last = parts
        target = out
        for part in parents:
            target = target[part]
        if op["op"] == "test":
            assert target[last] == op["value"]
        elif op["op"] == "add":
            target[last] = op["value"]
        else:
            del target[last]
    return out


def test_the_patch_touches_only_the_guard_s_own_taints_and_annotations() -> None:
    other = {"key": "kubani.io/workstation", "value": "true", "effect": "PreferNoSchedule"}
    node = _node([other], note="kept")
    hold = guard.Desired(True, True, "alice on seat0", 1_796_000_000)
    ops = guard.node_patch(node, hold)
    assert ops[0] == {"op": "test", "path": "/metadata/resourceVersion", "value": "41"}
    held = _apply(node, ops)
    assert held["spec"]["taints"] == [
        other,
        {"key": guard.TAINT_KEY, "value": "true", "effect": "NoSchedule"},
        {"key": guard.GPU_TAINT_KEY, "value": "true", "effect": "NoExecute"},
    ]
    notes = held["metadata"]["annotations"]
    assert notes["note"] == "kept" and notes[guard.HELD_REASON] == "alice on seat0"
    assert notes[guard.HELD_SINCE].startswith("2026-")
    assert guard.node_patch(held, hold) is None  # nothing to change: no request at all
    released = _apply(held, guard.node_patch(held, guard.Desired(False)))
    assert released["spec"]["taints"] == [other]
    assert released["metadata"]["annotations"] == {"note": "kept"}
    assert guard.node_patch(released, guard.Desired(False)) is None


def test_a_node_without_annotations_or_taints_gets_them() -> None:
    bare = {"metadata": {"name": "desk", "resourceVersion": "7"}, "spec": {}}
    held = _apply(bare, guard.node_patch(bare, guard.Desired(True, False, "x", 1.0)))
    assert [t["key"] for t in held["spec"]["taints"]] == [guard.TAINT_KEY]
    assert held["metadata"]["annotations"][guard.HELD_REASON] == "x"
    assert guard.override_of({"metadata": {"annotations": {guard.OVERRIDE: "hold"}}}) == "hold"
    assert guard.override_of({"metadata": {"annotations": {guard.OVERRIDE: "maybe"}}}) is None


def test_signals_are_read_from_logind_nvidia_smi_and_proc(tmp_path: Any) -> None:
    (tmp_path / "4242").mkdir()
    (tmp_path / "4242" / "cgroup").write_text("0::/user.slice/user-1000.slice/session-3.scope\n")
    (tmp_path / "77").mkdir()
    (tmp_path / "77" / "cgroup").write_text("0::/kubepods/burstable/pod9/cri-containerd-1\n")
    shown = {
        "3": "Id=3\nName=alice\nClass=user\nActive=yes\nIdleHint=no\nSeat=seat0\n",
        "7": "Id=7\nName=kubani\nClass=user\nActive=yes\nIdleHint=no\nRemote=yes\n",
    }

    def run(argv: Any) -> str:
        if list(argv[:2]) == ["loginctl", "list-sessions"]:
            return "3 1000 alice seat0 tty2\n7 999 kubani - pts/0\n"
        if argv[:2] == ["loginctl", "show-session"]:
            return shown[argv[2]]
        if argv[0] == "nvidia-smi":
            return "4242, blender\n77, python3\n5, gone\n"
        raise AssertionError(argv)

    signals = guard.read_signals(_policy(), run, tmp_path)
    assert [s.user for s in signals.sessions] == ["alice"]
    assert signals.gpu_processes == ((4242, "blender"),)  # 77 is a pod's, 5 has ended
    assert guard.read_signals(_policy(watch_gpu=False), run, tmp_path).gpu_processes == ()
    assert guard.run_command(["/nonexistent/nvidia-smi"]) == ""


class FakeApi:
    def __init__(self, node: dict[str, Any], failures: int = 0) -> None:
        self.stored, self.failures, self.patches = node, failures, 0
        self.events: list[tuple[str, str]] = []

    def node(self, name: str) -> dict[str, Any]:
        if self.failures:
            self.failures -= 1
            raise guard.ApiError("GET: connection refused")
        return self.stored

    def record(self, node: dict[str, Any], reason: str, message: str, now: float) -> None:
        self.events.append((reason, message))

    def patch_node(self, name: str, ops: list[dict[str, Any]]) -> None:
        self.patches += 1
        self.stored = _apply(self.stored, ops)
        self.stored["metadata"]["resourceVersion"] = str(self.patches)


def test_a_poll_patches_only_on_a_change_and_a_stop_releases(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(guard.time_module, "sleep", lambda _s: None)
    api = FakeApi(_node())
    g = guard.Guard(_policy(idle_after_s=60))
    busy = guard.Signals(sessions=(_session(),))
    assert guard.step(g, api, busy, 0, NOON).hold and api.patches == 1
    guard.step(g, api, busy, 10, NOON)
    assert api.patches == 1  # the node carries it already: no request
    api.failures = 2  # the API is away twice, then back
    assert guard.release(g, api) is True
    assert api.stored["spec"]["taints"] == [] and api.patches == 2
    # Each change is an event on the node: the hold (with why), then the release.
    released = "the owner no longer uses it: the cluster may again"
    assert api.events == [
        ("HeldByOwner", "kept free of new pods: alice on seat0"),
        ("ReleasedByOwner", released),
    ]
    api.failures = 5
    assert guard.release(g, api) is False


def test_bad_settings_stop_the_guard_with_a_message_and_no_restart_loop(
    tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = tmp_path / "guard.json"
    settings.write_text('{"node": "desk", "poll_s": 0, "server": "https://x", '
                        '"token_file": "t", "ca_file": "c"}')  # fmt: skip
    assert guard.main([str(settings)]) == 2
    assert "poll_s more than 0" in capsys.readouterr().err
    assert guard.main([str(tmp_path / "missing.json")]) == 2


def test_the_guard_and_kubani_spell_the_node_s_marks_alike() -> None:
    from kubani import vocabulary as v

    assert (guard.TAINT_KEY, guard.GPU_TAINT_KEY) == (v.GUARD_TAINT, v.GUARD_GPU_TAINT)
    assert (guard.HELD_SINCE, guard.HELD_REASON, guard.OVERRIDE) == (
        v.GUARD_HELD_SINCE, v.GUARD_HELD_REASON, v.GUARD_OVERRIDE)  # fmt: skip
    assert tuple(v.GuardOverride) == (guard.HOLD, guard.RELEASE)


def test_the_inventory_s_guard_settings_are_checked() -> None:
    from pydantic import ValidationError

    from kubani.models.node import Node

    settings = {"idle_after": 300, "quiet_hours": ["22:00-07:00"]}
    node = Node.model_validate({"hostname": "desk", "tailscale_ip": "100.64.0.9",
                                "role": "worker", "workstation_guard": settings})  # fmt: skip
    assert node.workstation_guard is not None and node.workstation_guard.idle_after == 300
    assert node.host_vars()["workstation_guard"] == settings
    for bad in ({"idle_after": -1}, {"quiet_hours": ["late"]}, {"idle": 5}, {"poll": 0}):
        with pytest.raises(ValidationError):
            Node.model_validate({"hostname": "desk", "tailscale_ip": "100.64.0.9",
                                 "role": "worker", "workstation_guard": bad})  # fmt: skip


def test_the_nvidia_smi_stand_in_lists_the_processes_marked_as_gpu_apps(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import json
    import os
    import subprocess

    from kubani_lab.standins import nvidia_smi

    gpus = tmp_path / "gpus.json"
    card = {"name": "RTX", "memory_mib": 8192, "uuid": "GPU-1"}
    gpus.write_text(json.dumps({"driver_version": "550.1", "cuda_version": "12.4", "gpus": [card]}))
    monkeypatch.setattr(nvidia_smi, "GPUS_FILE", gpus)
    app = subprocess.Popen(["sleep", "30"], env={**os.environ, "KUBANI_LAB_GPU_APP": "1"})
    other = subprocess.Popen(["sleep", "30"])
    try:
        code = nvidia_smi.main(["--query-compute-apps=pid,process_name", "--format=csv,noheader"])
        listed = capsys.readouterr().out
    finally:
        app.kill()
        other.kill()
    assert code == 0
    assert guard.compute_apps(listed) == [(app.pid, "sleep")]
    assert nvidia_smi.main(["--query-compute-apps=pid,clocks", "--format=csv"]) == 2


def test_a_hold_s_heartbeat_is_refreshed_only_once_it_is_old() -> None:
    node = _node()
    hold = guard.Desired(True, False, "alice on seat0", 1_000.0)
    held = _apply(node, guard.node_patch(node, hold, now=1_000.0))
    beat = held["metadata"]["annotations"][guard.HEARTBEAT]
    assert guard.node_patch(held, hold, now=1_059.0) is None  # still fresh: no request
    refreshed = _apply(held, guard.node_patch(held, hold, now=1_060.0))
    assert refreshed["metadata"]["annotations"][guard.HEARTBEAT] > beat
    assert refreshed["metadata"]["annotations"][guard.HELD_SINCE] == (
        held["metadata"]["annotations"][guard.HELD_SINCE])  # fmt: skip
    with pytest.raises(guard.PolicyError, match="at least 4 polls"):
        _policy(poll_s=10, stale_after_s=30)


def test_the_sweeper_lifts_only_holds_no_live_guard_keeps() -> None:
    hold = guard.Desired(True, True, "alice on seat0", 0.0)
    dead = _apply(_node(), guard.node_patch(_node(), hold, now=0.0))
    dead["metadata"]["name"] = "dead"
    alive = _apply(_node(), guard.node_patch(_node(), hold, now=900.0))
    alive["metadata"]["name"] = "alive"
    other = {"key": "kubani.io/workstation", "value": "true", "effect": "PreferNoSchedule"}
    plain = _node([other])
    plain["metadata"]["name"] = "plain"
    assert [guard.stale(n, 1_000.0, 600.0) for n in (dead, alive, plain)] == [True, False, False]

    class Nodes:
        def __init__(self) -> None:
            self.patched: dict[str, list[dict[str, Any]]] = {}

        def nodes(self) -> list[dict[str, Any]]:
            return [dead, alive, plain]

        def patch_node(self, name: str, ops: list[dict[str, Any]]) -> None:
            self.patched[name] = ops

    api = Nodes()
    assert guard.sweep(api, 1_000.0, 600.0) == ["dead"]
    released = _apply(dead, api.patched["dead"])
    assert released["spec"]["taints"] == [] and released["metadata"]["annotations"] == {}


def test_a_sweep_with_bad_settings_says_so(tmp_path: Any) -> None:
    settings = tmp_path / "sweeper.json"
    settings.write_text('{"server": "https://127.0.0.1:6443"}')
    assert guard.main(["--sweep", str(settings)]) == 2


def test_the_guard_s_api_client_speaks_json_with_its_token(tmp_path: Any) -> None:
    import http.server
    import json
    import threading

    seen: list[tuple[str, str, str | None, str | None, Any]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            seen.append((self.command, self.path, self.headers.get("Authorization"),
                         self.headers.get("Content-Type"), body))  # fmt: skip
            data = json.dumps({"metadata": {"name": "desk", "uid": "u1"}}).encode()
            self.send_response(201 if self.command == "POST" else 200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_PATCH = do_POST = _answer

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    token = tmp_path / "token"
    token.write_text("sekret\n")
    (tmp_path / "ca.crt").write_text("")
    api = guard.Api(f"http://127.0.0.1:{server.server_address[1]}", token, tmp_path / "ca.crt")
    try:
        node = api.node("desk")
        api.patch_node("desk", [{"op": "test", "path": "/metadata/resourceVersion", "value": "1"}])
        api.record(node, "HeldByOwner", "kept free of new pods: alice on seat0", 0.0)
    finally:
        server.shutdown()
    (get, patch, post) = seen
    assert get[:4] == ("GET", "/api/v1/nodes/desk", "Bearer sekret", None)
    assert patch[:4] == ("PATCH", "/api/v1/nodes/desk", "Bearer sekret",
                         "application/json-patch+json")  # fmt: skip
    assert post[:4] == ("POST", "/api/v1/namespaces/default/events", "Bearer sekret",
                        "application/json")  # fmt: skip
    assert post[4]["involvedObject"] == {"apiVersion": "v1", "kind": "Node", "name": "desk",
                                         "uid": "u1"}  # fmt: skip
    assert post[4]["reason"] == "HeldByOwner" and post[4]["type"] == "Normal"
