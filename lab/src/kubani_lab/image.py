"""The lab's Debian bookworm root filesystem, built once with debootstrap and cached."""

from __future__ import annotations

import fcntl
import hashlib
import re
import shutil
import time
from pathlib import Path

from kubani_lab.host import run

SUITE = "bookworm"
# Everything the roles install or use, so that package tasks find it present (nodes have
# no route to any mirror).
PACKAGES = (
    "systemd",
    "systemd-sysv",
    "dbus",
    "openssh-server",
    "sudo",
    "python3",
    "python3-apt",
    "python3-yaml",
    "python3-cryptography",
    "python3-cffi-backend",
    "iproute2",
    "iputils-ping",
    "netcat-openbsd",
    "ca-certificates",
    "curl",
    "kmod",
    "procps",
    "nftables",
    "systemd-timesyncd",
    # Logins register with logind (as on a desktop Debian): the workstation guard reads them.
    "libpam-systemd",
    "less",
    "git",  # the lab's Git server and the simulated Flux source-controller
)
COMPLETE_MARKER = ".kubani-image-complete"


def host_mirror() -> str:
    """The Debian mirror that apt on this machine uses."""
    candidates = [Path("/etc/apt/sources.list.d/debian.sources"), Path("/etc/apt/sources.list")]
    for path in candidates:
        if not path.exists():
            continue
        text = path.read_text()
        match = re.search(r"^URIs:\s*(\S+/debian)/?\s*$", text, re.M) or re.search(
            r"^deb\s+(?:\[[^]]*\]\s+)?(\S+/debian)/?\s+\S+", text, re.M
        )
        if match:
            return match.group(1)
    return "http://deb.debian.org/debian"


def image_key(packages: tuple[str, ...] = PACKAGES) -> str:
    return hashlib.sha256(" ".join((SUITE, *sorted(packages))).encode()).hexdigest()[:12]


def ensure_image(cache: Path, mirror: str | None = None) -> tuple[Path, float]:
    """The cached root filesystem, building it first if needed; also the build seconds."""
    root = cache / f"{SUITE}-{image_key()}"
    if (root / COMPLETE_MARKER).exists():
        return root, 0.0
    cache.mkdir(parents=True, exist_ok=True)
    # One build at a time: labs that come up together (test workers) wait for the first.
    with (cache / ".build.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (root / COMPLETE_MARKER).exists():
            return root, 0.0
        return root, _build(root, cache, mirror)


def _build(root: Path, cache: Path, mirror: str | None) -> float:
    started = time.monotonic()
    partial = cache / f".{root.name}.partial"
    if partial.exists():
        shutil.rmtree(partial)
    run(
        [
            "debootstrap",
            "--variant=minbase",
            f"--include={','.join(PACKAGES)}",
            SUITE,
            str(partial),
            mirror or host_mirror(),
        ],
        "cannot build the lab image with debootstrap",
        timeout=1800,
    )
    _prepare(partial)
    (partial / COMPLETE_MARKER).write_text(time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    if root.exists():
        shutil.rmtree(root)
    partial.rename(root)
    return time.monotonic() - started


def _prepare(rootfs: Path) -> None:
    """Settings every lab node shares: sshd for key login as root, no machine identity."""
    run(["chroot", str(rootfs), "systemctl", "enable", "ssh"], "cannot enable sshd in the image")
    sshd = rootfs / "etc/ssh/sshd_config.d/kubani-lab.conf"
    sshd.write_text("PermitRootLogin prohibit-password\nPasswordAuthentication no\nUseDNS no\n")
    # Host keys and machine-id are made per node at first boot.
    for key in (rootfs / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    (rootfs / "etc/machine-id").write_text("")
    for unit in (
        "systemd-networkd-wait-online.service",
        "apt-daily.timer",
        "apt-daily-upgrade.timer",
        "e2scrub_all.timer",
        "fstrim.timer",
    ):
        run(["chroot", str(rootfs), "systemctl", "mask", unit], "cannot mask a unit", check=False)
    keygen = rootfs / "etc/systemd/system/kubani-ssh-keygen.service"
    keygen.write_text(
        "[Unit]\nDescription=Create SSH host keys\nBefore=ssh.service\n"
        "ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key\n\n"
        "[Service]\nType=oneshot\nExecStart=/usr/bin/ssh-keygen -A\n\n"
        "[Install]\nWantedBy=multi-user.target\n"
    )
    run(
        ["chroot", str(rootfs), "systemctl", "enable", "kubani-ssh-keygen.service"],
        "cannot enable host key creation",
    )
