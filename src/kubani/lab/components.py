"""Real programs the lab runs, built from pinned Go modules into a per-machine cache.

Each component is a small Go module under ``lab/components/<name>/`` whose ``go.mod`` pins
exact versions and whose ``go.sum`` is the checksum of every module it builds from, as an
air-gap download is checked against its sums. ``go build`` refuses a module whose content
does not match ``go.sum``. The binaries land in ``<home>/cache/<name>-<key>/``, where the key
covers ``go.mod``, ``go.sum``, the Go toolchain and the target, so labs and test runs on one
machine share one build and a changed pin builds again.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from kubani.lab.host import LabError

COMPLETE_MARKER = ".complete"


@dataclass(frozen=True)
class Component:
    name: str
    packages: tuple[str, ...]  # Go import paths of the commands, each becomes one binary
    # Release builds stamp their version into these variables (a plain `go build` of a
    # dependency cannot know it); they get the pinned module's version, as a release has.
    module: str = ""
    version_variables: tuple[str, ...] = ()

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
COMPONENTS = (TAILSCALE, HEADSCALE)


def modules_root() -> Path:
    """The folder holding the components' Go modules (``lab/components`` of the checkout)."""
    override = os.environ.get("KUBANI_LAB_COMPONENTS")
    root = Path(override) if override else Path(__file__).resolve().parents[3] / "lab/components"
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


def _go_env() -> dict[str, str]:
    # Never fetch another toolchain behind the user's back; static binaries for the nodes.
    return {**os.environ, "GOTOOLCHAIN": "local", "CGO_ENABLED": "0", "GOFLAGS": "-mod=readonly"}


# Bump when the way components are built changes, so that caches built the old way are not used.
RECIPE = "2"


def cache_key(component: Component, module: Path) -> str:
    version = subprocess.run(
        [_go(), "env", "GOVERSION", "GOOS", "GOARCH"],
        capture_output=True,
        text=True,
        check=False,
        env=_go_env(),
    ).stdout
    digest = hashlib.sha256(f"{RECIPE} {component!r} {version}".encode())
    for name in ("go.mod", "go.sum"):
        digest.update((module / name).read_bytes())
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
    ldflags = " ".join(["-s", "-w", *_stamps(component, module)])
    _run_go(
        component,
        module,
        [
            "build",
            "-v",
            "-trimpath",
            f"-ldflags={ldflags}",
            "-o",
            str(partial),
            *component.packages,
        ],
        say,
    )
    missing = [b for b in component.binaries if not (partial / b).is_file()]
    if missing:
        raise LabError(f"cannot build {component.name}", f"no {', '.join(missing)} built", None)
    (partial / COMPLETE_MARKER).write_text(time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    shutil.rmtree(target, ignore_errors=True)
    partial.rename(target)
    seconds = time.monotonic() - started
    say(f"{component.name}: built in {seconds:.0f} s, cached in {target}")
    return target, seconds


def _stamps(component: Component, module: Path) -> list[str]:
    if not component.module:
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
    return [f"-X {variable}={version}" for variable in component.version_variables]


def _run_go(
    component: Component, module: Path, args: list[str], say: Callable[[str], None]
) -> None:
    """Run go, turning its ``-v`` package lines into a progress count every few seconds."""
    process = subprocess.Popen(
        [_go(), *args],
        cwd=module,
        env=_go_env(),
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
