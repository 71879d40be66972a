"""The digest a provisioning run compares with each node's record (the node_state role):
what changes it and what must not. Loaded by Ansible's own plugin loader."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible.parsing.dataloader import DataLoader
from ansible.plugins.loader import lookup_loader

from kubani.vocabulary import FULL_RUN_VARIABLE
from tests.conftest import FakeHttp

ANSIBLE = Path(__file__).resolve().parents[2] / "ansible"


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of the Ansible tree, so that a test may change a role."""
    for name in ("playbooks", "roles", "lookup_plugins", "filter_plugins"):
        shutil.copytree(ANSIBLE / name, tmp_path / name, ignore=shutil.ignore_patterns("*.pyc"))
    return tmp_path


def digest(tree: Path, variables: dict[str, Any], globs: list[str] | None = None) -> str:
    lookup_loader.add_directory(str(tree / "lookup_plugins"))
    plugin = lookup_loader.get("kubani_state_digest", loader=DataLoader(), templar=None)
    assert plugin is not None
    [value] = plugin.run([], variables={"playbook_dir": str(tree / "playbooks"), **variables},
                         globs=globs or [])  # fmt: skip
    assert isinstance(value, str) and len(value) == 64
    return value


NODE: dict[str, Any] = {
    "inventory_hostname": "w-1",
    "group_names": ["workers"],
    "groups": {"all": ["cp-1", "w-1"], "control_plane": ["cp-1"], "workers": ["w-1"]},
    "tailscale_ip": "100.64.0.11",
    "node_labels": {"zone": "attic"},
    "k3s_version": "v1.35.4+k3s1",
    "kubani_k3s_data_dir": "/var/lib/rancher/k3s",
    "kubani_k3s_server_dir": "{{ kubani_k3s_data_dir }}/server",
}


def test_how_the_run_reaches_the_node_and_its_facts_leave_the_digest_alone(tree: Path) -> None:
    """Facts cached by an earlier run (present on some runs only), connection settings, the
    play's own names and the full-run switch do not say what the node should be."""
    same = digest(tree, NODE)
    noise = {
        "ansible_host": "192.168.1.20",
        "ansible_user": "admin",
        "ansible_facts": {"discovered_interpreter_python": "/usr/bin/python3", "uptime": 5},
        "discovered_interpreter_python": "/usr/bin/python3",
        "ansible_play_hosts": ["w-1"],
        "ansible_run_tags": ["all"],
        "inventory_file": "/elsewhere/hosts.yml",
        "omit": "__omit_place_holder__1234",
        "role_path": "/x",
        "node_state_digest_globs": [],
        FULL_RUN_VARIABLE: True,
    }
    assert digest(tree, {**NODE, **noise}) == same


@pytest.mark.parametrize(
    "change",
    [
        {"node_labels": {"zone": "cellar"}},
        {"tailscale_ip": "100.64.0.12"},
        {"k3s_version": "v1.35.5+k3s1"},
        {"reserved_cpu": "500m"},  # a variable that was not there
        {"groups": {**NODE["groups"], "control_plane": ["cp-1", "cp-2"]}},
        {"group_names": ["control_plane"]},
        {"kubani_k3s_server_dir": "/srv/k3s/server"},  # unrendered text is compared
    ],
)
def test_what_the_node_should_be_changes_the_digest(tree: Path, change: dict[str, Any]) -> None:
    assert digest(tree, {**NODE, **change}) != digest(tree, NODE)


def test_a_changed_role_or_release_changes_the_digest(tree: Path, tmp_path: Path) -> None:
    release = tmp_path / "airgap"
    release.mkdir()
    (release / "sha256sum-amd64.txt").write_text("aaaa  k3s\n")
    globs = [str(release / "sha256sum-*.txt")]
    before = digest(tree, NODE, globs)
    assert digest(tree, NODE) != before  # the checksums are part of it

    (release / "sha256sum-amd64.txt").write_text("bbbb  k3s\n")
    after_release = digest(tree, NODE, globs)
    assert after_release != before

    defaults = tree / "roles" / "k3s_worker" / "defaults" / "main.yml"
    defaults.write_text(defaults.read_text() + "\n# a new default\n")
    assert digest(tree, NODE, globs) != after_release


def test_the_full_run_switch_is_spelt_as_the_cli_spells_it() -> None:
    defaults = yaml.safe_load((ANSIBLE / "roles/node_state/defaults/main.yml").read_text())
    assert FULL_RUN_VARIABLE in defaults["node_state_full_run"]
    plugin = (ANSIBLE / "lookup_plugins/kubani_state_digest.py").read_text()
    assert f'"{FULL_RUN_VARIABLE}"' in plugin


def _record_check(
    tmp_path: Path,
    record: str | None,
    active: set[str],
    read: bool = True,
    api: dict[str, Any] | None = None,
    environment: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The role's kubani_node_record module run by Ansible on this machine, with a
    systemctl that reports ``active`` units as running."""
    path = tmp_path / "provisioned.json"
    if record is not None:
        path.write_text(record)
    fake = tmp_path / "bin"
    fake.mkdir(exist_ok=True)
    systemctl = fake / "systemctl"
    units = " ".join(sorted(active))
    systemctl.write_text(
        f'#!/bin/sh\nfor u in {units}; do [ "$2" = "$u" ] && echo active && exit 0; done\n'
        "echo inactive; exit 3\n"
    )
    systemctl.chmod(0o755)
    out = tmp_path / "found.json"
    play = tmp_path / "play.yml"
    play.write_text(
        yaml.safe_dump(
            [
                {
                    "name": "Check",
                    "hosts": "localhost",
                    "gather_facts": False,
                    "tasks": [
                        {
                            "name": "Read the record",
                            "kubani_node_record": {
                                "path": str(path),
                                "expected": "abc",
                                "read": read,
                                **({"api": api} if api else {}),
                            },
                            "register": "found",
                            "environment": {
                                "PATH": f"{fake}:/usr/bin:/bin",
                                **(environment or {}),
                            },
                        },
                        {
                            "name": "Keep what it found",
                            "ansible.builtin.copy": {
                                "content": "{{ found | to_json }}",
                                "dest": str(out),
                                "mode": "0600",
                            },
                        },
                    ],
                }
            ]
        )
    )
    result = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), "-i", "localhost,", "-c", "local",
         "-M", str(ANSIBLE / "roles/node_state/library"), str(play),
         "-e", json.dumps({"ansible_python_interpreter": sys.executable})],
        cwd=ANSIBLE, env={**os.environ, "ANSIBLE_CONFIG": str(ANSIBLE / "ansible.cfg")},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    found: dict[str, Any] = json.loads(out.read_text())
    assert found["changed"] is False
    return found


@pytest.mark.parametrize(
    ("record", "active", "current"),
    [
        ('{"digest": "abc"}', {"k3s-agent"}, True),
        ('{"digest": "abc"}', set(), False),  # K3s stopped
        ('{"digest": "old"}', {"k3s"}, False),  # something changed since
        (None, {"k3s"}, False),  # never provisioned completely
        ("not json", {"k3s"}, False),
        ('["abc"]', {"k3s"}, False),
    ],
)
def test_the_node_is_current_only_with_its_record_and_k3s_running(
    tmp_path: Path, record: str | None, active: set[str], current: bool
) -> None:
    found = _record_check(tmp_path, record, active)
    assert found["current"] is current
    assert found["expected"] == "abc"  # what a complete run records
    if current:
        assert found["active"] == ["k3s-agent"] and found["recorded"] == "abc"


def test_a_full_run_reads_nothing_and_is_never_current(tmp_path: Path) -> None:
    found = _record_check(tmp_path, '{"digest": "abc"}', {"k3s"}, read=False)
    assert found["current"] is False and found["recorded"] is None
    assert found["expected"] == "abc"


def test_an_unreadable_file_is_named(tree: Path) -> None:
    """A file that cannot be read fails the lookup with its name. /proc/self/mem is a
    regular file that nobody, root included, can read from its start."""
    from ansible.errors import AnsibleLookupError

    with pytest.raises(AnsibleLookupError, match="cannot read /proc/self/mem"):
        digest(tree, NODE, ["/proc/self/mem"])


def _ready(name: str, status: str) -> dict[str, Any]:
    conditions = [{"type": "MemoryPressure", "status": "False"},
                  {"type": "Ready", "status": status, "reason": "x"}]  # fmt: skip
    return {"metadata": {"name": name}, "status": {"conditions": conditions}}


LISTED = {"kind": "NodeList", "items": [
    _ready("ready", "True"), _ready("not-ready", "False"), _ready("unknown", "Unknown"),
    {"metadata": {"name": "no-status"}}, _ready("stale-record", "True"),
    {"metadata": {"name": 7}, "status": {"conditions": [{"type": "Ready", "status": "True"}]}},
    {"metadata": "odd"}, "not a node",
    _ready("no-conditions", "True") | {"status": "odd"}]}  # fmt: skip


NODES_PATH = "/api/v1/nodes"


def test_the_api_host_lists_the_ready_nodes_in_the_same_call(
    tmp_path: Path, fake_http: FakeHttp
) -> None:
    """The API is asked directly, even where root's environment names a proxy."""
    proxy = {"http_proxy": "http://192.0.2.1:3128", "HTTP_PROXY": "http://192.0.2.1:3128"}
    fake_http.routes[("GET", NODES_PATH)] = (200, LISTED)
    found = _record_check(tmp_path, '{"digest": "abc"}', {"k3s"},
                          api={"url": fake_http.url + NODES_PATH}, environment=proxy)  # fmt: skip
    assert found["ready_nodes"] == ["ready", "stale-record"]
    assert "api_error" not in found and found["current"] is True
    # Any other node is not asked.
    assert _record_check(tmp_path, '{"digest": "abc"}', {"k3s"})["ready_nodes"] == []


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (403, b'{"kind": "Status"}', "HTTP 403"),
        (200, b'{"items": "not a list"}', "not a list of Nodes"),
        (200, b"[]", "not a list of Nodes"),
        (200, b"<html>", "Expecting value"),
    ],
    ids=["api-refuses", "items-not-a-list", "not-a-map", "not-json"],
)
def test_no_node_is_ready_when_the_api_does_not_list_them(
    tmp_path: Path, fake_http: FakeHttp, status: int, body: bytes, error: str
) -> None:
    """A reply that is not a list of Nodes is an answer (no node is Ready, so every step
    runs), not a failure of the check, and it says what was wrong."""
    fake_http.routes[("GET", NODES_PATH)] = (status, body)
    found = _record_check(tmp_path, '{"digest": "abc"}', {"k3s"},
                          api={"url": fake_http.url + NODES_PATH})  # fmt: skip
    assert found["ready_nodes"] == [] and error in found["api_error"]
    assert found["current"] is True  # the node's own record is still read


def test_an_api_that_is_down_is_named_and_nothing_is_ready(tmp_path: Path) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    url = f"http://127.0.0.1:{port}{NODES_PATH}"
    found = _record_check(tmp_path, None, set(), read=False, api={"url": url, "timeout": 2})
    assert found["ready_nodes"] == [] and "refused" in found["api_error"]


# node name -> what the node's record check found
FOUND: dict[str, dict[str, Any]] = {
    "ready": {"current": True},
    "not-ready": {"current": True},
    "not-listed": {"current": True},
    "stale-record": {"current": False},
    "full-run": {"current": False, "recorded": None},  # read: false
    "failed-check": {"failed": True, "msg": "boom"},
}
READY = ["ready", "stale-record", "full-run", "failed-check", "unreached"]


def _play(
    folder: Path, plays: list[dict[str, Any]], *args: str
) -> subprocess.CompletedProcess[str]:
    """``plays`` run by Ansible with Kubani's configuration over ``folder``/hosts.yml."""
    (folder / "play.yml").write_text(yaml.safe_dump(plays))
    # The playbooks' own filters, found beside the playbook as in ansible/playbooks.
    if not (folder / "filter_plugins").exists():
        (folder / "filter_plugins").symlink_to(ANSIBLE / "playbooks" / "filter_plugins")
    result = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(folder / "hosts.yml"),
         str(folder / "play.yml"), *args],
        cwd=ANSIBLE, env={**os.environ, "ANSIBLE_CONFIG": str(ANSIBLE / "ansible.cfg")},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return result


def _decide(
    tmp_path: Path,
    found: dict[str, dict[str, Any]],
    ready: list[str] | None,
    api_host: str,
    unreached: bool = True,
    asked_apart: dict[str, Any] | None = None,
) -> Any:
    """The role's own decision task, run by Ansible once over hosts whose record check found
    ``found`` (a host left out was not reached); the check on ``api_host`` listed ``ready``
    (``asked_apart``: what the call for a run without the API's host found)."""
    tasks = yaml.safe_load((ANSIBLE / "roles/node_state/tasks/detect.yml").read_text())
    [decide] = [task for task in tasks if task["name"].startswith("Decide")]
    hosts = {name: {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
             for name in [*found, *(["unreached"] if unreached else [])]}  # fmt: skip
    for name, result in found.items():
        hosts[name]["node_state_found"] = dict(result)
    if ready is not None:
        hosts[api_host]["node_state_found"]["ready_nodes"] = ready
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump({"all": {"hosts": hosts}}))
    out = tmp_path / "decided.json"
    play_vars: dict[str, Any] = {"node_state_api_host": api_host}
    if asked_apart is not None:
        play_vars["node_state_api_found"] = asked_apart
    play = [{"name": "Decide", "hosts": "all", "gather_facts": False, "vars": play_vars,
             "tasks": [
        decide,
        {"name": "Keep the decision", "run_once": True, "ansible.builtin.copy": {
            "content": "{{ {'hosts': node_state_current_hosts, "
                       "'all': node_state_all_current} | to_json }}",
            "dest": str(out), "mode": "0600"}},
    ]}]  # fmt: skip
    _play(tmp_path, play)
    return json.loads(out.read_text())


def test_a_node_is_current_only_while_the_api_reports_it_ready(tmp_path: Path) -> None:
    """A record that is current does not make a node current unless the API lists it Ready;
    a node that was not reached is never current, so the run is not a no-op."""
    decided = _decide(tmp_path, FOUND, READY, "ready")
    assert sorted(decided["hosts"]) == ["ready"]
    assert decided["all"] is False


@pytest.mark.parametrize(
    "api_host", ["failed-check", "unreached", "ready"], ids=["failed", "unreached", "no-list"]
)
def test_no_node_is_current_when_the_api_host_gave_no_list(tmp_path: Path, api_host: str) -> None:
    decided = _decide(tmp_path, {**FOUND, "ready": {"current": True}}, None, api_host)
    assert decided == {"hosts": [], "all": False}


def test_a_run_without_the_api_host_uses_its_own_call(tmp_path: Path) -> None:
    both = {"a": {"current": True}, "b": {"current": True}}
    apart = {"ready_nodes": ["a", "b"]}
    decided = _decide(tmp_path, both, None, "cp-1", unreached=False, asked_apart=apart)
    assert sorted(decided["hosts"]) == ["a", "b"] and decided["all"] is True
    skipped = {"skipped": True, "changed": False}
    assert _decide(tmp_path, both, None, "cp-1", False, skipped) == {"hosts": [], "all": False}


def test_every_node_current_and_ready_is_a_run_with_nothing_to_do(tmp_path: Path) -> None:
    ready = ["a", "b", "unreached"]
    both = {"a": {"current": True}, "b": {"current": True}}
    decided = _decide(tmp_path, both, ready, "a")
    # "unreached" (no record read) keeps the run from being a no-op even though it is Ready.
    assert sorted(decided["hosts"]) == ["a", "b"] and decided["all"] is False
    everyone = _decide(tmp_path, both, ready, "a", unreached=False)
    assert sorted(everyone["hosts"]) == ["a", "b"] and everyone["all"] is True


def _plays(name: str) -> list[dict[str, Any]]:
    plays = yaml.safe_load((ANSIBLE / "playbooks" / name).read_text())
    assert isinstance(plays, list)
    return plays


def test_every_play_after_the_detect_step_skips_when_all_nodes_are_current() -> None:
    """The node phases and the record match no hosts once the detect step has put every node
    in its group: no play after it sets itself up (no strategy, no connections)."""
    [detect, *later] = [play for play in _plays("provision_cluster.yml") if "hosts" in play]
    assert "kubani_unless_current" not in detect["hosts"]
    assert later and all("| kubani_unless_current(groups)" in play["hosts"] for play in later)
    assert not any(
        "node_state_all_current" in json.dumps(play.get("pre_tasks", [])) for play in later
    )


def test_the_group_the_detect_step_fills_is_the_one_the_plays_look_for() -> None:
    defaults = yaml.safe_load((ANSIBLE / "roles/node_state/defaults/main.yml").read_text())
    sys.path.insert(0, str(ANSIBLE / "playbooks/filter_plugins"))
    try:
        import kubani_plays
    finally:
        sys.path.remove(str(ANSIBLE / "playbooks/filter_plugins"))
    assert defaults["node_state_current_group"] == kubani_plays.NODE_STATE_CURRENT_GROUP
    assert kubani_plays.kubani_unless_current("workers", {"workers": ["w-1"]}) == "workers"
    assert kubani_plays.kubani_unless_current("workers", {"node_state_current": ["w-1"]}) == []
    groups = {"control_plane": ["cp-1", "cp-2"]}
    assert kubani_plays.kubani_gitops_hosts(groups, {"cp-1": {"git_repo_url": "ssh://g/r"}}) == [
        "cp-1"
    ]
    for hostvars in (
        {"cp-1": {"git_repo_url": ""}},
        {"cp-1": {}},
        {},
        {"cp-2": {"git_repo_url": "x"}},
    ):
        assert kubani_plays.kubani_gitops_hosts(groups, hostvars) == []
    assert kubani_plays.kubani_gitops_hosts({}, {}) == []
    # A run's first play has no hostvars: the play starts and its own condition decides.
    assert kubani_plays.kubani_gitops_hosts(groups, None) == ["cp-1"]
    assert kubani_plays.kubani_gitops_hosts({"control_plane": "cp-1"}, {}) == []


def _run_phases(tmp_path: Path, found: dict[str, dict[str, Any]], ready: list[str]) -> str:
    """The role's decision and group tasks over ``found`` (the first control plane's check
    listed ``ready``), then the first node phase's own
    host pattern and a play with the GitOps play's; Ansible's output."""
    tasks = yaml.safe_load((ANSIBLE / "roles/node_state/tasks/detect.yml").read_text())
    decide = [task for task in tasks if task["name"].startswith(("Decide", "Put every node"))]
    assert len(decide) == 2
    defaults = yaml.safe_load((ANSIBLE / "roles/node_state/defaults/main.yml").read_text())
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    inventory = {"all": {"children": {
        "control_plane": {"hosts": {"cp-1": {**local, "git_repo_url": "ssh://git@g/r.git"}}},
        "workers": {"hosts": {"w-1": local}}}}}  # fmt: skip
    for name, result in found.items():
        group = "control_plane" if name == "cp-1" else "workers"
        inventory["all"]["children"][group]["hosts"][name]["node_state_found"] = dict(result)
    inventory["all"]["children"]["control_plane"]["hosts"]["cp-1"]["node_state_found"][
        "ready_nodes"
    ] = ready
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump(inventory))
    phase = _plays("provision_cluster.yml")[1]
    [gitops] = _plays("gitops.yml")
    plays = [
        {"name": "Decide", "hosts": "control_plane:workers", "gather_facts": False,
         "vars": {"node_state_api_host": defaults["node_state_api_host"],
                  "node_state_current_group": defaults["node_state_current_group"]},
         "tasks": decide},
        {"name": "Phase", "hosts": phase["hosts"], "gather_facts": False,
         "tasks": [{"name": "Phase ran", "ansible.builtin.debug": {"msg": "phase-ran"}}]},
        {"name": "GitOps", "hosts": gitops["hosts"], "gather_facts": False,
         "tasks": [{"name": "GitOps ran", "ansible.builtin.debug": {"msg": "gitops-ran"}}]},
    ]  # fmt: skip
    ran = _play(tmp_path, plays)
    assert "WARNING" not in ran.stdout + ran.stderr
    return ran.stdout


def test_a_run_with_nothing_to_do_skips_the_phases_but_not_gitops(tmp_path: Path) -> None:
    current = {"cp-1": {"current": True}, "w-1": {"current": True}}
    output = _run_phases(tmp_path, current, ["cp-1", "w-1"])
    assert "phase-ran" not in output and "skipping: no hosts matched" in output
    assert "changed=0" in output and "changed=1" not in output
    assert output.count("gitops-ran") == 1  # the first control plane, which has a repository
    stale = _run_phases(tmp_path, {**current, "w-1": {"current": False}}, ["cp-1", "w-1"])
    assert stale.count("phase-ran") == 2 and "skipping: no hosts matched" not in stale


def test_gitops_run_alone_starts_and_its_own_check_decides(tmp_path: Path) -> None:
    """gitops.yml on its own: its play is the run's first, when Ansible has no hostvars to
    read the repository from, so the play starts and the include's condition decides (a
    repository given with -e is found)."""
    [gitops] = _plays("gitops.yml")
    [include] = gitops["tasks"]
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    (tmp_path / "hosts.yml").write_text(
        yaml.safe_dump({"all": {"children": {"control_plane": {"hosts": {"cp-1": local}}}}})
    )
    plays = [{"name": "GitOps", "hosts": gitops["hosts"], "gather_facts": False, "tasks": [
        {"name": "GitOps ran", "ansible.builtin.debug": {"msg": "gitops-ran"},
         "when": include["when"]}]}]  # fmt: skip
    given = _play(tmp_path, plays, "-e", "git_repo_url=ssh://git@g/r.git")
    assert given.stdout.count("gitops-ran") == 1
    assert "gitops-ran" not in _play(tmp_path, plays).stdout


def test_the_module_is_given_only_the_api_options_it_knows(tmp_path: Path) -> None:
    """The API client is ansible.builtin.uri's (a user may add validate_certs, headers...);
    the record check takes its certificate, key and CA, the nodes' URL and the timeout."""
    defaults = yaml.safe_load((ANSIBLE / "roles/node_state/defaults/main.yml").read_text())
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump({"all": {"hosts": {"cp-1": local}}}))
    out = tmp_path / "api.json"
    client = {"client_cert": "/c.crt", "client_key": "/c.key", "ca_path": "/ca.crt",
              "validate_certs": False, "headers": {"X": "1"}}  # fmt: skip
    play_vars = {"node_state_api": defaults["node_state_api"], "node_state_api_client": client,
                 "node_state_api_url": "https://127.0.0.1:6443",
                 "node_state_api_timeout": 7}  # fmt: skip
    _play(tmp_path, [{"name": "Options", "hosts": "all", "gather_facts": False, "vars": play_vars,
                      "tasks": [{"name": "Keep them", "ansible.builtin.copy": {
                          "content": "{{ node_state_api | to_json }}", "dest": str(out),
                          "mode": "0600"}}]}])  # fmt: skip
    assert json.loads(out.read_text()) == {
        "client_cert": "/c.crt", "client_key": "/c.key", "ca_path": "/ca.crt",
        "url": "https://127.0.0.1:6443/api/v1/nodes", "timeout": 7}  # fmt: skip
