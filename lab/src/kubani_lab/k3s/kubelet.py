"""The node's kubelet, simulated by the real KWOK: it keeps exactly this node's status,
lease and pods (scheduled onto it by the real scheduler) the way a kubelet does, so that its
heartbeats stop when the node's K3s stops and the real node lifecycle controller marks it
NotReady. Containers are not run; pods go Running as KWOK's stages say.

The stages are KWOK's own (``node-initialize``, ``node-heartbeat-with-lease``, the ``pod-*``
fast stages), copied from the pinned module at build time.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from kubani_lab.k3s import pki

# How long a node's lease lasts; the kubelet's default (nodeLeaseDurationSeconds).
LEASE_DURATION_S = 40
# A kubelet's credentials are those of its node (system:node:NAME in system:nodes), which
# may only read its own Node. KWOK lists nodes when it starts, so the simulated kubelets
# also belong to this group, which may read (never write) every Node and Pod.
SIMULATOR_GROUP = "kubani:simulated-kubelets"
SIMULATOR_ROLE: dict[str, object] = {
    "apiVersion": "rbac.authorization.k8s.io/v1",
    "kind": "ClusterRole",
    "metadata": {"name": "kubani:simulated-kubelet"},
    "rules": [
        {"apiGroups": [""], "resources": ["nodes", "pods"], "verbs": ["get", "list", "watch"]},
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "verbs": ["get", "list", "watch"],
        },
    ],
}
SIMULATOR_BINDING: dict[str, object] = {
    "apiVersion": "rbac.authorization.k8s.io/v1",
    "kind": "ClusterRoleBinding",
    "metadata": {"name": "kubani:simulated-kubelet"},
    "roleRef": {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": "kubani:simulated-kubelet",
    },
    "subjects": [
        {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": SIMULATOR_GROUP}
    ],
}


def kubelet_identity(node_name: str) -> tuple[str, tuple[str, ...]]:
    """The user and groups of the node's kubelet client certificate."""
    return f"system:node:{node_name}", ("system:nodes", SIMULATOR_GROUP)


def write_config(target: Path, stages: Path, lease_duration_s: int = LEASE_DURATION_S) -> Path:
    """KWOK's configuration file: its options and the stages it plays."""
    documents: list[dict[str, object]] = [
        {
            "apiVersion": "config.kwok.x-k8s.io/v1alpha1",
            "kind": "KwokConfiguration",
            # KWOK's own defaults, spelled out: a configuration file's options are not
            # defaulted field by field.
            "options": {
                "nodeLeaseDurationSeconds": lease_duration_s,
                "nodeLeaseParallelism": 4,
                "nodePlayStageParallelism": 4,
                "podPlayStageParallelism": 4,
                "podsOnNodeSyncParallelism": 1,
            },
        }
    ]
    found = sorted(stages.rglob("*.yaml"))
    if not found:
        raise FileNotFoundError(f"no KWOK stages under {stages}")
    for stage in found:
        documents.extend(d for d in yaml.safe_load_all(stage.read_text()) if d)
    pki.write_file(target, yaml.safe_dump_all(documents, sort_keys=False).encode(), 0o644)
    return target


def kwok_command(
    binary: Path, kubeconfig: Path, config: Path, node_name: str, node_ip: str
) -> list[str]:
    return [
        str(binary),
        f"--kubeconfig={kubeconfig}",
        f"--config={config}",
        f"--manage-single-node={node_name}",
        f"--node-name={node_name}",
        f"--node-ip={node_ip}",
    ]
