"""GPU support in the lab: a node with a (stand-in) NVIDIA GPU gets the runtime, the
RuntimeClass, the time-slicing device plugin and the GPU labels; a node without gets none."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from kubani_lab.lab import Lab
from tests.conftest import run_cli
from tests.lab.ansible_run import kubectl, run_playbook
from tests.lab.lifecycle import lab_in_use

pytestmark = pytest.mark.lab


def _get(lab: Lab, *args: str) -> Any:
    result = kubectl(lab, "get", *args, "-o", "json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _exists(lab: Lab, *args: str) -> bool:
    return kubectl(lab, "get", *args, "-o", "name").returncode == 0


def _plugin_diagnostics(lab: Lab) -> str:
    pods = kubectl(lab, "get", "-n", "nvidia-device-plugin", "pods", "-o", "wide")
    journal = lab.ssh_run(
        "gpu-1", "sudo journalctl --unit k3s-agent --no-pager --lines 40", check=False
    )
    return f"device plugin pods:\n{pods.stdout}{pods.stderr}\ngpu-1's agent:\n{journal.stdout}"


# A lab of its own and a full provisioning run: longer than the default limit.
@pytest.mark.timeout(600)
def test_gpu_node_gets_runtime_plugin_and_labels() -> None:
    with lab_in_use(Lab("pytest-gpu")) as lab:
        lab.up(nodes=3, control_planes=1, gpu_nodes=1)
        assert (
            run_cli(
                "-i", lab.inventory, "config-set", "gpu_time_slicing_replicas", "3", "--type", "int"
            ).code
            == 0
        )
        run = run_playbook(lab, "site.yml")
        assert run.code == 0, run.failures()

        containerd = "cat /var/lib/rancher/k3s/agent/etc/containerd/config.toml"
        assert 'runtimes."nvidia"' in lab.ssh_run("gpu-1", containerd).stdout
        assert "nvidia" not in lab.ssh_run("w-1", containerd).stdout

        # The role publishes the objects into K3s's manifests folder; K3s's deploy controller
        # applies them moments later, as it does on a real server.
        published = (
            ("runtimeclass", "nvidia"),
            ("-n", "nvidia-device-plugin", "configmap", "nvidia-device-plugin-configs"),
            ("-n", "nvidia-device-plugin", "daemonset", "nvidia-device-plugin"),
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not all(_exists(lab, *o) for o in published):
            time.sleep(1)
        assert _get(lab, "runtimeclass", "nvidia")["handler"] == "nvidia"
        configmap = _get(
            lab, "-n", "nvidia-device-plugin", "configmap", "nvidia-device-plugin-configs"
        )
        assert "replicas: 3" in configmap["data"]["any"]
        daemonset = _get(lab, "-n", "nvidia-device-plugin", "daemonset", "nvidia-device-plugin")
        template = daemonset["spec"]["template"]["spec"]
        assert template["runtimeClassName"] == "nvidia"
        assert template["nodeSelector"] == {"nvidia.com/gpu.present": "true"}

        gpu_labels = _get(lab, "node", "gpu-1")["metadata"]["labels"]
        assert gpu_labels["nvidia.com/gpu.present"] == "true"
        assert gpu_labels["nvidia.com/gpu.product"] == "NVIDIA-GeForce-RTX-4090"
        assert gpu_labels["nvidia.com/gpu.replicas"] == "3"
        plain_labels = _get(lab, "node", "w-1")["metadata"]["labels"]
        assert not [k for k in plain_labels if k.startswith("nvidia.com/")]

        deadline, capacity = time.monotonic() + 60, {}
        while time.monotonic() < deadline:
            capacity = _get(lab, "node", "gpu-1")["status"]["capacity"]
            if capacity.get("nvidia.com/gpu") == "3":
                break
            time.sleep(2)
        # 1 GPU x 3 time-slicing replicas; otherwise what the plugin's pod and the agent said.
        assert capacity.get("nvidia.com/gpu") == "3", _plugin_diagnostics(lab)
        assert "nvidia.com/gpu" not in _get(lab, "node", "w-1")["status"]["capacity"]
        plugin_pods = _get(lab, "-n", "nvidia-device-plugin", "pods")["items"]
        assert [p["spec"]["nodeName"] for p in plugin_pods] == ["gpu-1"]

        again = run_playbook(lab, "site.yml")
        assert all(v["changed"] == 0 for v in again.recap().values()), again.failures()
