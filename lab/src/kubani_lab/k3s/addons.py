"""The packaged components K3s writes into its manifests folder, minus those disabled."""

from __future__ import annotations

from pathlib import Path

_DEPLOYMENT = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
  namespace: kube-system
  labels: {{k8s-app: {name}}}
spec:
  replicas: 1
  selector: {{matchLabels: {{k8s-app: {name}}}}}
  template:
    metadata: {{labels: {{k8s-app: {name}}}}}
    spec:
      priorityClassName: system-cluster-critical
      tolerations:
        - {{key: CriticalAddonsOnly, operator: Exists}}
        - {{key: node-role.kubernetes.io/control-plane, operator: Exists, effect: NoSchedule}}
      containers:
        - name: {name}
          image: {image}
"""
_SERVICE = """---
apiVersion: v1
kind: Service
metadata:
  name: {service}
  namespace: kube-system
spec:
  selector: {{k8s-app: {name}}}
  ports: [{{port: {port}}}]
"""
# The metrics server's Service, endpoint and APIService are the stand-in's own (it answers
# metrics.k8s.io itself; see metrics.py), so its manifest carries the Deployment only.
WITHOUT_SERVICE = frozenset({"metrics-server"})

PACKAGED = {
    "coredns": ("coredns", "rancher/mirrored-coredns-coredns:1.11.3", "kube-dns", 53),
    "local-storage": (
        "local-path-provisioner",
        "rancher/local-path-provisioner:v0.0.30",
        "local-path-provisioner",
        80,
    ),
    "metrics-server": (
        "metrics-server",
        "rancher/mirrored-metrics-server:v0.7.2",
        "metrics-server",
        443,
    ),
    "traefik": ("traefik", "rancher/mirrored-library-traefik:2.11.18", "traefik", 80),
}


def write_packaged(manifests: Path, disabled: set[str]) -> None:
    manifests.mkdir(parents=True, exist_ok=True)
    for component, (name, image, service, port) in PACKAGED.items():
        target = manifests / f"{component}.yaml"
        if component in disabled:
            target.unlink(missing_ok=True)
            continue
        text = _DEPLOYMENT.format(name=name, image=image)
        if component not in WITHOUT_SERVICE:
            text += _SERVICE.format(name=name, service=service, port=port)
        if component == "local-storage":
            text += (
                "---\napiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata:\n"
                "  name: local-path\n  annotations: {storageclass.kubernetes.io/is-default-class: "
                '"true"}\nprovisioner: rancher.io/local-path\nvolumeBindingMode: '
                "WaitForFirstConsumer\nreclaimPolicy: Delete\n"
            )
        if not target.exists() or target.read_text() != text:
            target.write_text(text)
