"""The real Flux controllers (source-controller, kustomize-controller, from the pinned build)
against the lab's real control plane: a Git repository is fetched, built and applied, and
what leaves the repository is pruned."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from kubani_lab.components import FLUX, ensure_built
from kubani_lab.k3s.control import ControlPlane
from kubani_lab.lab import DEFAULT_HOME
from tests.lab.components_fixtures import control_plane, free_port, get, kubectl, wait_for
from tests.lab.git_http import GitHTTPServer

pytestmark = pytest.mark.components

__all__ = ["control_plane"]  # the module-scoped control plane fixture


def git(folder: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=lab", "-c", "user.email=lab@lab.kubani.test", *args],
        cwd=folder, check=True, capture_output=True,
    )  # fmt: skip


@pytest.fixture(scope="module")
def flux(control_plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    binaries, _ = ensure_built(FLUX, DEFAULT_HOME / "cache")
    crds = binaries / "assets"
    done = kubectl(control_plane, "apply", "--server-side", "-R", "-f", str(crds))
    assert done.returncode == 0, done.stderr
    assert kubectl(control_plane, "create", "namespace", "flux-system").returncode == 0
    folder = tmp_path_factory.mktemp("flux")
    environment = {"KUBECONFIG": str(control_plane.files.kubeconfig("admin")),
                   "RUNTIME_NAMESPACE": "flux-system", "PATH": "/usr/bin:/bin"}  # fmt: skip
    storage = free_port()
    (folder / "data").mkdir()  # the pod's emptyDir

    def common() -> list[str]:  # each controller its own ports
        return ["--enable-leader-election=false", f"--metrics-addr=127.0.0.1:{free_port()}",
                f"--health-addr=127.0.0.1:{free_port()}", "--log-level=info"]  # fmt: skip

    processes = [
        subprocess.Popen(
            [str(binaries / "source-controller"), *common(), f"--storage-path={folder / 'data'}",
             f"--storage-addr=127.0.0.1:{storage}", f"--storage-adv-addr=127.0.0.1:{storage}"],
            env=environment, stdout=(folder / "source.log").open("wb"), stderr=subprocess.STDOUT,
        ),
        subprocess.Popen(
            [str(binaries / "kustomize-controller"), *common()],
            env=environment, stdout=(folder / "kustomize.log").open("wb"),
            stderr=subprocess.STDOUT,
        ),
    ]  # fmt: skip
    try:
        yield folder
    finally:
        for process in processes:
            process.terminate()
            process.wait(20)


def _ready(plane: ControlPlane, kind: str) -> bool:
    obj = get(plane, kind, "-n", "flux-system", "lab")
    conditions = (obj.get("status") or {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def _wait_ready(plane: ControlPlane, kind: str, flux: Path, what: str) -> None:
    """Until the ``lab`` object of ``kind`` is Ready; a timeout shows its status and the
    controllers' last log lines (a CI run once saw the source never reconciled)."""
    try:
        wait_for(what, lambda: _ready(plane, kind), 120)
    except AssertionError as timed_out:
        status = get(plane, kind, "-n", "flux-system", "lab").get("status")
        logs = {name: (flux / name).read_text(errors="replace").splitlines()[-15:]
                for name in ("source.log", "kustomize.log")}  # fmt: skip
        raise AssertionError(f"{timed_out}; status {status}; logs {json.dumps(logs)}") from None


def test_flux_applies_the_repository_and_prunes_what_leaves_it(
    control_plane: ControlPlane, flux: Path, tmp_path: Path
) -> None:
    root = tmp_path / "git"
    (root / "lab.git").mkdir(parents=True)
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(root / "lab.git")], check=True)
    work = tmp_path / "work"
    (work / "apps").mkdir(parents=True)
    for name in ("one", "two"):
        (work / "apps" / f"{name}.yaml").write_text(
            f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}, namespace: default}}\n"
        )
    git(work, "init", "-q", "-b", "main")
    git(work, "add", ".")
    git(work, "commit", "-qm", "two apps")
    server = GitHTTPServer(root)
    git(work, "push", "-q", str(root / "lab.git"), "main")
    try:
        source = {
            "apiVersion": "source.toolkit.fluxcd.io/v1",
            "kind": "GitRepository",
            "metadata": {"name": "lab", "namespace": "flux-system"},
            "spec": {"interval": "5s", "url": server.url("lab.git"), "ref": {"branch": "main"}},
        }
        sync = {
            "apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
            "metadata": {"name": "lab", "namespace": "flux-system"},
            "spec": {"interval": "5s", "path": "./apps", "prune": True,
                     "sourceRef": {"kind": "GitRepository", "name": "lab"}},
        }  # fmt: skip
        for obj in (source, sync):
            done = kubectl(control_plane, "apply", "-f", "-", stdin=json.dumps(obj))
            assert done.returncode == 0, done.stderr
        _wait_ready(control_plane, "gitrepository", flux, "the source to be Ready")
        _wait_ready(control_plane, "kustomization", flux, "the sync to be Ready")
        applied = get(control_plane, "configmap", "one")
        assert applied["metadata"]["labels"]["kustomize.toolkit.fluxcd.io/name"] == "lab"
        assert get(control_plane, "configmap", "two")["metadata"]["name"] == "two"
        (work / "apps" / "two.yaml").unlink()
        git(work, "commit", "-qam", "two leaves")
        git(work, "push", "-q", str(root / "lab.git"), "main")
        wait_for(
            "the app that left the repository to be pruned",
            lambda: kubectl(control_plane, "get", "configmap", "two").returncode != 0,
            120,
        )
        assert get(control_plane, "configmap", "one")["metadata"]["name"] == "one"
    finally:
        server.shutdown()
