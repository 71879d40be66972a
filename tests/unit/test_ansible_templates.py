"""The roles' K3s config templates rendered by Ansible itself (its filters, its config)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from kubani.vocabulary import GUARD_GPU_TAINT

ANSIBLE = Path(__file__).resolve().parents[2] / "ansible"
# What the worker's config template needs besides the node's labels and taints.
WORKER: dict[str, object] = {
    "k3s_worker_server": "100.64.0.2",
    "k3s_worker_first_control_plane": "localhost",
    "k3s_common_join_token": "K10x::server:y",
    "tailscale_ip": "100.64.0.3",
    "k3s_worker_flannel_iface": "tailscale0",
    "k3s_worker_extra_config": {},
}


def _render(template: str, variables: dict[str, object], tmp_path: Path) -> dict[str, object]:
    rendered = yaml.safe_load(_render_text(template, variables, tmp_path))
    assert isinstance(rendered, dict)
    return rendered


def _render_text(template: str, variables: dict[str, object], tmp_path: Path) -> str:
    out = tmp_path / "config.yaml"
    play = tmp_path / "play.yml"
    play.write_text(
        yaml.safe_dump(
            [
                {
                    "name": "Render",
                    "hosts": "localhost",
                    "gather_facts": False,
                    "tasks": [
                        {
                            "name": "Render the template",
                            "ansible.builtin.template": {
                                "src": str(ANSIBLE / template),
                                "dest": str(out),
                                "mode": "0600",
                            },
                        }
                    ],
                }
            ]
        )
    )
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "ansible-playbook"),
            "-i",
            "localhost,",
            "-c",
            "local",
            str(play),
            "-e",
            json.dumps({"ansible_python_interpreter": sys.executable, **variables}),
        ],
        cwd=ANSIBLE,
        env={**os.environ, "ANSIBLE_CONFIG": str(ANSIBLE / "ansible.cfg")},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return out.read_text()


def test_taints_in_the_mapping_form_reach_k3s_in_its_own_form(tmp_path: Path) -> None:
    taints = [
        {"key": "kubani.io/gpu", "value": "true", "effect": "NoSchedule"},
        {"key": "dedicated", "effect": "PreferNoSchedule"},
        {"key": "flag", "value": True, "effect": "NoExecute"},
        "kubani.io/desk=true:PreferNoSchedule",
    ]
    worker = _render(
        "roles/k3s_worker/templates/config.yaml.j2",
        {**WORKER, "node_taints": taints},
        tmp_path,
    )
    assert worker["node-taint"] == [
        "kubani.io/gpu=true:NoSchedule",
        "dedicated:PreferNoSchedule",
        "flag=true:NoExecute",
        "kubani.io/desk=true:PreferNoSchedule",
    ]


def test_labels_a_kubelet_refuses_are_left_to_the_api(tmp_path: Path) -> None:
    labels = {
        "kubani.io/tier": "edge",
        "node-role.kubernetes.io/worker": "true",  # a kubelet refuses to start with this
        "node.kubernetes.io/instance-type": "nuc",
        "topology.kubernetes.io/zone": "cupboard",
        "team.k8s.io/owner": "me",
        "gpu": True,
    }
    worker = _render(
        "roles/k3s_worker/templates/config.yaml.j2",
        {**WORKER, "node_labels": labels},
        tmp_path,
    )
    assert worker["node-label"] == [
        "kubani.io/tier=edge",
        "node.kubernetes.io/instance-type=nuc",
        "topology.kubernetes.io/zone=cupboard",
        "gpu=true",
    ]
    only_refused = _render(
        "roles/k3s_worker/templates/config.yaml.j2",
        {**WORKER, "node_labels": {"node-role.kubernetes.io/worker": "true"}},
        tmp_path,
    )
    assert "node-label" not in only_refused


def test_the_gpu_objects_the_role_seeds_are_those_flux_keeps(tmp_path: Path) -> None:
    """gpu_support seeds the NVIDIA objects through K3s's manifests folder so that GPUs work
    before Flux runs; from then on Flux applies gitops/infrastructure/gpu. Both must write
    the same objects, or each would undo the other; rendered with the role's defaults and
    the tree's default replicas."""
    defaults = yaml.safe_load((ANSIBLE / "roles/gpu_support/defaults/main.yml").read_text())
    seeded = _render_text(
        "roles/gpu_support/templates/nvidia.yaml.j2",
        {
            "gpu_support_namespace": defaults["gpu_support_namespace"],
            "gpu_support_device_plugin_image": defaults["gpu_support_device_plugin_image"],
            "gpu_support_replicas": 4,
        },
        tmp_path,
    )
    tree = ANSIBLE.parent / "gitops" / "infrastructure" / "gpu"
    listed = yaml.safe_load((tree / "kustomization.yaml").read_text())["resources"]
    kept = "\n---\n".join((tree / name).read_text() for name in listed)
    kept = kept.replace("${gpu_time_slicing_replicas:=4}", "4")

    def objects(text: str) -> dict[tuple[str, str], Any]:
        return {(o["kind"], o["metadata"]["name"]): o for o in yaml.safe_load_all(text) if o}

    assert objects(seeded) == objects(kept)
    assert len(objects(kept)) == 4  # RuntimeClass, Namespace, ConfigMap, DaemonSet
    # The workstation guard's GPU eviction leaves the device plugin where it is.
    plugin = objects(kept)[("DaemonSet", "nvidia-device-plugin")]
    tolerated = plugin["spec"]["template"]["spec"]["tolerations"]
    assert {"key": GUARD_GPU_TAINT, "operator": "Exists", "effect": "NoExecute"} in tolerated
