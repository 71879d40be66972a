"""What K3s's container runtime and pod network leave on a node, left by the stand-in too, so
that Kubani's killall and uninstall scripts are proven to remove them (K3s's own scripts do):

- a containerd shim (``data/<hash>/bin/containerd-shim-runc-v2``) with the pod sandbox's
  process under it, in a session of its own, so it outlives K3s (the unit's
  ``KillMode=process``);
- the sandbox's ``shm`` mount under ``/run/k3s/containerd``;
- flannel's devices: the ``cni0`` bridge with a pod's veth on it and the ``flannel.1``
  VXLAN device;
- the packet filter state of kube-proxy and flannel (their nftables tables) and the CNI
  plugins' state under ``/var/lib/cni``.

Pods are not run (KWOK keeps their status); one sandbox stands for them.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from kubani_lab.k3s.shim import CONTAINERD_SOCKET, NAMESPACE, SHIM

SANDBOX_ID = "0" * 56 + "kubani01"
SANDBOXES = Path("/run/k3s/containerd/io.containerd.grpc.v1.cri/sandboxes")
CNI_STATE = Path("/var/lib/cni/networks/cbr0")
NFT_TABLES = (("ip", "kube-proxy"), ("ip6", "kube-proxy"), ("ip", "flannel-ipv4"))
VXLAN_PORT = 8472


class TraceError(RuntimeError):
    """A trace could not be made (the node lacks a device type, a mount is refused)."""


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(command), capture_output=True, text=True, check=False, timeout=30)


def _must(*command: str) -> None:
    done = _run(*command)
    if done.returncode != 0:
        raise TraceError(f"{' '.join(command)}: {done.stderr.strip()[-300:]}")


def _shim_running(bin_dir: Path) -> bool:
    pattern = f"{bin_dir.parent.parent}/[^/]*/bin/{SHIM} .*-id {SANDBOX_ID}"
    return _run("pgrep", "-f", pattern).returncode == 0


def start_sandbox_shim(bin_dir: Path) -> None:
    """The sandbox's shim and its child, detached from K3s (once per boot)."""
    if not (bin_dir / SHIM).is_file() or _shim_running(bin_dir):
        return
    subprocess.Popen(
        [str(bin_dir / SHIM), "-namespace", NAMESPACE, "-id", SANDBOX_ID,
         "-address", CONTAINERD_SOCKET],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip


def mount_sandbox_shm() -> None:
    target = SANDBOXES / SANDBOX_ID / "shm"
    if _run("mountpoint", "-q", str(target)).returncode == 0:
        return
    target.mkdir(parents=True, exist_ok=True)
    _must("mount", "-t", "tmpfs", "-o", "size=65536k", "shm", str(target))


def _exists(device: str) -> bool:
    return _run("ip", "link", "show", device).returncode == 0


def make_devices(node_ip: str) -> None:
    if not _exists("cni0"):
        _must("ip", "link", "add", "cni0", "type", "bridge")
        _must("ip", "link", "set", "cni0", "up")
    pod_side = "veth" + SANDBOX_ID[-8:]
    if not _exists(pod_side):
        _must("ip", "link", "add", pod_side, "type", "veth", "peer", "name", "eth-sandbox")
        _must("ip", "link", "set", pod_side, "master", "cni0")
    if not _exists("flannel.1"):
        _must("ip", "link", "add", "flannel.1", "type", "vxlan", "id", "1", "local", node_ip,
              "dstport", str(VXLAN_PORT), "nolearning")  # fmt: skip


def make_filter_tables() -> None:
    for family, table in NFT_TABLES:
        _must("nft", "add", "table", family, table)
        _must("nft", "add", "chain", family, table, "services")


def write_cni_state(pod_ip: str = "10.42.0.2") -> None:
    CNI_STATE.mkdir(parents=True, exist_ok=True)
    (CNI_STATE / pod_ip).write_text(f"{SANDBOX_ID}\neth0")
    (CNI_STATE / "last_reserved_ip.0").write_text(pod_ip)


def leave_runtime_traces(bin_dir: Path, node_ip: str) -> None:
    start_sandbox_shim(bin_dir)
    mount_sandbox_shm()
    make_devices(node_ip)
    make_filter_tables()
    write_cni_state()
