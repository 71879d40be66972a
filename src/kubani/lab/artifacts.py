"""Stand-in executables as self-contained Python zipapps, laid out like release downloads.

A K3s air-gap install takes ``k3s`` plus ``sha256sum-amd64.txt`` from a local folder and
checks the sum; the lab's stand-ins are delivered the same way.
"""

from __future__ import annotations

import hashlib
import stat
import zipfile
from pathlib import Path

import kubani
from kubani.lab.k3s.payload import BIN, PAYLOAD_PREFIX

_PACKAGE_ROOT = Path(kubani.__file__).parent
# What the stand-ins may import: the lab package only (stdlib + python3-yaml/cryptography).
_INCLUDED = (
    "__init__.py",
    "quantity.py",
    "lab/__init__.py",
    "lab/standins",
    "lab/k3s",
)
_SHEBANG = b"#!/usr/bin/python3\n"


def _files() -> list[Path]:
    found: list[Path] = []
    for entry in _INCLUDED:
        path = _PACKAGE_ROOT / entry
        if path.is_dir():
            found += sorted(p for p in path.rglob("*.py"))
        elif path.exists():
            found.append(path)
    return found


def build_zipapp(
    target: Path, entry_module: str, main_args: str = "", payload: dict[str, Path] | None = None
) -> Path:
    """Write an executable zipapp whose ``__main__`` runs ``entry_module.main(main_args)``;
    ``payload`` files (name in the archive -> file) are stored alongside, uncompressed."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial")
    with partial.open("wb") as handle:
        handle.write(_SHEBANG)
        with zipfile.ZipFile(handle, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for path in _files():
                name = "kubani/" + path.relative_to(_PACKAGE_ROOT).as_posix()
                info = zipfile.ZipInfo(name, date_time=(2025, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(info, path.read_bytes())
            for name, source in sorted((payload or {}).items()):
                info = zipfile.ZipInfo(name, date_time=(2025, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_STORED
                info.external_attr = (stat.S_IFREG | 0o755) << 16
                with source.open("rb") as data, archive.open(info, "w", force_zip64=True) as out:
                    while chunk := data.read(1 << 20):
                        out.write(chunk)
            main = f"import sys\nfrom {entry_module} import main\nsys.exit(main({main_args}))\n"
            info = zipfile.ZipInfo("__main__.py", date_time=(2025, 1, 1, 0, 0, 0))
            archive.writestr(info, main)
    partial.chmod(partial.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    partial.replace(target)
    return target


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def write_checksums(folder: Path, names: list[str], arch: str = "amd64") -> Path:
    """``sha256sum-<arch>.txt`` in the layout of K3s release assets."""
    lines = [f"{sha256_of(folder / name)}  {name}" for name in names]
    checksum = folder / f"sha256sum-{arch}.txt"
    checksum.write_text("\n".join(lines) + "\n")
    return checksum


def build_k3s_artifacts(
    folder: Path,
    version: str,
    binaries: dict[str, Path] | None = None,
    files: dict[str, Path] | None = None,
) -> Path:
    """An air-gap folder for the K3s stand-in: ``k3s`` and ``sha256sum-amd64.txt``. Like the
    real ``k3s``, the file carries the programs it runs (``binaries``: name -> file) and their
    data files (``files``: path under the payload -> file), which it unpacks into its data
    folder on first start. An unchanged folder is left as it is (the archive is large)."""
    folder.mkdir(parents=True, exist_ok=True)
    payload = {f"{PAYLOAD_PREFIX}{BIN}/{name}": path for name, path in (binaries or {}).items()}
    payload |= {f"{PAYLOAD_PREFIX}{name}": path for name, path in (files or {}).items()}
    inputs = hashlib.sha256(version.encode())
    for path in _files():
        inputs.update(path.read_bytes())
    for name, path in sorted(payload.items()):
        info = path.stat()
        inputs.update(f"{name} {path} {info.st_size} {info.st_mtime_ns}\n".encode())
    stamp = folder / ".inputs"
    if stamp.is_file() and stamp.read_text() == inputs.hexdigest() and (folder / "k3s").is_file():
        return folder
    build_zipapp(folder / "k3s", "kubani.lab.k3s.main", f"version={version!r}", payload)
    write_checksums(folder, ["k3s"])
    stamp.write_text(inputs.hexdigest())
    return folder


FLUX_VERSION = "v2.4.0"
# Controller images of that Flux release (what its install.yaml deploys).
FLUX_CONTROLLERS = {
    "source-controller": "ghcr.io/fluxcd/source-controller:v1.4.1",
    "kustomize-controller": "ghcr.io/fluxcd/kustomize-controller:v1.4.0",
    "helm-controller": "ghcr.io/fluxcd/helm-controller:v1.1.0",
    "notification-controller": "ghcr.io/fluxcd/notification-controller:v1.4.0",
}


def flux_components(version: str = FLUX_VERSION) -> list[dict[str, object]]:
    """The objects of a Flux components manifest (``install.yaml``): namespace, CRDs with
    Kubani's Flux schemas, service accounts and the controllers' Deployments."""
    from kubani.gitops.flux_schema import custom_resource_definitions

    labels = {"app.kubernetes.io/part-of": "flux", "app.kubernetes.io/version": version}
    objects: list[dict[str, object]] = [
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": "flux-system", "labels": labels},
        }
    ]
    objects += custom_resource_definitions()
    for name, image in FLUX_CONTROLLERS.items():
        selector = {"app": name}
        objects.append(
            {
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {"name": name, "namespace": "flux-system", "labels": labels},
            }
        )
        objects.append(
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {
                    "name": name,
                    "namespace": "flux-system",
                    "labels": {**labels, "control-plane": "controller"},
                },
                "spec": {
                    "replicas": 1,
                    "selector": {"matchLabels": selector},
                    "template": {
                        "metadata": {"labels": selector},
                        "spec": {
                            "serviceAccountName": name,
                            "priorityClassName": "system-cluster-critical",
                            "containers": [
                                {
                                    "name": "manager",
                                    "image": image,
                                    "args": ["--watch-all-namespaces=true", "--log-level=info"],
                                    "resources": {
                                        "requests": {"cpu": "50m", "memory": "64Mi"},
                                        "limits": {"cpu": "1", "memory": "1Gi"},
                                    },
                                }
                            ],
                        },
                    },
                },
            }
        )
    return objects


def build_flux_manifest(folder: Path, version: str = FLUX_VERSION) -> Path:
    """The lab's ``install.yaml`` for the simulated Flux, with its sha256 beside it."""
    import yaml

    folder.mkdir(parents=True, exist_ok=True)
    target = folder / "install.yaml"
    header = (
        f"# Flux {version} components for the Kubani lab: the release's objects, whose\n"
        "# controllers the K3s stand-in simulates (see kubani/lab/README.md).\n"
    )
    text = header + "---\n".join(
        yaml.safe_dump(obj, sort_keys=False) for obj in flux_components(version)
    )
    if not target.exists() or target.read_text() != text:
        target.write_text(text)
    write_checksums(folder, ["install.yaml"])
    return target
