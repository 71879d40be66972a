"""An HA control plane: three servers on embedded etcd, the joiners started one at a time."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from kubani_lab.lab import Lab
from tests.conftest import run_cli
from tests.lab.ansible_run import run_playbook
from tests.lab.lifecycle import lab_in_use

pytestmark = pytest.mark.lab


# A lab of its own, two full provisioning runs over four nodes: longer than the default limit.
@pytest.mark.timeout(900)
def test_three_control_planes_join_one_at_a_time() -> None:
    with lab_in_use(Lab("pytest-ha")) as lab:
        lab.up(nodes=4, control_planes=3)
        run = run_playbook(lab, "site.yml")
        assert run.code == 0, run.failures()
        # serial: 1 -> one batch per control plane, in inventory order, each waiting for Ready
        # before the next starts.
        batches = re.findall(
            r"PLAY \[Start the control planes, one at a time\].*?TASK \[k3s_common : "
            r"Wait until the node is Ready\][^\n]*\n(?:[^\n]*\n)*?ok: \[(cp-\d)",
            run.output,
            re.S,
        )
        assert batches == ["cp-1", "cp-2", "cp-3"]
        first = lab.ssh_run("cp-1", "cat /etc/rancher/k3s/config.yaml").stdout
        assert "cluster-init: true" in first and "server:" not in first
        first_address = lab.require_state().node("cp-1").address
        for joiner in ("cp-2", "cp-3"):
            config = lab.ssh_run(joiner, "cat /etc/rancher/k3s/config.yaml").stdout
            assert f"server: https://{first_address}:6443" in config
            assert "cluster-init" not in config
        kubeconfig = lab.folder / "kubeconfig"
        nodes = json.loads(
            subprocess.run(
                ["kubectl", "--kubeconfig", str(kubeconfig), "get", "nodes", "-o", "json"],
                capture_output=True,
                text=True,
                check=True,
                timeout=30,
            ).stdout
        )["items"]
        roles = {n["metadata"]["name"]: n["metadata"]["labels"] for n in nodes}
        for name in ("cp-1", "cp-2", "cp-3"):
            assert roles[name]["node-role.kubernetes.io/etcd"] == "true"
        # A joined server answers the API itself.
        joined = kubeconfig.read_text().replace(
            lab.require_state().node("cp-1").address, lab.require_state().node("cp-2").address
        )
        (lab.folder / "kubeconfig-cp-2").write_text(joined)
        listed = subprocess.run(
            [
                "kubectl",
                "--kubeconfig",
                str(lab.folder / "kubeconfig-cp-2"),
                "get",
                "nodes",
                "-o",
                "name",
            ],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout
        assert sorted(listed.split()) == ["node/cp-1", "node/cp-2", "node/cp-3", "node/w-1"]
        second = run_playbook(lab, "site.yml")
        assert all(v["changed"] == 0 for v in second.recap().values()), second.failures()

        # A snapshot of the real etcd cluster, through the first server.
        saved = lab.ssh_run("cp-1", "k3s etcd-snapshot save --name ha-check")
        assert "Snapshot ha-check-cp-1-" in saved.stdout + saved.stderr
        # The first server stops: etcd keeps quorum on the other two, whose API servers
        # answer kubectl, and cluster-mgr status finds them from the inventory.
        lab.ssh_run("cp-1", "systemctl stop k3s")
        listed = subprocess.run(
            ["kubectl", "--kubeconfig", str(lab.folder / "kubeconfig-cp-2"), "get", "nodes",
             "-o", "name"],
            capture_output=True, text=True, check=False, timeout=60,
        )  # fmt: skip
        assert listed.returncode == 0, listed.stderr
        assert "node/cp-1" in listed.stdout.split()
        report = run_cli(
            "-i", lab.inventory, "status", "--json", "--kubeconfig", kubeconfig,
            "--tailscale-bin", lab.bin_dir / "tailscale", timeout=120,
        )  # fmt: skip
        document = report.json()
        state = lab.require_state()
        assert document["api_server"] in {
            f"https://{state.node(name).address}:6443" for name in ("cp-2", "cp-3")
        }, document
        assert {n["name"] for n in document["nodes"]} == {"cp-1", "cp-2", "cp-3", "w-1"}
        # The TUI's source, built as cluster-tui builds it from the inventory.
        assert _tui_source_reads_nodes(lab, kubeconfig) == ["cp-1", "cp-2", "cp-3", "w-1"]


def _tui_source_reads_nodes(lab: Lab, kubeconfig: Path) -> list[str]:
    import asyncio

    from kubani.cluster.gather import api_alternatives
    from kubani.cluster.live import KubeSource
    from kubani.inventory.document import InventoryDocument

    alternatives = api_alternatives(InventoryDocument(lab.inventory))
    source = KubeSource(kubeconfig, None, "lab", None, alternatives)

    async def nodes() -> list[str]:
        try:
            items, _ = await source.fetch("nodes")
        finally:
            await source.close()
        return sorted(n["metadata"]["name"] for n in items)

    assert source.server != f"https://{lab.require_state().node('cp-1').address}:6443"
    return asyncio.run(nodes())
