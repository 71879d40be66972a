"""Stand-in executables as self-contained Python zipapps, laid out like release downloads.

A K3s air-gap install takes ``k3s`` plus ``sha256sum-amd64.txt`` from a local folder and
checks the sum; the lab's stand-ins are delivered the same way.
"""

from __future__ import annotations

import fcntl
import hashlib
import shutil
import stat
import time
import zipfile
from pathlib import Path
from typing import Any

import kubani
import kubani_lab
from kubani_lab.k3s.payload import BIN, PAYLOAD_PREFIX
from kubani_lab.k3s.podruntime import FLUX_CONTROLLER_TAG, FLUX_IMAGES

# What the stand-ins may import (stdlib + python3-yaml/cryptography besides): their own
# packages, and the one product module they share (quantities); folders of each package's
# root, by archive name.
_INCLUDED = (
    (Path(kubani.__file__).parent, "kubani", ("__init__.py", "quantity.py")),
    (Path(kubani_lab.__file__).parent, "kubani_lab", ("__init__.py", "standins", "k3s")),
)
_SHEBANG = b"#!/usr/bin/python3\n"
# The carried programs are compressed, as K3s compresses its own payload: a third of the
# bytes to copy to and checksum on every node. Level 1: within a few percent of the
# smallest deflate, at a third of its build time; a node inflates it once, on first start.
PAYLOAD_COMPRESSLEVEL = 1
# Built K3s archives kept in a lab cache (each is about 140 MB), the newest first.
KEEP_CACHED_ARCHIVES = 4


def _files() -> list[tuple[str, Path]]:
    """The node-side modules: (name in the archive, file)."""
    found: list[tuple[str, Path]] = []
    for root, package, entries in _INCLUDED:
        for entry in entries:
            path = root / entry
            paths = sorted(path.rglob("*.py")) if path.is_dir() else [path]
            found += [(f"{package}/{p.relative_to(root).as_posix()}", p) for p in paths]
    return found


def build_zipapp(
    target: Path, entry_module: str, main_args: str = "", payload: dict[str, Path] | None = None
) -> Path:
    """Write an executable zipapp whose ``__main__`` runs ``entry_module.main(main_args)``;
    ``payload`` files (name in the archive -> file) are stored alongside, compressed."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial")
    with partial.open("wb") as handle:
        handle.write(_SHEBANG)
        with zipfile.ZipFile(handle, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for name, path in _files():
                info = zipfile.ZipInfo(name, date_time=(2025, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(info, path.read_bytes())
            for name, source in sorted((payload or {}).items()):
                archive.write(source, name, compresslevel=PAYLOAD_COMPRESSLEVEL)
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


# Payload files up to this size count in an archive's cache key by their content; larger
# ones (the component builds in the shared cache) by path, size and time.
_HASHED_BY_CONTENT = 1 << 20


def build_k3s_artifacts(
    folder: Path,
    version: str,
    binaries: dict[str, Path] | None = None,
    files: dict[str, Path] | None = None,
    cache: Path | None = None,
) -> Path:
    """An air-gap folder for the K3s stand-in: ``k3s`` and ``sha256sum-amd64.txt``. Like the
    real ``k3s``, the file carries the programs it runs (``binaries``: name -> file) and their
    data files (``files``: path under the payload -> file), which it unpacks into its data
    folder on first start. An unchanged folder is left as it is (the archive is large); with
    a ``cache``, an archive built from the same inputs for another lab is copied instead."""
    folder.mkdir(parents=True, exist_ok=True)
    payload = {f"{PAYLOAD_PREFIX}{BIN}/{name}": path for name, path in (binaries or {}).items()}
    payload |= {f"{PAYLOAD_PREFIX}{name}": path for name, path in (files or {}).items()}
    inputs = hashlib.sha256(f"{version} level {PAYLOAD_COMPRESSLEVEL}".encode())
    for name, path in _files():
        inputs.update(f"{name}\n".encode() + path.read_bytes())
    for name, path in sorted(payload.items()):
        info = path.stat()
        if info.st_size <= _HASHED_BY_CONTENT:  # a lab's own small files (the shim) by content:
            inputs.update(f"{name}\n".encode() + path.read_bytes())  # one archive for all labs
        else:
            inputs.update(f"{name} {path} {info.st_size} {info.st_mtime_ns}\n".encode())
    key = inputs.hexdigest()
    stamp = folder / ".inputs"
    if stamp.is_file() and stamp.read_text() == key and (folder / "k3s").is_file():
        return folder
    if cache is None:
        _build_release(folder, version, payload)
    else:
        built = _cached_release(cache, key[:16], version, payload)
        for name in ("k3s", "sha256sum-amd64.txt"):
            partial = folder / f".{name}.partial"
            shutil.copy2(built / name, partial)
            partial.replace(folder / name)
    stamp.write_text(key)
    return folder


def _build_release(folder: Path, version: str, payload: dict[str, Path]) -> None:
    build_zipapp(folder / "k3s", "kubani_lab.k3s.main", f"version={version!r}", payload)
    write_checksums(folder, ["k3s"])


def _cached_release(cache: Path, key: str, version: str, payload: dict[str, Path]) -> Path:
    """The cache's release folder for these inputs, built under a lock when missing (labs
    booted side by side need the same one)."""
    cache.mkdir(parents=True, exist_ok=True)
    target = cache / f"k3s-{key}"
    with (cache / f".k3s-{key}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (target / "k3s").is_file():
            partial = cache / f".k3s-{key}.partial"
            shutil.rmtree(partial, ignore_errors=True)
            _build_release(partial, version, payload)
            partial.rename(target)
        target.touch()
    _prune_releases(cache, keep=target)
    return target


def _prune_releases(cache: Path, keep: Path) -> None:
    """Old archives go, newest kept; one used in the last day stays (another lab's)."""
    found = sorted(cache.glob("k3s-*"), key=lambda p: p.stat().st_mtime, reverse=True)
    day_ago = time.time() - 86400
    for old in found[KEEP_CACHED_ARCHIVES:]:
        if old != keep and old.stat().st_mtime < day_ago:
            shutil.rmtree(old, ignore_errors=True)
            (cache / f".{old.name}.lock").unlink(missing_ok=True)


# The Flux line whose controllers the lab builds (source- and kustomize-controller v1.9.x
# ship with Flux v2.9), installed as `flux install --components=source-controller,
# kustomize-controller` would: only the controllers the lab runs.
FLUX_VERSION = "v2.9"
FLUX_NAMESPACE = "flux-system"
_FLUX_LABELS = {"app.kubernetes.io/part-of": "flux", "app.kubernetes.io/instance": FLUX_NAMESPACE}
_EVENTS = f"--events-addr=http://notification-controller.{FLUX_NAMESPACE}.svc.cluster.local./"
# Each controller's arguments, as in Flux's own manifests.
_FLUX_ARGS = {
    "source-controller": [
        _EVENTS, "--watch-all-namespaces=true", "--log-level=info", "--log-encoding=json",
        "--enable-leader-election", "--storage-path=/data",
        "--storage-adv-addr=source-controller.$(RUNTIME_NAMESPACE).svc.cluster.local.",
    ],
    "kustomize-controller": [
        _EVENTS, "--watch-all-namespaces=true", "--log-level=info", "--log-encoding=json",
        "--enable-leader-election",
    ],
}  # fmt: skip


def _flux_rbac(controllers: list[str]) -> list[dict[str, Any]]:
    """Flux's crd-controller role (its own resources, leader election, events, reading
    Secrets and ConfigMaps) for every controller, and cluster-admin for the one that applies
    what the repository holds (cluster-reconciler)."""
    subjects = [
        {"kind": "ServiceAccount", "name": name, "namespace": FLUX_NAMESPACE}
        for name in controllers
    ]
    role = f"crd-controller-{FLUX_NAMESPACE}"
    return [
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": role, "labels": _FLUX_LABELS},
            "rules": [
                {"apiGroups": ["source.toolkit.fluxcd.io", "kustomize.toolkit.fluxcd.io"],
                 "resources": ["*"], "verbs": ["*"]},
                {"apiGroups": [""], "resources": ["namespaces", "secrets", "configmaps",
                                                  "serviceaccounts"],
                 "verbs": ["get", "list", "watch"]},
                {"apiGroups": [""], "resources": ["events"], "verbs": ["create", "patch"]},
                {"apiGroups": [""], "resources": ["configmaps"],
                 "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]},
                {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
                 "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]},
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": role, "labels": _FLUX_LABELS},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                        "name": role},
            "subjects": subjects,
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": f"cluster-reconciler-{FLUX_NAMESPACE}", "labels": _FLUX_LABELS},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                        "name": "cluster-admin"},
            "subjects": [s for s in subjects if s["name"] == "kustomize-controller"],
        },
    ]  # fmt: skip


def _flux_deployment(name: str, image: str) -> dict[str, Any]:
    selector = {"app": name}
    container: dict[str, Any] = {
        "name": "manager",
        "image": image,
        "args": _FLUX_ARGS[name],
        "env": [{"name": "RUNTIME_NAMESPACE",
                 "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}}],
        "ports": [{"containerPort": 8080, "name": "http-prom"},
                  {"containerPort": 9440, "name": "healthz"}],
        "resources": {"requests": {"cpu": "50m", "memory": "64Mi"},
                      "limits": {"cpu": "1", "memory": "1Gi"}},
        "volumeMounts": [{"name": "temp", "mountPath": "/tmp"}],
    }  # fmt: skip
    volumes: list[dict[str, Any]] = [{"name": "temp", "emptyDir": {}}]
    if name == "source-controller":
        container["ports"].append({"containerPort": 9090, "name": "http"})
        container["volumeMounts"].append({"name": "data", "mountPath": "/data"})
        volumes.append({"name": "data", "emptyDir": {}})
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": name,
            "namespace": FLUX_NAMESPACE,
            "labels": {
                **_FLUX_LABELS,
                "app.kubernetes.io/component": name,
                "control-plane": "controller",
            },
        },
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {"labels": selector},
                "spec": {
                    "serviceAccountName": name,
                    "priorityClassName": "system-cluster-critical",
                    "terminationGracePeriodSeconds": 10,
                    "containers": [container],
                    "volumes": volumes,
                },
            },
        },
    }


def flux_components(crd_files: list[Path]) -> list[dict[str, Any]]:
    """The objects of a Flux components manifest (``install.yaml``) for the controllers the
    lab runs: namespace, the controllers' own CRDs, service accounts, RBAC, the
    source-controller's Service and the Deployments."""
    import yaml

    objects: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "Namespace",
         "metadata": {"name": FLUX_NAMESPACE, "labels": _FLUX_LABELS}},
    ]  # fmt: skip
    for path in sorted(crd_files, key=lambda p: p.name):
        objects += [d for d in yaml.safe_load_all(path.read_text()) if d]
    controllers = sorted(FLUX_IMAGES.values())
    objects += [
        {"apiVersion": "v1", "kind": "ServiceAccount",
         "metadata": {"name": name, "namespace": FLUX_NAMESPACE, "labels": _FLUX_LABELS}}
        for name in controllers
    ]  # fmt: skip
    objects += _flux_rbac(controllers)
    objects.append(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {
                "name": "source-controller",
                "namespace": FLUX_NAMESPACE,
                "labels": _FLUX_LABELS,
            },
            "spec": {
                "type": "ClusterIP",
                "selector": {"app": "source-controller"},
                "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": "http"}],
            },
        }
    )
    objects += [
        _flux_deployment(name, f"{repository}:{tag}")
        for repository, name in FLUX_IMAGES.items()
        for tag in [FLUX_CONTROLLER_TAG]
    ]
    return objects


def build_flux_manifest(folder: Path, crd_files: list[Path]) -> Path:
    """The lab's ``install.yaml`` (the release's objects for the controllers the K3s stand-in
    runs), with its sha256 beside it."""
    import yaml

    folder.mkdir(parents=True, exist_ok=True)
    target = folder / "install.yaml"
    header = (
        f"# Flux {FLUX_VERSION} components for the Kubani lab (source-controller and\n"
        f"# kustomize-controller {FLUX_CONTROLLER_TAG}); the K3s stand-in runs the real\n"
        "# controllers for these Deployments (see kubani_lab/README.md).\n"
    )
    text = header + "---\n".join(
        yaml.safe_dump(obj, sort_keys=False) for obj in flux_components(crd_files)
    )
    if not target.exists() or target.read_text() != text:
        target.write_text(text)
    write_checksums(folder, ["install.yaml"])
    return target


# The defaults file Tailscale's static release ships (systemd/tailscaled.defaults).
TAILSCALED_DEFAULTS = """# Set the port to listen on for incoming VPN packets.
# Remote nodes will automatically be informed about the new port number,
# but you might want to configure this in order to set external firewall
# settings.
PORT="41641"

# Extra flags you might want to pass to tailscaled.
FLAGS=""
"""


def build_tailscale_release(
    folder: Path, binaries: Path, version: str, unit: str, arch: str = "amd64"
) -> Path:
    """Tailscale's static Linux release as pkgs.tailscale.com publishes it, from the lab's
    own build: ``tailscale_<version>_<arch>.tgz`` (``tailscale``, ``tailscaled``,
    ``systemd/tailscaled.service``, ``systemd/tailscaled.defaults`` in a folder of the same
    name) and its ``.sha256``: an air-gap folder for the tailscale_install role. Rebuilt only
    when the binaries change."""
    import io
    import tarfile

    name = f"tailscale_{version}_{arch}"
    archive = folder / f"{name}.tgz"
    inputs = hashlib.sha256(unit.encode())
    for binary in ("tailscale", "tailscaled"):
        info = (binaries / binary).stat()
        inputs.update(f"{binaries / binary} {info.st_size} {info.st_mtime_ns}\n".encode())
    stamp = folder / ".inputs"
    if stamp.is_file() and stamp.read_text() == inputs.hexdigest() and archive.is_file():
        return archive
    folder.mkdir(parents=True, exist_ok=True)
    partial = folder / f".{name}.tgz.partial"
    with tarfile.open(partial, "w:gz", compresslevel=1) as tar:
        for binary in ("tailscale", "tailscaled"):
            tar.add(binaries / binary, f"{name}/{binary}")
        systemd = {"tailscaled.service": unit, "tailscaled.defaults": TAILSCALED_DEFAULTS}
        for member, text in systemd.items():
            data = text.encode()
            entry = tarfile.TarInfo(f"{name}/systemd/{member}")
            entry.size, entry.mode, entry.mtime = len(data), 0o644, int(time.time())
            tar.addfile(entry, io.BytesIO(data))
    partial.replace(archive)
    (folder / f"{name}.tgz.sha256").write_text(sha256_of(archive) + "\n")
    stamp.write_text(inputs.hexdigest())
    return archive
