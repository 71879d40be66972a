"""K3s's deploy controller: every manifest in ``server/manifests`` (``*.yaml``, ``*.yml``,
``*.json``; a ``NAME.skip`` file or ``--disable NAME`` leaves ``NAME.yaml`` alone) is applied
to the API when it appears or changes, with server-side apply, and recorded as an ``Addon``
(``k3s.cattle.io/v1``) in kube-system with the file's path and checksum, as K3s does. A file
that cannot be applied yet (a custom resource before its CRD is served) is tried again.
"""

from __future__ import annotations

import hashlib
import subprocess
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubani_lab.k3s.client import ApiError, Client

FIELD_MANAGER = "deploy@k3s"
SUFFIXES = (".yaml", ".yml", ".json")

ADDON_CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "addons.k3s.cattle.io"},
    "spec": {
        "group": "k3s.cattle.io",
        "names": {"kind": "Addon", "listKind": "AddonList", "plural": "addons",
                  "singular": "addon"},
        "scope": "Namespaced",
        "versions": [{
            "name": "v1", "served": True, "storage": True,
            "additionalPrinterColumns": [
                {"name": "Source", "type": "string", "jsonPath": ".spec.source"},
                {"name": "Checksum", "type": "string", "jsonPath": ".spec.checksum"},
            ],
            "schema": {"openAPIV3Schema": {
                "type": "object",
                "properties": {
                    "spec": {"type": "object", "properties": {
                        "source": {"type": "string"}, "checksum": {"type": "string"}}},
                    "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                },
            }},
        }],
    },
}  # fmt: skip


def _loose_crd(group: str, kind: str, plural: str) -> dict[str, Any]:
    """A CRD whose spec and status are kept as given (K3s's helm.cattle.io kinds: their
    controller is K3s's, which the lab does not run, but their objects must be accepted)."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {
            "group": group,
            "names": {"kind": kind, "listKind": f"{kind}List", "plural": plural,
                      "singular": kind.lower()},
            "scope": "Namespaced",
            "versions": [{"name": "v1", "served": True, "storage": True,
                          "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                              "spec": {"type": "object",
                                       "x-kubernetes-preserve-unknown-fields": True},
                              "status": {"type": "object",
                                         "x-kubernetes-preserve-unknown-fields": True}}}}}],
        },
    }  # fmt: skip


# K3s's own custom resources: HelmChart and HelmChartConfig (helm.cattle.io).
HELM_CRDS = (
    _loose_crd("helm.cattle.io", "HelmChart", "helmcharts"),
    _loose_crd("helm.cattle.io", "HelmChartConfig", "helmchartconfigs"),
)

Kubectl = Callable[[list[str]], subprocess.CompletedProcess[str]]


def manifests_in(folder: Path, disabled: Iterable[str]) -> list[Path]:
    """The manifests K3s would apply, in name order."""
    if not folder.is_dir():
        return []
    skipped = set(disabled) | {p.stem for p in folder.glob("*.skip")}
    return sorted(
        p
        for p in folder.iterdir()
        if p.suffix in SUFFIXES
        and p.is_file()
        and not p.name.startswith(".")
        and p.stem not in skipped
    )


@dataclass
class DeployController:
    folder: Path
    client: Client
    kubectl: Kubectl
    disabled: frozenset[str] = frozenset()
    applied: dict[str, str] = field(default_factory=dict)  # file name -> checksum
    failures: dict[str, str] = field(default_factory=dict)  # file name -> last error

    def tick(self) -> None:
        for path in manifests_in(self.folder, self.disabled):
            checksum = hashlib.sha256(path.read_bytes()).hexdigest()
            if self.applied.get(path.name) == checksum:
                continue
            done = self.kubectl(
                ["apply", "--server-side", "--force-conflicts",
                 f"--field-manager={FIELD_MANAGER}", "-f", str(path)]
            )  # fmt: skip
            if done.returncode == 0:
                self.applied[path.name] = checksum
                self.failures.pop(path.name, None)
            else:
                self.failures[path.name] = done.stderr.strip()[-500:]
            self._record(path, checksum, done.returncode == 0)

    def _record(self, path: Path, checksum: str, ok: bool) -> None:
        name = path.stem
        base = "/apis/k3s.cattle.io/v1/namespaces/kube-system/addons"
        addon = {
            "apiVersion": "k3s.cattle.io/v1",
            "kind": "Addon",
            "metadata": {"name": name, "namespace": "kube-system"},
            "spec": {"source": str(path), "checksum": checksum},
        }
        try:
            self.client.request(
                "PATCH",
                f"{base}/{name}?fieldManager={FIELD_MANAGER}&force=true",
                addon,
                content_type="application/apply-patch+yaml",
            )
            self._event(name, ok, path)
        except (ApiError, OSError):
            pass  # recorded on the next change; the manifest itself is what matters

    def _event(self, name: str, ok: bool, path: Path) -> None:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        self.client.request(
            "POST",
            "/api/v1/namespaces/kube-system/events",
            {
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {"generateName": f"{name}.", "namespace": "kube-system"},
                "involvedObject": {"apiVersion": "k3s.cattle.io/v1", "kind": "Addon",
                                   "name": name, "namespace": "kube-system"},
                "type": "Normal" if ok else "Warning",
                "reason": "AppliedManifest" if ok else "ApplyManifestFailed",
                "message": f"{'Applied' if ok else 'Could not apply all of'} manifest at {path}",
                "source": {"component": "deploy"},
                "firstTimestamp": stamp,
                "lastTimestamp": stamp,
                "count": 1,
            },
        )  # fmt: skip
