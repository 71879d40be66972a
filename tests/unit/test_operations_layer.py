"""The operations layer on its own, without the CLI: init's choice and sizing, the
kubeconfig fetch and merge, and doctor's checklist. Ansible is replaced by recorded module
results (``run_module``); everything else is the real code."""

from __future__ import annotations

import base64
import stat
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubani.ansible import adhoc
from kubani.ansible.adhoc import ModuleRun
from kubani.errors import KubaniError
from kubani.inventory.document import InventoryDocument
from kubani.kube import kubeconfig as kc
from kubani.models.peer import TailscalePeer
from kubani.operations import doctor, init, kubeconfig
from kubani.tailscale.policy import NeededPath, PathVerdict
from kubani.vocabulary import Role, Verdict
from tests.unit.test_operations import K3S_KUBECONFIG


def _peer(name: str, ip: str, is_self: bool = False) -> TailscalePeer:
    return TailscalePeer(
        hostname=name, dns_name=f"{name}.ts.net", tailscale_ips=(ip,), ipv4=ip, os="linux",
        online=True, last_seen=None, is_self=is_self,
    )  # fmt: skip


PEERS = [_peer("Desk", "100.64.0.1"), _peer("nuc", "100.64.0.2"), _peer("me", "100.64.0.9", True)]


class RecordedModules:
    """``run_module`` answering with recorded results, and the calls it was given."""

    def __init__(
        self, results: dict[str, dict[str, Any]], failed: dict[str, str] | None = None
    ) -> None:
        self.results, self.failed = results, failed or {}
        self.calls: list[tuple[str, str, str]] = []

    def __call__(
        self, inventory: Path, pattern: str, module: str, args: str, become: bool = False
    ) -> ModuleRun:
        self.calls.append((pattern, module, args))
        status = "failed" if self.failed else "successful"
        return ModuleRun(status, self.results, self.failed)


# ---- init --------------------------------------------------------------------------------


def test_choose_gives_roles_flags_and_refuses_unknown_names() -> None:
    chosen = init.choose(
        PEERS, init.Selection(["DESK"], ["nuc"], gpus=["nuc"], workstations=["desk"])
    )
    assert [(c.peer.hostname, c.role, c.gpu, c.workstation) for c in chosen] == [
        ("Desk", Role.CONTROL_PLANE, False, True),
        ("nuc", Role.WORKER, True, False),
    ]
    with pytest.raises(KubaniError, match="not on the tailnet: ghost"):
        init.choose(PEERS, init.Selection(["desk"], ["ghost"]))
    with pytest.raises(KubaniError, match="me is this machine, the management machine"):
        init.choose(PEERS, init.Selection(["me"]))
    with pytest.raises(KubaniError, match="no control plane chosen"):
        init.choose(PEERS, init.Selection([], ["nuc"]))


@pytest.mark.parametrize(
    ("selection", "said"),
    [
        (init.Selection(["desk"], ["desk"]), "named twice (as control plane or worker): desk"),
        (init.Selection(["desk"], ["DESK"]), "named twice"),
        (init.Selection(["desk"], gpus=["nuc"]), "not among the chosen nodes: --gpu nuc"),
        (init.Selection(["desk"], workstations=["ghost"]), "not on the tailnet: ghost"),
        (init.Selection(["twin"]), "twin names 2 devices (100.64.0.3, 100.64.0.4)"),
    ],
)
def test_choose_refuses_what_would_be_read_two_ways(selection: init.Selection, said: str) -> None:
    """A name twice, a flag for a machine that is not a node (it was dropped silently), a
    name two devices answer to (one was taken at random)."""
    peers = [*PEERS, _peer("twin", "100.64.0.3"), _peer("twin", "100.64.0.4")]
    with pytest.raises(KubaniError) as caught:
        init.choose(peers, selection)
    assert said in str(caught.value)


def test_a_node_that_shares_this_machine_s_name_is_still_the_node() -> None:
    peers = [*PEERS, _peer("me", "100.64.0.7")]
    [chosen] = init.choose(peers, init.Selection(["me"]))
    assert chosen.peer.ipv4 == "100.64.0.7"


def test_create_inventory_sizes_what_answers_and_warns_for_the_rest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    facts = {"ansible_facts": {"ansible_processor_vcpus": 16, "ansible_memtotal_mb": 32768}}
    recorded = RecordedModules({"desk": facts}, {"nuc": "UNREACHABLE: no route to host"})
    monkeypatch.setattr(adhoc, "run_module", recorded)
    chosen = init.choose(PEERS, init.Selection(["desk"], ["nuc"], workstations=["desk"]))
    created = init.create_inventory(tmp_path / "inv", "home", chosen, ssh_user="admin")
    assert (created.control_planes, created.workers, created.sized) == (["desk"], ["nuc"], ["desk"])
    assert created.warnings == [
        "nuc: default reservations kept; its size is unknown: UNREACHABLE: no route to host"
    ]
    assert recorded.calls == [("all", "ansible.builtin.setup", "gather_subset=min,hardware")]
    hosts = yaml.safe_load(created.hosts.read_text())["all"]["children"]
    desk = hosts["control_plane"]["hosts"]["desk"]
    assert (desk["reserved_cpu"], desk["reserved_memory"]) == ("4", "8192Mi")  # a quarter each
    assert "reserved_cpu" not in hosts["workers"]["hosts"]["nuc"]
    _inventory, problems = InventoryDocument(created.hosts).validate()
    assert not problems.errors


def test_create_inventory_without_probing_never_calls_ansible(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*_args: Any, **_kwargs: Any) -> ModuleRun:
        raise AssertionError("--no-probe must not reach the nodes")

    monkeypatch.setattr(adhoc, "run_module", refuse)
    chosen = init.choose(PEERS, init.Selection(["desk"]))
    created = init.create_inventory(tmp_path / "inv", "home", chosen, probe=False)
    assert (created.nodes, created.sized, created.warnings) == (["desk"], [], [])


# ---- kubeconfig --------------------------------------------------------------------------


def _inventory(tmp_path: Path, body: str) -> InventoryDocument:
    hosts = tmp_path / "inventory" / "hosts.yml"
    hosts.parent.mkdir(parents=True)
    hosts.write_text(body)
    return InventoryDocument(hosts)


CLUSTER = """all:
  vars: {cluster_name: home}
  children:
    control_plane:
      hosts:
        cp-1: {tailscale_ip: 100.64.0.1}
    workers:
      hosts:
        w-1: {tailscale_ip: 100.64.0.2}
"""


def test_fetch_writes_0600_points_at_the_tailnet_and_merges_beside_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    content = base64.b64encode(K3S_KUBECONFIG.encode()).decode()
    recorded = RecordedModules({"cp-1": {"content": content}})
    monkeypatch.setattr(adhoc, "run_module", recorded)
    into = tmp_path / "config"
    into.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: work\n"
        "clusters: [{name: work, cluster: {server: 'https://w'}}]\n"
        "users: [{name: work, user: {token: t}}]\n"
        "contexts: [{name: work, context: {cluster: work, user: work}}]\n"
    )
    document = _inventory(tmp_path, CLUSTER)
    fetched = kubeconfig.fetch_kubeconfig(document, tmp_path / "out" / "kube.yaml", None, into)
    assert recorded.calls == [("cp-1", "ansible.builtin.slurp", f"src={kc.K3S_KUBECONFIG}")]
    assert (fetched.context, fetched.server) == ("home", "https://100.64.0.1:6443")
    assert stat.S_IMODE(fetched.written.stat().st_mode) == 0o600
    written = yaml.safe_load(fetched.written.read_text())
    assert written["clusters"][0]["cluster"]["server"] == "https://100.64.0.1:6443"
    merged = yaml.safe_load(into.read_text())
    assert [c["name"] for c in merged["contexts"]] == ["work", "home"]
    assert merged["current-context"] == "work"
    assert stat.S_IMODE(into.stat().st_mode) == 0o600


def test_fetch_refuses_without_a_control_plane_or_a_kubeconfig(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    workers_only = (
        "all:\n  children:\n    workers:\n      hosts:\n        w-1: {tailscale_ip: 100.64.0.2}\n"
    )
    with pytest.raises(KubaniError, match="no control plane"):
        kubeconfig.fetch_kubeconfig(_inventory(tmp_path / "a", workers_only), tmp_path / "k")
    monkeypatch.setattr(
        adhoc, "run_module", RecordedModules({}, {"cp-1": "k3s.yaml: No such file"})
    )
    with pytest.raises(KubaniError, match="cannot fetch the kubeconfig from cp-1") as info:
        kubeconfig.fetch_kubeconfig(_inventory(tmp_path / "b", CLUSTER), tmp_path / "k")
    assert "No such file" in str(info.value)
    assert not (tmp_path / "k").exists()


def test_the_merge_target_follows_kubeconfig(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECONFIG", "/a/one:/b/two")
    assert kc.default_merge_target() == Path("/a/one")
    monkeypatch.delenv("KUBECONFIG")
    assert kc.default_merge_target() == Path.home() / ".kube" / "config"


# ---- doctor ------------------------------------------------------------------------------


def test_doctor_lists_each_inventory_error_as_a_failure(tmp_path: Path) -> None:
    good = doctor.inventory_checks(_inventory(tmp_path / "a", CLUSTER))
    assert [c.result for c in good] == [Verdict.OK]
    bad = CLUSTER.replace("100.64.0.2", "10.0.0.2")  # not a tailnet address
    checks = doctor.inventory_checks(_inventory(tmp_path / "b", bad))
    assert checks and all(c.result == Verdict.FAIL and c.fix for c in checks)
    assert any("w-1" in c.detail for c in checks)


def test_doctor_turns_policy_verdicts_into_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    from kubani.operations import tailnet

    kubelet = NeededPath("kubelet", "tag:k3s", "tag:k3s", "tcp", 10250, 10250)
    api = NeededPath("api", "tag:k3s", "tag:k3s", "tcp", 6443, 6443)
    verdicts = [PathVerdict(api, True), PathVerdict(kubelet, False)]
    monkeypatch.setattr(tailnet, "live_policy_verdicts", lambda addresses: verdicts)
    checks = doctor.tailnet_policy_checks(["100.64.0.1"])
    assert [(c.name, c.result) for c in checks] == [("api", Verdict.OK), ("kubelet", Verdict.FAIL)]
    assert checks[1].fix and "tailnet policy" in checks[1].fix
    monkeypatch.setattr(tailnet, "live_policy_verdicts", lambda addresses: None)
    assert doctor.tailnet_policy_checks(["100.64.0.1"]) == []  # no credentials: no checks

    def unreadable(addresses: list[str]) -> Any:
        raise KubaniError("cannot read the policy", "HTTP 403", None)

    monkeypatch.setattr(tailnet, "live_policy_verdicts", unreadable)
    [warning] = doctor.tailnet_policy_checks(["100.64.0.1"])
    assert warning.result == Verdict.WARN and "HTTP 403" in warning.detail
