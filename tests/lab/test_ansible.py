"""The Ansible layer on a real lab: provisioning, idempotency, add_node, failure paths."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kubani.vocabulary import FULL_RUN_VARIABLE
from kubani_lab.lab import K3S_VERSION, Lab
from kubani_lab.network import guard_counters
from tests.conftest import run_cli
from tests.lab.ansible_run import (
    K3S_UPGRADE,
    NODES,
    nodes_by_name,
    provision,
    run_playbook,
    start_times,
)
from tests.lab.ansible_run import kubectl as _kubectl
from tests.lab.egress import EgressCapture
from tests.lab.lifecycle import lab_in_use

# A module's first test boots its lab and provisions it; on a two-core machine that shares
# its cores with a second lab this takes four to five minutes, more than the suite-wide
# 300 s hang guard allows for setup and call together.
pytestmark = [pytest.mark.lab, pytest.mark.timeout(600)]

CAPTURES: dict[str, EgressCapture] = {}


@pytest.fixture(scope="module")
def cluster(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Lab]:
    """A lab provisioned by site.yml once for this module, while a capture watches every
    interface that is not the lab's."""
    with lab_in_use(Lab("pytest-ansible"), request) as lab:
        CAPTURES["up"] = EgressCapture(tmp_path_factory.mktemp("egress"))
        try:
            provision(lab)
            yield lab
        finally:
            for capture in CAPTURES.values():
                capture.stop()


def test_site_builds_the_cluster_on_tailnet_addresses(cluster: Lab) -> None:
    state = cluster.require_state()
    for name in NODES:
        node = state.node(name)
        config = cluster.ssh_run(name, "cat /etc/rancher/k3s/config.yaml").stdout
        assert f"node-ip: {node.address}" in config
        assert "flannel-iface: tailscale0" in config
        modes = cluster.ssh_run(
            name,
            "stat -c '%a %n' /etc/rancher/k3s/config.yaml /etc/rancher/k3s/config.yaml.d/*.yaml",
        ).stdout.split("\n")
        assert all(line.startswith("600 ") for line in modes if line)
    secrets = cluster.ssh_run(
        "cp-1", "stat -c '%a %n' /var/lib/rancher/k3s/server/token /etc/rancher/k3s/k3s.yaml"
    ).stdout.split("\n")
    assert all(line.startswith("600 ") for line in secrets if line)
    assert oct((cluster.folder / "kubeconfig").stat().st_mode & 0o777) == "0o600"
    nodes = nodes_by_name(cluster)
    assert set(nodes) == set(NODES)
    for name, node in nodes.items():
        status = node["status"]
        assert isinstance(status, dict)
        ready = next(c for c in status["conditions"] if c["type"] == "Ready")
        assert ready["status"] == "True"
        internal = next(a["address"] for a in status["addresses"] if a["type"] == "InternalIP")
        assert internal == state.node(name).address
    labels = nodes["w-1"]["metadata"]["labels"]
    assert labels["kubani.io/tier"] == "edge" and labels["kubani.io/gpu"] == "false"
    assert {"key": "kubani.io/desk", "value": "true", "effect": "PreferNoSchedule"} in (
        nodes["w-1"]["spec"]["taints"]
    )
    allocatable = nodes["w-2"]["status"]["allocatable"]["cpu"]
    capacity = nodes["w-2"]["status"]["capacity"]["cpu"]
    assert allocatable == f"{int(capacity) * 1000 - 1250}m"  # reserved_cpu 1 + kube-reserved 250m


def _no_changes(run: Any) -> None:
    assert run.code == 0, run.failures()
    recap = run.recap()
    assert set(recap) >= set(NODES)
    assert {host: values["changed"] for host, values in recap.items()} == dict.fromkeys(recap, 0)


def test_second_run_changes_nothing_and_restarts_nothing(cluster: Lab) -> None:
    """Every step checked again (the full run) reports ok; then a plain re-run finds each
    node's record current and applies nothing at all."""
    before = start_times(cluster)
    full = run_playbook(cluster, "site.yml", "-v", "-e", f"{FULL_RUN_VARIABLE}=true")
    (cluster.folder / "site-2.log").write_text(full.output)
    _no_changes(full)
    assert "TASK [prerequisites : " in full.output and "TASK [k3s_worker : " in full.output
    again = run_playbook(cluster, "site.yml")
    _no_changes(again)
    assert "TASK [node_state : Reach the node and read its record" in again.output
    assert "TASK [prerequisites : " not in again.output
    assert "TASK [k3s_common : " not in again.output
    assert start_times(cluster) == before


def test_a_changed_inventory_or_a_stopped_node_runs_every_step(cluster: Lab) -> None:
    """The record is only trusted while it holds what this run would apply and K3s runs: an
    edited variable, or an agent stopped by hand, and every phase runs again. (The note
    stays in the inventory: a variable no role reads.)"""
    assert run_cli("-i", str(cluster.inventory), "config-set", "kubani_test_note", "1").code == 0
    edited = run_playbook(cluster, "site.yml")
    assert edited.code == 0, edited.failures()
    assert "TASK [prerequisites : " in edited.output and "TASK [node_config : " in edited.output
    recorded = run_playbook(cluster, "site.yml")
    _no_changes(recorded)
    assert "TASK [k3s_common : " not in recorded.output

    cluster.ssh_run("w-2", "systemctl stop k3s-agent")
    repaired = run_playbook(cluster, "site.yml")
    assert repaired.code == 0, repaired.failures()
    assert "TASK [k3s_worker : " in repaired.output
    active = cluster.ssh_run("w-2", "systemctl is-active k3s-agent", check=False)
    assert active.stdout.strip() == "active"


def test_a_node_that_is_not_ready_runs_every_step(cluster: Lab) -> None:
    """A record that is current and a K3s service that runs are not enough: w-2's kubelet
    is paused and the API reports w-2 not Ready, so the run does every step; the kubelet
    resumes once the run is past its check, and the run waits for w-2 to be Ready again."""
    _no_changes(run_playbook(cluster, "site.yml"))
    cluster.ssh_run("w-2", "pkill -STOP -x kwok")
    resumed = False

    def resume() -> None:
        nonlocal resumed
        cluster.ssh_run("w-2", "pkill -CONT -x kwok")
        resumed = True

    try:
        not_ready = {"type": "Ready", "status": "False", "reason": "KubaniTestPaused"}
        patched = _kubectl(cluster, "patch", "node", "w-2", "--subresource=status",
                           "-p", json.dumps({"status": {"conditions": [not_ready]}}))  # fmt: skip
        assert patched.returncode == 0, patched.stderr
        repaired = run_playbook(cluster, "site.yml", on_line=("TASK [prerequisites : ", resume))
    finally:
        if not resumed:
            resume()
    assert repaired.code == 0, repaired.failures()
    assert "TASK [k3s_common : Wait until the node is Ready]" in repaired.output
    assert "KubaniTestPaused" not in _kubectl(cluster, "get", "node", "w-2", "-o", "json").stdout
    again = run_playbook(cluster, "site.yml")
    _no_changes(again)
    assert "TASK [k3s_worker : " not in again.output


def test_nothing_left_the_lab_during_up_and_provisioning(cluster: Lab) -> None:
    """Lab up, site.yml twice: no packet of the lab on any other interface of this machine,
    and tailscaled (known by the fwmark on its own sockets) used lab bridges only."""
    capture = CAPTURES.pop("up")
    assert capture.files, "no interface outside the lab to watch"
    seen = capture.stop()
    assert seen == {interface: [] for interface in capture.files}, seen
    counters = guard_counters(cluster.names)
    assert counters["tailscaled on a lab bridge"] > 0  # the mark does identify tailscaled
    assert counters["tailscaled leaving the lab"] == 0


def test_the_token_is_never_shown(cluster: Lab) -> None:
    token = cluster.ssh_run("cp-1", "cat /var/lib/rancher/k3s/server/token").stdout.strip()
    secret = token.rsplit(":", 1)[-1]
    assert len(secret) >= 32
    for log in cluster.folder.glob("site-*.log"):
        text = log.read_text()
        assert secret not in text and token not in text, log.name


ROOT = Path(__file__).resolve().parents[2]
AGE_KEY = ROOT / "tests" / "fixtures" / "example.agekey"


def _git_server(lab: Lab) -> tuple[str, str]:
    """The project's gitops/ tree pushed over SSH to a bare repository on cp-1."""
    return lab.serve_git(ROOT / "gitops", "cp-1")


def _gitops_vars(lab: Lab, url: str, **extra: str) -> list[str]:
    values = {
        "git_repo_url": url,
        "gitops_deploy_key_file": str(lab.key),
        "gitops_sops_age_key_file": str(AGE_KEY),
        "gitops_wait_timeout": "60",
        **extra,
    }
    return ["-e", json.dumps(values)]


def test_gitops_hands_the_cluster_to_flux(cluster: Lab) -> None:
    url, commit = _git_server(cluster)
    first = run_playbook(cluster, "gitops.yml", "-v", *_gitops_vars(cluster, url))
    (cluster.folder / "gitops-1.log").write_text(first.output)
    assert first.code == 0, first.failures()

    def get(kind: str) -> dict[str, Any]:
        result = _kubectl(cluster, "-n", "flux-system", "get", kind, "flux-system", "-o", "json")
        assert result.returncode == 0, result.stderr
        return dict(json.loads(result.stdout))

    repo, sync = (
        get("gitrepositories.source.toolkit.fluxcd.io"),
        get("kustomizations.kustomize.toolkit.fluxcd.io"),
    )
    assert repo["spec"]["url"] == url and repo["spec"]["ref"] == {"branch": "main"}
    assert repo["spec"]["interval"] == "1m" and repo["spec"]["secretRef"] == {"name": "flux-system"}
    assert repo["status"]["artifact"]["revision"] == f"main@sha1:{commit}"
    # The role and the tree agree: Flux applies the tree's flux-system/ folder.
    assert sync["spec"]["path"] == "./gitops/flux-system"
    assert (ROOT / sync["spec"]["path"] / "kustomization.yaml").is_file()
    assert sync["spec"]["prune"] is True and sync["spec"]["interval"] == "1m"
    assert sync["spec"]["decryption"] == {"provider": "sops", "secretRef": {"name": "sops-age"}}
    for obj in (repo, sync):
        ready = next(c for c in obj["status"]["conditions"] if c["type"] == "Ready")
        assert ready["status"] == "True", ready
    assert sync["status"]["lastAppliedRevision"] == f"main@sha1:{commit}"
    secrets = json.loads(
        _kubectl(cluster, "-n", "flux-system", "get", "secrets", "-o", "json").stdout
    )
    data = {s["metadata"]["name"]: set(s["data"]) for s in secrets["items"]}
    assert data["flux-system"] == {"identity", "known_hosts"}
    assert data["sops-age"] == {"age.agekey"}
    config = json.loads(
        _kubectl(
            cluster, "-n", "flux-system", "get", "configmap", "kubani-cluster-vars", "-o", "json"
        ).stdout
    )
    assert config["data"]["cluster_name"] == "lab-pytest-ansible"

    # Secrets never reach the output; a second run changes nothing.
    private_key = cluster.key.read_text().strip().splitlines()[1]
    age_secret = AGE_KEY.read_text().strip().splitlines()[-1]
    second = run_playbook(cluster, "gitops.yml", "-v", *_gitops_vars(cluster, url))
    assert second.code == 0, second.failures()
    assert second.recap()["cp-1"]["changed"] == 0, second.output[-3000:]
    for text in (first.output, second.output):
        assert private_key not in text and age_secret not in text


def _wait(check: Any, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"not within {seconds:.0f} s: {what}"
        time.sleep(2)


def _request_reconcile(cluster: Lab, kind: str, name: str) -> None:
    stamp = f"reconcile.fluxcd.io/requestedAt={time.time()}"
    done = _kubectl(cluster, "-n", "flux-system", "annotate", "--overwrite", kind, name, stamp)
    assert done.returncode == 0, done.stderr


def test_flux_applies_decrypts_and_prunes_the_tree(cluster: Lab, tmp_path: Path) -> None:
    """The real kustomize-controller applies gitops/apps (their pods run under KWOK), the
    SOPS-encrypted Secret arrives decrypted, and an app removed from the tree is pruned."""

    def get(*args: str) -> dict[str, Any] | None:
        done = _kubectl(cluster, "get", "-o", "json", *args)
        return dict(json.loads(done.stdout)) if done.returncode == 0 else None

    def running(namespace: str) -> bool:
        pods = (get("-n", namespace, "pods") or {}).get("items") or []
        return bool(pods) and all(p["status"].get("phase") == "Running" for p in pods)

    _request_reconcile(cluster, "kustomizations.kustomize.toolkit.fluxcd.io", "apps")
    _wait(lambda: running("hello-world") and running("batch"), 240, "the apps' pods Running")
    deployment = get("-n", "hello-world", "deployment", "hello-world", "--show-managed-fields")
    assert deployment is not None
    managers = {m["manager"] for m in deployment["metadata"].get("managedFields") or []}
    assert "kustomize-controller" in managers, managers

    secret = get("-n", "nginx", "secret", "nginx-basic-auth")
    assert secret is not None
    stored = base64.b64decode(secret["data"]["auth"]).decode()
    plain = subprocess.run(
        [str(Path(sys.executable).parent / "sops"), "-d", "--extract", '["stringData"]["auth"]',
         str(ROOT / "gitops/apps/base/nginx/secret.yaml")],
        capture_output=True, text=True, check=True, timeout=60,
        env={**os.environ, "SOPS_AGE_KEY_FILE": str(AGE_KEY)},
    ).stdout  # fmt: skip
    assert stored == plain and not stored.startswith("ENC[")

    tree = tmp_path / "gitops"
    shutil.copytree(ROOT / "gitops", tree)
    overlay = tree / "apps/overlays/default/kustomization.yaml"
    overlay.write_text(overlay.read_text().replace("  - ../../base/workstation-friendly\n", ""))
    _, commit = cluster.serve_git(tree, "cp-1")
    _request_reconcile(cluster, "gitrepositories.source.toolkit.fluxcd.io", "flux-system")

    def pruned() -> bool:
        apps = get("-n", "flux-system", "kustomizations.kustomize.toolkit.fluxcd.io", "apps")
        applied = ((apps or {}).get("status") or {}).get("lastAppliedRevision") or ""
        return applied.endswith(commit) and get("namespace", "batch") is None

    _wait(pruned, 240, "the removed app pruned at the new commit")
    assert running("hello-world")


# Flux's controllers as they run on a node: "PID PATH ARGS..." lines (pgrep -x matches the
# process name, cut to 15 characters; the shims, shell scripts, are not listed).
FLUX_PROCESSES = "pgrep -a -x 'source-controll|kustomize-contr' || true"


def _flux_processes(cluster: Lab, node: str) -> list[str]:
    return sorted(line for line in cluster.ssh_run(node, FLUX_PROCESSES).stdout.split("\n") if line)


def test_flux_controllers_outlive_a_restart_of_k3s(cluster: Lab) -> None:
    """As containers under containerd's shims do (K3s's unit: KillMode=process): the same
    processes run on after k3s restarts, and Flux still serves a request afterwards."""
    running = {node: _flux_processes(cluster, node) for node in NODES}
    assert sum(len(lines) for lines in running.values()) == 2, running
    node = next(node for node, lines in running.items() if lines)
    unit = "k3s" if node.startswith("cp-") else "k3s-agent"
    cluster.ssh_run(node, f"systemctl restart {unit}", timeout=120)
    time.sleep(8)  # the restarted agent's first passes over its pods
    assert _flux_processes(cluster, node) == running[node]

    stamp = str(time.time())
    kind = "gitrepositories.source.toolkit.fluxcd.io"

    def handled() -> bool:
        _kubectl(cluster, "-n", "flux-system", "annotate", "--overwrite", kind, "flux-system",
                 f"reconcile.fluxcd.io/requestedAt={stamp}")  # fmt: skip
        done = _kubectl(cluster, "-n", "flux-system", "get", kind, "flux-system",
                        "-o", "jsonpath={.status.lastHandledReconcileAt}")  # fmt: skip
        return done.returncode == 0 and done.stdout == stamp

    _wait(handled, 120, "a reconcile requested after the restart handled")
    assert _flux_processes(cluster, node) == running[node]


def test_gitops_failure_names_the_object_and_the_reason(cluster: Lab) -> None:
    url, _ = _git_server(cluster)
    run = run_playbook(
        cluster, "gitops.yml", *_gitops_vars(cluster, url, git_path="gitops/no-such-folder")
    )
    try:
        assert run.code != 0
        _failed_step(
            run.output,
            "cp-1",
            "Check Ready Kustomization",
            "Kustomization flux-system/flux-system is not Ready: ArtifactFailed: "
            "kustomization path not found",
        )
    finally:
        restored = run_playbook(cluster, "gitops.yml", *_gitops_vars(cluster, url))
        assert restored.code == 0, restored.failures()


def test_provision_warns_about_flux_objects_that_are_not_ready(cluster: Lab) -> None:
    """The run waits for flux-system only; what the repository then holds is reported. The
    lab has no route out, so the tree's Helm repositories cannot be fetched."""
    url, _ = _git_server(cluster)
    values = _gitops_vars(cluster, url)[1]
    result = run_cli(
        "-i", cluster.inventory, "provision", "--playbook", "gitops", "--json", "-e", values,
        timeout=600,
    )  # fmt: skip
    assert result.code == 0, result.stderr[-3000:]
    events = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    flux = next(e for e in events if e.get("kind") == "flux")
    pending = {(o["kind"], o["namespace"], o["name"]) for o in flux["not_ready"]}
    assert ("HelmRepository", "flux-system", "nvdp") in pending
    assert ("Kustomization", "flux-system", "flux-system") not in pending
    assert "Flux reports" in result.stderr and "HelmRepository flux-system/nvdp" in result.stderr
    assert "fix: `cluster-mgr status`" in result.stderr


def _failed_step(run_output: str, host: str, step: str, message: str) -> None:
    assert f"TASK [prerequisites : {step}]" in run_output or f": {step}]" in run_output, step
    assert f"fatal: [{host}]" in run_output
    assert message in run_output


def test_failure_logged_out_tailscale(cluster: Lab) -> None:
    """A node logged out of the real tailnet: unreachable at its tailnet address; reached
    over its LAN address instead, the role itself says it is logged out."""
    inventory = str(cluster.inventory)
    w2 = cluster.require_state().node("w-2")
    cluster.set_tailscale("w-2", backend_state="NeedsLogin")
    try:
        over_tailnet = run_playbook(cluster, "preflight.yml")
        assert (
            run_cli(
                "-i", inventory, "config-set", "ansible_host", w2.underlay, "--scope", "w-2"
            ).code
            == 0
        )
        try:
            result = run_playbook(cluster, "preflight.yml")
        finally:
            restored = run_cli(
                "-i", inventory, "config-set", "ansible_host", w2.address, "--scope", "w-2"
            )
            assert restored.code == 0, restored.stderr
    finally:
        cluster.set_tailscale("w-2", backend_state="Running")
    assert over_tailnet.code != 0
    assert over_tailnet.recap()["w-2"]["unreachable"] == 1
    assert f"connect to host {w2.address} port 22: No route to host" in over_tailnet.output
    assert result.code != 0
    assert result.recap()["w-2"]["failed"] == 1
    _failed_step(
        result.output,
        "w-2",
        "Check that tailscale is logged in",
        "w-2: tailscale is not connected (BackendState NeedsLogin)",
    )
    assert "sudo tailscale up" in result.output


def test_failure_wrong_tailscale_ip(cluster: Lab) -> None:
    inventory = str(cluster.inventory)
    right = cluster.require_state().node("w-2").address
    wrong = right.rsplit(".", 1)[0] + ".200"
    assert run_cli("-i", inventory, "config-set", "tailscale_ip", wrong, "--scope", "w-2").code == 0
    try:
        result = run_playbook(cluster, "preflight.yml")
    finally:
        assert (
            run_cli("-i", inventory, "config-set", "tailscale_ip", right, "--scope", "w-2").code
            == 0
        )
    assert result.code != 0
    _failed_step(
        result.output,
        "w-2",
        "Check that the node's Tailscale IP is the inventory's",
        f"w-2: the inventory says tailscale_ip {wrong}",
    )


def test_failure_blocked_control_plane_port(cluster: Lab) -> None:
    source = cluster.require_state().node("w-1").address
    cluster.ssh_run(
        "cp-1",
        "nft add table inet kubani_test && nft 'add chain inet kubani_test in "
        "{ type filter hook input priority -20; }' && nft add rule inet kubani_test in "
        f"ip saddr {source} tcp dport 6443 drop",
    )
    try:
        result = run_playbook(cluster, "preflight.yml")
    finally:
        cluster.ssh_run("cp-1", "nft delete table inet kubani_test")
    assert result.code != 0
    _failed_step(
        result.output, "w-1", "Fail with the pairs that cannot talk", "w-1 cannot reach cp-1"
    )
    assert "on 6443/tcp: timed out" in result.output


def test_a_relayed_control_plane_is_a_warning_not_a_failure(cluster: Lab) -> None:
    """cp-1's direct UDP paths blocked: the nodes reach it through the DERP relay for real,
    preflight still passes and says so."""
    cluster.set_tailscale("cp-1", relayed=True)
    try:
        for node in ("w-1", "w-2"):  # traffic, so that the relayed paths are active
            cluster.ssh_run(node, "tailscale ping -c 5 cp-1", check=False)
        result = run_playbook(cluster, "preflight.yml")
    finally:
        cluster.set_tailscale("cp-1", relayed=False)
    assert result.code == 0, result.failures()
    said = " ".join(result.output.split())
    assert "w-1 reaches control plane cp-1 through the DERP relay lab" in said


def test_failure_bad_checksum(cluster: Lab, tmp_path: Path) -> None:
    # An upgrade whose downloaded binary was damaged: the nodes need it (they run another
    # release), so it is checked, refused, and never reaches a node.
    corrupt = tmp_path / "airgap"
    shutil.copytree(cluster.k3s_artifacts(K3S_UPGRADE), corrupt)
    with (corrupt / "k3s").open("ab") as binary:
        binary.write(b"\n# tampered\n")
    result = run_playbook(
        cluster, "site.yml", "-e", f"k3s_airgap_dir={corrupt}", "-e", f"k3s_version={K3S_UPGRADE}"
    )
    assert result.code != 0
    assert "Check the air-gap binary against the release checksum" in result.output
    assert "fatal: [cp-1]" in result.output
    assert "does not match" in result.output and "sha256sum-amd64.txt" in result.output
    unchanged = cluster.ssh_run("cp-1", "sha256sum /usr/local/bin/k3s").stdout.split()[0]
    expected = (cluster.k3s_artifacts(K3S_VERSION) / "sha256sum-amd64.txt").read_text().split()[0]
    assert unchanged == expected
