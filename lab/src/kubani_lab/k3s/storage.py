"""The packaged local-path-provisioner's part (K3s's ``local-storage``): claims of a
``rancher.io/local-path`` class get a volume on the node the scheduler chose for their first
pod, as the real provisioner makes them (a hostPath folder under K3s's storage folder, with
node affinity), and the real persistent volume controller binds them. Pods are simulated, so
the folder itself is not made."""

from __future__ import annotations

import contextlib
from typing import Any

from kubani_lab.k3s.client import ApiError, Client

PROVISIONER = "rancher.io/local-path"
SELECTED_NODE = "volume.kubernetes.io/selected-node"
PROVISIONED_BY = "pv.kubernetes.io/provisioned-by"
DEFAULT_CLASS = "storageclass.kubernetes.io/is-default-class"
STORAGE_DIR = "/var/lib/rancher/k3s/storage"


def local_volume(
    claim: dict[str, Any], klass: dict[str, Any], node: str, folder: str = STORAGE_DIR
) -> dict[str, Any]:
    """The PersistentVolume local-path makes for a claim on a node: a hostPath folder there."""
    meta, spec = claim["metadata"], claim.get("spec") or {}
    volume = f"pvc-{meta['uid']}"
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": volume, "annotations": {PROVISIONED_BY: PROVISIONER}},
        "spec": {
            "capacity": {
                "storage": ((spec.get("resources") or {}).get("requests") or {}).get(
                    "storage", "1Gi"
                )
            },
            "accessModes": spec.get("accessModes") or ["ReadWriteOnce"],
            "persistentVolumeReclaimPolicy": klass.get("reclaimPolicy") or "Delete",
            "storageClassName": klass["metadata"]["name"],
            "volumeMode": spec.get("volumeMode") or "Filesystem",
            "claimRef": {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                         "namespace": meta["namespace"], "name": meta["name"],
                         "uid": meta["uid"]},
            "hostPath": {"path": f"{folder}/{volume}_{meta['namespace']}_{meta['name']}",
                         "type": "DirectoryOrCreate"},
            "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                {"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}]}]}},
        },
    }  # fmt: skip


class LocalPathProvisioner:
    def __init__(self, client: Client, folder: str = STORAGE_DIR) -> None:
        self.client = client
        self.folder = folder

    def tick(self) -> None:
        classes = {
            c["metadata"]["name"]: c
            for c in self.client.request("GET", "/apis/storage.k8s.io/v1/storageclasses")["items"]
            if c.get("provisioner") == PROVISIONER
        }
        default = next(
            (
                name
                for name, c in classes.items()
                if (c["metadata"].get("annotations") or {}).get(DEFAULT_CLASS) == "true"
            ),
            None,
        )
        for claim in self.client.request("GET", "/api/v1/persistentvolumeclaims")["items"]:
            spec, meta = claim.get("spec") or {}, claim["metadata"]
            name = spec.get("storageClassName") or default
            node = (meta.get("annotations") or {}).get(SELECTED_NODE)
            if spec.get("volumeName") or name not in classes or not node:
                continue
            with contextlib.suppress(ApiError):
                volume = local_volume(claim, classes[name], node, self.folder)
                self.client.request("POST", "/api/v1/persistentvolumes", volume)
        self._reclaim()

    def _reclaim(self) -> None:
        """Released volumes of this provisioner whose policy is Delete are deleted."""
        for volume in self.client.request("GET", "/api/v1/persistentvolumes")["items"]:
            meta, spec = volume["metadata"], volume.get("spec") or {}
            if (
                (meta.get("annotations") or {}).get(PROVISIONED_BY) == PROVISIONER
                and (volume.get("status") or {}).get("phase") == "Released"
                and spec.get("persistentVolumeReclaimPolicy") == "Delete"
            ):
                with contextlib.suppress(ApiError):
                    self.client.request("DELETE", f"/api/v1/persistentvolumes/{meta['name']}")
