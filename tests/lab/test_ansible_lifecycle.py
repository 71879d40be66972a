"""The Ansible layer over a cluster's life on a real lab: a node added, a backup restored,
a rolling upgrade, a node removed and provisioned again, the cluster reset."""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kubani.backups import SQLITE_ARCHIVE, backup_kind
from kubani_lab.lab import K3S_VERSION, Lab
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
from tests.lab.lifecycle import lab_in_use

# A module's first test boots its lab and provisions it; on a two-core machine that shares
# its cores with a second lab this takes four to five minutes, more than the suite-wide
# 300 s hang guard allows for setup and call together.
pytestmark = [pytest.mark.lab, pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def cluster(request: pytest.FixtureRequest) -> Iterator[Lab]:
    """A lab provisioned by site.yml once for this module, with one spare node for add_node."""
    with lab_in_use(Lab("pytest-lifecycle"), request) as lab:
        provision(lab, extra_nodes=1)
        yield lab


def test_add_node_joins_only_the_new_node(cluster: Lab) -> None:
    extra = cluster.require_state().node("extra-1")
    assert (
        run_cli(
            "-i",
            cluster.inventory,
            "add-node",
            "extra-1",
            extra.address,
            "--ansible-host",
            extra.address,
        ).code
        == 0
    )
    before = start_times(cluster)
    before.pop("extra-1")
    result = run_playbook(cluster, "add_node.yml")
    assert result.code == 0, result.failures()
    recap = result.recap()
    assert recap["extra-1"]["changed"] > 0
    assert all(recap[name]["changed"] == 0 for name in NODES)
    after = start_times(cluster)
    assert {k: after[k] for k in before} == before
    node = nodes_by_name(cluster)["extra-1"]
    ready = next(c for c in node["status"]["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "True"


def test_backup_then_restore_round_trips(cluster: Lab, tmp_path: Path) -> None:
    backup = run_playbook(cluster, "backup.yml", "-e", f"kubani_backup_dir={tmp_path}")
    assert backup.code == 0, backup.failures()
    archives = list(tmp_path.glob("kubani-backup-*.tar.gz"))
    assert len(archives) == 1
    assert oct(archives[0].stat().st_mode & 0o777) == "0o600"
    assert backup_kind(archives[0]) == SQLITE_ARCHIVE  # what `cluster-mgr restore` checks
    assert _kubectl(cluster, "label", "node", "w-1", "after-backup=yes").returncode == 0
    restored = run_playbook(cluster, "restore.yml", "-e", f"kubani_restore_file={archives[0]}")
    assert restored.code == 0, restored.failures()
    labels = nodes_by_name(cluster)["w-1"]["metadata"]["labels"]
    assert "after-backup" not in labels
    assert labels["kubani.io/tier"] == "edge"


def test_upgrade_rolls_one_node_at_a_time(cluster: Lab) -> None:
    target = K3S_UPGRADE
    result = run_playbook(cluster, "upgrade.yml", "-e", f"k3s_version={target}")
    assert result.code == 0, result.failures()
    order = re.findall(
        r"TASK \[k3s_common : Wait until the node is Ready\][^\n]*\n"
        r"(?:[^\n]*\n)*?ok: \[([\w-]+)",
        result.output,
    )
    assert order[0] == "cp-1" and sorted(order) == sorted([*NODES, "extra-1"])
    assert result.output.count("TASK [node_drain : Cordon the node]") == 4
    nodes = nodes_by_name(cluster)
    for name, node in nodes.items():
        assert node["status"]["nodeInfo"]["kubeletVersion"] == target, name
        assert not node["spec"].get("unschedulable"), name
    assert cluster.ssh_run("cp-1", "ls -d /var/lib/rancher/k3s/server/db.pre-upgrade-*").stdout
    # The inventory still says the old release: provisioning refuses to put it back.
    stale = run_playbook(cluster, "site.yml")
    assert stale.code != 0
    assert "TASK [k3s_common : Refuse to put an older K3s release back]" in stale.output
    assert f"cp-1 runs K3s {target}, newer than k3s_version {K3S_VERSION}" in " ".join(
        stale.output.split()
    )
    for name, node in nodes_by_name(cluster).items():
        assert node["status"]["nodeInfo"]["kubeletVersion"] == target, name


def test_remove_node_drains_deletes_and_uninstalls(cluster: Lab) -> None:
    manifest = (
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: pinned, namespace: default}\n"
        "spec:\n  replicas: 2\n  selector: {matchLabels: {app: pinned}}\n"
        "  template:\n    metadata: {labels: {app: pinned}}\n    spec:\n"
        "      nodeSelector: {kubernetes.io/hostname: w-2}\n"
        "      containers: [{name: app, image: nginx}]\n"
    )
    applied = subprocess.run(
        [
            "kubectl",
            "--kubeconfig",
            str(cluster.folder / "kubeconfig"),
            "apply",
            "-f",
            "-",
        ],
        input=manifest,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert applied.returncode == 0, applied.stderr
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        pods = json.loads(_kubectl(cluster, "get", "pods", "-o", "json").stdout)["items"]
        if len([p for p in pods if p["status"].get("phase") == "Running"]) == 2:
            break
        time.sleep(1)
    result = run_playbook(cluster, "remove_node.yml", "-e", "kubani_remove_node=w-2")
    assert result.code == 0, result.failures()
    assert "TASK [node_drain : Evict the pods]" in result.output
    assert "w-2" not in nodes_by_name(cluster)
    pods = json.loads(_kubectl(cluster, "get", "pods", "-o", "json").stdout)["items"]
    assert not [p for p in pods if p["spec"].get("nodeName") == "w-2"]
    left = cluster.ssh_run("w-2", "ls /usr/local/bin/k3s /etc/rancher/k3s 2>&1", check=False).stdout
    assert left.count("No such file") == 2


def test_provision_limited_to_one_worker_joins_it(cluster: Lab) -> None:
    """The scaling recipe: a node in the inventory without K3s, provisioned on its own with
    --limit. The join token comes from the first control plane although it is not in the run."""
    assert "w-2" not in nodes_by_name(cluster)  # removed by the test before
    before = start_times(cluster)
    before.pop("w-2")
    result = run_playbook(cluster, "site.yml", "--limit", "w-2")
    assert result.code == 0, result.failures()
    assert set(result.recap()) == {"w-2"}
    ready = next(
        c for c in nodes_by_name(cluster)["w-2"]["status"]["conditions"] if c["type"] == "Ready"
    )
    assert ready["status"] == "True"
    after = start_times(cluster)
    assert {k: after[k] for k in before} == before  # nothing else restarted


# What K3s's runtime and pod network leave on a node (the lab's K3s leaves them too): a shim
# with its container under it, a sandbox mount, flannel's devices, kube-proxy's and
# flannel's packet filter tables, the CNI state. One line per trace that is present.
TRACES = (
    "pgrep -f 'k3s/data/[^/]*/bin/containerd-shim' >/dev/null && echo shim; "
    "pgrep -x sleep >/dev/null && echo container; "
    "grep -q ' /run/k3s/' /proc/self/mounts && echo mount; "
    "ip link show cni0 >/dev/null 2>&1 && echo cni0; "
    "ip link show flannel.1 >/dev/null 2>&1 && echo flannel.1; "
    "ip link show | grep -q 'master cni0' && echo veth; "
    "nft list table ip kube-proxy >/dev/null 2>&1 && echo kube-proxy; "
    "nft list table ip flannel-ipv4 >/dev/null 2>&1 && echo flannel-ipv4; "
    "test -d /var/lib/cni && echo cni-state; true"
)
ALL_TRACES = ["shim", "container", "mount", "cni0", "flannel.1", "veth", "kube-proxy",
              "flannel-ipv4", "cni-state"]  # fmt: skip


def test_reset_uninstalls_everywhere(cluster: Lab) -> None:
    refused = run_playbook(cluster, "reset.yml")
    assert refused.code != 0 and "kubani_reset_confirm" in refused.output
    for name in (*NODES, "extra-1"):
        assert cluster.ssh_run(name, TRACES).stdout.split() == ALL_TRACES, name
    result = run_playbook(cluster, "reset.yml", "-e", f"kubani_reset_confirm=lab-{cluster.name}")
    assert result.code == 0, result.failures()
    for name in (*NODES, "extra-1"):
        left = cluster.ssh_run(
            name,
            "ls /usr/local/bin/k3s /var/lib/rancher/k3s 2>&1; "
            "systemctl list-unit-files 'k3s*' --no-legend",
            check=False,
        ).stdout
        assert "No such file" in left and ".service" not in left
        assert cluster.ssh_run(name, TRACES).stdout.split() == [], name
