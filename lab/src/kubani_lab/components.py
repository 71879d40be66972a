"""Real programs the lab runs, built from pinned Go modules into a per-machine cache.

Each component is a small Go module under ``lab/components/<name>/`` whose ``go.mod`` pins
exact versions and whose ``go.sum`` is the checksum of every module it builds from, as an
air-gap download is checked against its sums. ``go build`` refuses a module whose content
does not match ``go.sum``. The binaries land in ``<home>/cache/<name>-<key>/``, where the key
covers ``go.mod``, ``go.sum``, the Go toolchain and the target, so labs and test runs on one
machine share one build and a changed pin builds again.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from kubani_lab.host import LabError

COMPLETE_MARKER = ".complete"


@dataclass(frozen=True)
class Component:
    name: str
    packages: tuple[str, ...]  # Go import paths of the commands, each becomes one binary
    # Release builds stamp their version into these variables (a plain `go build` of a
    # dependency cannot know it); they get the pinned module's version, as a release has.
    module: str = ""
    version_variables: tuple[str, ...] = ()
    # "variable=template" stamps; the template may use {version}, {major}, {minor}.
    stamps: tuple[str, ...] = ()
    # cgo for a C dependency (kine's SQLite); the binary is still linked statically so that
    # it runs on any node image.
    cgo: bool = False
    tags: tuple[str, ...] = ()
    cflags: str = ""  # CGO_CFLAGS
    # Files shipped inside a pinned module that the lab uses as they are (CRD manifests,
    # KWOK's stages): (module path, glob under it), copied into ``assets/`` beside the
    # binaries, so they come from the same checked source as the programs.
    assets: tuple[tuple[str, str], ...] = ()

    @property
    def recipe(self) -> str:
        """What the cache key covers of the definition (fields left at their defaults are
        left out, so that adding a field does not rebuild every existing cache)."""
        base = (
            f"Component(name={self.name!r}, packages={self.packages!r}, module={self.module!r}, "
            f"version_variables={self.version_variables!r})"
        )
        extras = {
            "stamps": self.stamps,
            "cgo": self.cgo,
            "tags": self.tags,
            "cflags": self.cflags,
            "assets": self.assets,
        }
        return base + "".join(f" {k}={v!r}" for k, v in extras.items() if v)

    @property
    def binaries(self) -> tuple[str, ...]:
        return tuple(package.rsplit("/", 1)[-1] for package in self.packages)


TAILSCALE = Component(
    "tailscale",
    ("tailscale.com/cmd/tailscale", "tailscale.com/cmd/tailscaled"),
    module="tailscale.com",
    version_variables=("tailscale.com/version.longStamp", "tailscale.com/version.shortStamp"),
)
HEADSCALE = Component("headscale", ("github.com/juanfont/headscale/cmd/headscale",))
# The K3s stand-in's Kubernetes: one multi-call binary (as K3s is) with kube-apiserver,
# kube-controller-manager, kube-scheduler, kubectl, etcd and kine, stamped as K3s stamps it.
KUBERNETES = Component(
    "kubernetes",
    ("kubani.dev/lab/kubernetes/kube-components",),
    module="k8s.io/kubernetes",
    stamps=tuple(
        f"{package}.{variable}"
        for package in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version")
        for variable in (
            "gitVersion=v{version}+k3s1",
            "gitMajor={major}",
            "gitMinor={minor}",
            "gitTreeState=clean",
            "gitCommit=0000000000000000000000000000000000000000",
            "buildDate=1970-01-01T00:00:00Z",
        )
    ),
    cgo=True,
    tags=("osusergo", "netgo", "sqlite_omit_load_extension"),
    # As K3s builds its SQLite: kine reads the database size through the dbstat table.
    cflags="-DSQLITE_ENABLE_DBSTAT_VTAB=1 -DSQLITE_USE_ALLOCA=1",
)
# Simulated kubelets: KWOK keeps the nodes' status and the pods' lifecycle.
KWOK = Component(
    "kwok",
    ("sigs.k8s.io/kwok/cmd/kwok",),
    assets=tuple(
        ("sigs.k8s.io/kwok", f"kustomize/stage/{stage}")
        for stage in (
            "node/fast/node-initialize.yaml",
            "node/heartbeat-with-lease/node-heartbeat-with-lease.yaml",
            "pod/fast/pod-*.yaml",
        )
    ),
)
# Flux's controllers, run for the Deployments of Flux's components manifest.
FLUX = Component(
    "flux",
    ("github.com/fluxcd/source-controller", "github.com/fluxcd/kustomize-controller"),
    assets=tuple(
        (f"github.com/fluxcd/{controller}", "config/crd/bases/*.yaml")
        for controller in ("source-controller", "kustomize-controller")
    ),
)
# What `lab build` makes ready.
COMPONENTS = (TAILSCALE, HEADSCALE, KUBERNETES, KWOK, FLUX)


def modules_root() -> Path:
    """The folder holding the components' Go modules (``lab/components`` of the checkout)."""
    override = os.environ.get("KUBANI_LAB_COMPONENTS")
    root = Path(override) if override else Path(__file__).resolve().parents[2] / "components"
    if not (root / TAILSCALE.name / "go.mod").is_file():
        raise LabError(
            "cannot find the lab's Go modules",
            f"{root} has no {TAILSCALE.name}/go.mod",
            "run the lab from a checkout of Kubani, or set KUBANI_LAB_COMPONENTS to its "
            "lab/components folder",
        )
    return root


def _go() -> str:
    go = shutil.which("go")
    if go is None:
        raise LabError(
            "the lab needs Go to build its real components",
            "`go` is not on PATH",
            "install Go 1.26 or newer (`apt-get install golang-go` where recent enough)",
        )
    return go


def _go_env(component: Component | None = None) -> dict[str, str]:
    # Never fetch another toolchain behind the user's back; static binaries for the nodes.
    cgo = "1" if component is not None and component.cgo else "0"
    cflags = {"CGO_CFLAGS": component.cflags} if component is not None and component.cflags else {}
    return {
        **os.environ,
        "GOTOOLCHAIN": "local",
        "CGO_ENABLED": cgo,
        "GOFLAGS": "-mod=readonly",
        **cflags,
    }


# Bump when the way components are built changes, so that caches built the old way are not used.
RECIPE = "2"


@functools.cache
def _toolchain() -> str:
    """The Go version and target (asked once per process: the lab asks often)."""
    return subprocess.run(
        [_go(), "env", "GOVERSION", "GOOS", "GOARCH"],
        capture_output=True,
        text=True,
        check=False,
        env=_go_env(),
    ).stdout


def cache_key(component: Component, module: Path) -> str:
    version = _toolchain()
    digest = hashlib.sha256(f"{RECIPE} {component.recipe} {version}".encode())
    for name in ("go.mod", "go.sum"):
        digest.update((module / name).read_bytes())
    for source in sorted(module.rglob("*.go")):  # a wrapper module's own commands
        digest.update(str(source.relative_to(module)).encode() + source.read_bytes())
    return digest.hexdigest()[:12]


def ensure_built(
    component: Component, cache: Path, say: Callable[[str], None] = lambda _m: None
) -> tuple[Path, float]:
    """The folder holding the component's binaries, built first if needed; also the seconds
    the build took (0 when it came from the cache)."""
    module = modules_root() / component.name
    target = cache / f"{component.name}-{cache_key(component, module)}"
    if (target / COMPLETE_MARKER).is_file():
        return target, 0.0
    started = time.monotonic()
    partial = cache / f".{target.name}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    say(f"{component.name}: downloading the pinned modules (checked against go.sum)")
    _run_go(component, module, ["mod", "download"], say)
    say(f"{component.name}: compiling {', '.join(component.binaries)} (first time on this machine)")
    ldflags = ["-s", "-w", *_stamps(component, module)]
    if component.cgo:
        ldflags += ["-linkmode=external", "-extldflags=-static"]
    tags = [f"-tags={','.join(component.tags)}"] if component.tags else []
    _run_go(
        component,
        module,
        [
            "build",
            "-v",
            "-trimpath",
            *tags,
            f"-ldflags={' '.join(ldflags)}",
            "-o",
            str(partial),
            *component.packages,
        ],
        say,
    )
    _copy_assets(component, module, partial / "assets")
    missing = [b for b in component.binaries if not (partial / b).is_file()]
    if missing:
        raise LabError(f"cannot build {component.name}", f"no {', '.join(missing)} built", None)
    (partial / COMPLETE_MARKER).write_text(time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    shutil.rmtree(target, ignore_errors=True)
    partial.rename(target)
    seconds = time.monotonic() - started
    say(f"{component.name}: built in {seconds:.0f} s, cached in {target}")
    return target, seconds


def _module_dir(module: Path, path: str) -> Path:
    listed = subprocess.run(
        [_go(), "list", "-m", "-f", "{{.Dir}}", path],
        cwd=module,
        capture_output=True,
        text=True,
        check=False,
        env=_go_env(),
    )
    folder = Path(listed.stdout.strip())
    if listed.returncode != 0 or not listed.stdout.strip() or not folder.is_dir():
        raise LabError(f"cannot find the source of {path}", listed.stderr.strip()[-300:], None)
    return folder


def _copy_assets(component: Component, module: Path, target: Path) -> None:
    for path, pattern in component.assets:
        source = _module_dir(module, path)
        found = sorted(source.glob(pattern))
        if not found:
            raise LabError(f"cannot build {component.name}", f"{path} has no {pattern}", None)
        for file in found:
            destination = target / path.rsplit("/", 1)[-1] / file.relative_to(source)
            destination.parent.mkdir(parents=True, exist_ok=True)
            destination.write_bytes(file.read_bytes())


def _stamps(component: Component, module: Path) -> list[str]:
    if not component.module or not (component.version_variables or component.stamps):
        return []
    listed = subprocess.run(
        [_go(), "list", "-m", "-f", "{{.Version}}", component.module],
        cwd=module,
        capture_output=True,
        text=True,
        check=False,
        env=_go_env(),
    )
    version = listed.stdout.strip().removeprefix("v")
    if listed.returncode != 0 or not version:
        raise LabError(
            f"cannot read the pinned version of {component.module}",
            listed.stderr.strip()[-300:],
            None,
        )
    major, minor, *_ = [*version.split("."), "", ""]
    stamps = [f"{variable}={version}" for variable in component.version_variables]
    stamps += [s.format(version=version, major=major, minor=minor) for s in component.stamps]
    return [f"-X '{stamp}'" for stamp in stamps]


def _run_go(
    component: Component, module: Path, args: list[str], say: Callable[[str], None]
) -> None:
    """Run go, turning its ``-v`` package lines into a progress count every few seconds."""
    process = subprocess.Popen(
        [_go(), *args],
        cwd=module,
        env=_go_env(component),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    built, last_said = 0, time.monotonic()
    tail: list[str] = []
    for line in process.stdout:
        tail = [*tail[-20:], line.rstrip()]
        if line and not line.startswith((" ", "\t", "#", "go:")):
            built += 1
        if time.monotonic() - last_said > 5:
            say(f"{component.name}: {built} packages compiled")
            last_said = time.monotonic()
    if process.wait() != 0:
        raise LabError(
            f"cannot build {component.name} ({' '.join(['go', *args[:1]])})",
            "\n".join(line for line in tail if line)[-1500:],
            "check that this machine reaches the Go module proxy, or that GOMODCACHE "
            "holds the pinned modules",
        )


def pinned_version(component: Component) -> str:
    """The version ``go.mod`` pins for the component's main module (without the ``v``)."""
    text = (modules_root() / component.name / "go.mod").read_text()
    found = re.search(rf"^\s*(?:require\s+)?{re.escape(component.module)}\s+v(\S+)", text, re.M)
    if not component.module or found is None:
        raise LabError(
            f"cannot read the pinned version of {component.name}",
            f"{component.name}/go.mod does not require {component.module or 'its module'}",
            None,
        )
    return found.group(1)
