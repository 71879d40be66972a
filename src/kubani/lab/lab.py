"""A lab: N Debian hosts booted with systemd-nspawn, each in its own network namespace with a
``tailscale0`` on a shared bridge at a 100.64.x.x address.

Everything a lab owns lives under its folder (state, SSH key, node root filesystems, the
tailnet file, the inventory it writes); ``down`` removes all of it and is safe to repeat.
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from kubani.lab import network
from kubani.lab.artifacts import (
    FLUX_VERSION,
    build_flux_manifest,
    build_k3s_artifacts,
    build_zipapp,
)
from kubani.lab.host import LabError, require_lab_host, run
from kubani.lab.image import ensure_image
from kubani.lab.network import LabNames
from kubani.lab.standins.tailscale_cli import serialise
from kubani.lab.tailnet import TailnetDevice

DEFAULT_HOME = Path(os.environ.get("KUBANI_LAB_HOME", "/var/lib/kubani-lab"))
DEFAULT_SUBNET = "100.64.0.0/24"
MGMT_NAME = "mgmt"
TAILNET_MOUNT = "/run/kubani-tailnet"
STOP_TIMEOUT_S = 20.0
SSH_WAIT_S = 60.0
K3S_VERSION = "v1.31.4+k3s1"
# nspawn joins a node to its network namespace but shows the host's /sys/class/net and keeps
# /proc/sys/net read-only. A sysfs mounted inside the node lists its own devices (tailscale0),
# and its network sysctls become writable, as on a real machine.
SYSFS_UNIT = """[Unit]
Description=Kubani lab: this node's own network devices and settings
DefaultDependencies=no
Before=sysinit.target systemd-networkd.service
ConditionVirtualization=container

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/sh -c 'mkdir -p /run/kubani-sysfs && mount -t sysfs sysfs /run/kubani-sysfs && \\
 mount --bind /run/kubani-sysfs/class/net /sys/class/net && \\
 mount --bind /run/kubani-sysfs/devices/virtual/net /sys/devices/virtual/net && \\
 mount --bind /proc/sys/net /proc/sys/net && mount -o remount,bind,rw /proc/sys/net'

[Install]
WantedBy=sysinit.target
"""
# Two releases, so that upgrades can be rehearsed in the lab.
K3S_VERSIONS = (K3S_VERSION, "v1.32.1+k3s1")


@dataclass
class LabNode:
    name: str
    role: str
    index: int
    address: str
    gpu: bool = False
    pid: int | None = None
    backend_state: str = "Running"
    online: bool = True
    relay: str | None = None
    in_inventory: bool = True


@dataclass
class LabState:
    lab_id: str
    subnet: str = DEFAULT_SUBNET
    nodes: list[LabNode] = field(default_factory=list)
    image: str = ""
    image_build_seconds: float = 0.0

    @property
    def mgmt_address(self) -> str:
        return str(next(ipaddress.ip_network(self.subnet).hosts()))

    @property
    def prefix(self) -> int:
        return ipaddress.ip_network(self.subnet).prefixlen

    def node(self, name: str) -> LabNode:
        for node in self.nodes:
            if node.name == name:
                return node
        raise LabError(
            f"no lab node {name!r}",
            f"the lab has {', '.join(n.name for n in self.nodes) or 'no nodes'}",
            "see `cluster-mgr lab status`",
        )


def _node_names(count: int, control_planes: int, gpu_nodes: int) -> list[tuple[str, str, bool]]:
    if control_planes < 1 or control_planes > count:
        raise LabError(
            "bad lab size",
            f"{control_planes} control planes for {count} nodes",
            "use 1 <= --control-planes <= --nodes",
        )
    workers = count - control_planes
    if gpu_nodes > workers:
        raise LabError(
            "bad lab size",
            f"{gpu_nodes} GPU nodes but {workers} workers",
            "GPU nodes are workers: lower --gpu-nodes or raise --nodes",
        )
    names = [(f"cp-{i}", "control-plane", False) for i in range(1, control_planes + 1)]
    plain = workers - gpu_nodes
    names += [(f"w-{i}", "worker", False) for i in range(1, plain + 1)]
    names += [(f"gpu-{i}", "worker", True) for i in range(1, gpu_nodes + 1)]
    return names


class Lab:
    def __init__(self, name: str = "default", home: Path = DEFAULT_HOME) -> None:
        self.name = name
        self.home = home
        self.folder = home / "labs" / name
        self.state_file = self.folder / "state.json"
        self.lab_id = hashlib.sha256(str(self.folder).encode()).hexdigest()[:4]
        self.names = LabNames(self.lab_id)
        self._children: dict[str, subprocess.Popen[bytes]] = {}

    # ---- paths ----------------------------------------------------------------

    @property
    def key(self) -> Path:
        return self.folder / "ssh" / "id_ed25519"

    @property
    def known_hosts(self) -> Path:
        return self.folder / "ssh" / "known_hosts"

    @property
    def tailnet_dir(self) -> Path:
        return self.folder / "tailnet"

    @property
    def inventory(self) -> Path:
        return self.folder / "inventory" / "hosts.yml"

    @property
    def bin_dir(self) -> Path:
        return self.folder / "bin"

    def rootfs(self, node: str) -> Path:
        return self.folder / "nodes" / node / "rootfs"

    # ---- state ----------------------------------------------------------------

    def load(self) -> LabState | None:
        try:
            raw = json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return None
        nodes = [LabNode(**n) for n in raw.pop("nodes", [])]
        return LabState(nodes=nodes, **raw)

    def save(self, state: LabState) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        partial = self.state_file.with_suffix(".partial")
        partial.write_text(json.dumps(asdict(state), indent=2))
        partial.replace(self.state_file)

    def require_state(self) -> LabState:
        state = self.load()
        if state is None:
            raise LabError(
                "no lab is up", f"{self.state_file} does not exist", "run `cluster-mgr lab up`"
            )
        return state

    # ---- up -------------------------------------------------------------------

    def up(
        self,
        nodes: int = 3,
        control_planes: int = 1,
        gpu_nodes: int = 0,
        extra_nodes: int = 0,
        progress: Any = None,
    ) -> LabState:
        """Boot the lab (idempotent: running nodes are kept). ``extra_nodes`` are booted
        and on the tailnet but left out of the inventory, to be joined later."""
        require_lab_host()
        say = progress or (lambda _message: None)
        state = self.load() or LabState(lab_id=self.lab_id, subnet=self._free_subnet())
        say("image: checking the cached Debian bookworm root filesystem")
        image, seconds = ensure_image(self.home / "images")
        state.image, state.image_build_seconds = str(image), seconds or state.image_build_seconds
        self._ensure_key()
        self._ensure_standins()
        wanted = _node_names(nodes, control_planes, gpu_nodes)
        wanted += [(f"extra-{i}", "worker", False) for i in range(1, extra_nodes + 1)]
        network_ = ipaddress.ip_network(state.subnet)
        known = {n.name: n for n in state.nodes}
        for index, (name, role, gpu) in enumerate(wanted, start=1):
            if name not in known:
                address = str(network_[10 + index])
                node = LabNode(
                    name, role, index, address, gpu, in_inventory=not name.startswith("extra-")
                )
                state.nodes.append(node)
                known[name] = node
        network.ensure_bridge(self.names, state.mgmt_address, state.prefix)
        self._write_tailnet(state)
        for node in state.nodes:
            if self._alive(node):
                continue
            say(f"{node.name}: preparing {node.address}")
            self._prepare_rootfs(Path(state.image), node)
            network.ensure_node_link(self.names, node.name, node.index, node.address, state.prefix)
            node.pid = self._boot(node)
            self.save(state)
        for node in state.nodes:
            say(f"{node.name}: waiting for sshd")
            self._wait_for_ssh(node)
        self._write_inventory(state)
        self.save(state)
        return state

    def _free_subnet(self) -> str:
        """The first 100.64.N.0/24 that no other lab under the same home uses."""
        used = set()
        for other in (self.home / "labs").glob("*/state.json"):
            with contextlib.suppress(OSError, ValueError, KeyError):
                used.add(json.loads(other.read_text())["subnet"])
        for third in range(256):
            candidate = f"100.64.{third}.0/24"
            if candidate not in used:
                return candidate
        raise LabError("no free lab subnet", "256 labs exist", "remove some with `lab down`")

    def _ensure_key(self) -> None:
        if self.key.exists():
            return
        self.key.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        run(
            [
                "ssh-keygen",
                "-q",
                "-t",
                "ed25519",
                "-N",
                "",
                "-C",
                f"kubani-lab-{self.name}",
                "-f",
                str(self.key),
            ],
            "cannot make the lab SSH key",
        )
        self.key.chmod(0o600)

    def k3s_artifacts(self, version: str = K3S_VERSION) -> Path:
        """The air-gap folder (``k3s`` + ``sha256sum-amd64.txt``) for a K3s version."""
        return self.folder / "artifacts" / "k3s" / version

    @property
    def flux_artifacts(self) -> Path:
        """The Flux components manifest the gitops role installs from (air-gap style)."""
        return self.folder / "artifacts" / "flux" / FLUX_VERSION

    def _ensure_standins(self) -> None:
        build_zipapp(self.bin_dir / "tailscale-standin", "kubani.lab.standins.tailscale_cli")
        build_zipapp(self.bin_dir / "nvidia-smi-standin", "kubani.lab.standins.nvidia_smi")
        for version in K3S_VERSIONS:
            build_k3s_artifacts(self.k3s_artifacts(version), version)
        build_flux_manifest(self.flux_artifacts)
        wrapper = self.bin_dir / "tailscale"
        wrapper.write_text(
            "#!/bin/sh\n# The management machine's view of the lab tailnet (stand-in).\n"
            f"export KUBANI_TAILNET_DIR='{self.tailnet_dir}'\n"
            f"export KUBANI_TAILSCALE_SELF='{MGMT_NAME}'\n"
            f"export KUBANI_TAILSCALE_STATE='{self.folder / 'mgmt-backend-state'}'\n"
            f"exec '{self.bin_dir / 'tailscale-standin'}' \"$@\"\n"
        )
        wrapper.chmod(0o755)

    def _prepare_rootfs(self, image: Path, node: LabNode) -> None:
        root = self.rootfs(node.name)
        if not (root / "etc").exists():
            root.parent.mkdir(parents=True, exist_ok=True)
            partial = root.with_name("rootfs.partial")
            if partial.exists():
                shutil.rmtree(partial)
            run(
                ["cp", "-a", "--reflink=auto", str(image), str(partial)],
                f"cannot copy the image for {node.name}",
            )
            partial.rename(root)
        (root / "etc/hostname").write_text(node.name + "\n")
        (root / "etc/hosts").write_text(
            f"127.0.0.1 localhost\n127.0.1.1 {node.name}\n{node.address} {node.name}\n"
        )
        machine_id = root / "etc/machine-id"
        if not machine_id.read_text().strip():
            machine_id.write_text(secrets.token_hex(16) + "\n")
        ssh_dir = root / "root/.ssh"
        ssh_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        (ssh_dir / "authorized_keys").write_text(self.key.with_suffix(".pub").read_text())
        (ssh_dir / "authorized_keys").chmod(0o600)
        shutil.copy2(self.bin_dir / "tailscale-standin", root / "usr/bin/tailscale")
        sysfs_unit = root / "etc/systemd/system/kubani-lab-sysfs.service"
        sysfs_unit.write_text(SYSFS_UNIT)
        wants = root / "etc/systemd/system/sysinit.target.wants"
        wants.mkdir(parents=True, exist_ok=True)
        link = wants / sysfs_unit.name
        if not link.is_symlink():
            link.symlink_to(f"/etc/systemd/system/{sysfs_unit.name}")
        if node.gpu:
            self._install_gpu_standins(root, node)
        state_dir = root / "var/lib/tailscale"
        state_dir.mkdir(parents=True, exist_ok=True)
        (state_dir / "lab-backend-state").write_text(node.backend_state + "\n")

    def _install_gpu_standins(self, root: Path, node: LabNode) -> None:
        """A GPU, its driver's nvidia-smi and the NVIDIA container toolkit's binaries."""
        described = root / "etc/kubani-lab/gpus.json"
        described.parent.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256(node.name.encode()).hexdigest()
        uuid = f"GPU-{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"
        described.write_text(
            json.dumps(
                {
                    "driver_version": "550.107.02",
                    "cuda_version": "12.4",
                    "gpus": [
                        {
                            "name": "NVIDIA GeForce RTX 4090",
                            "memory_mib": 24564,
                            "uuid": uuid,
                            "compute_cap": "8.9",
                        }
                    ],
                },
                indent=2,
            )
        )
        shutil.copy2(self.bin_dir / "nvidia-smi-standin", root / "usr/bin/nvidia-smi")
        for tool, version in (("nvidia-container-runtime", "1.17.4"), ("nvidia-ctk", "1.17.4")):
            path = root / "usr/bin" / tool
            path.write_text(
                "#!/bin/sh\n# Kubani lab stand-in for NVIDIA Container Toolkit's " + tool + ".\n"
                f'case "$1" in --version|-v|version) echo "NVIDIA Container Toolkit CLI version '
                f'{version}";;\n  *) echo "{tool}: no containers run in the Kubani lab" >&2; '
                "exit 1;;\nesac\n"
            )
            path.chmod(0o755)

    def _boot(self, node: LabNode) -> int:
        log = (self.folder / "nodes" / node.name / "console.log").open("ab")
        command = [
            "systemd-nspawn",
            "--quiet",
            "-D",
            str(self.rootfs(node.name)),
            f"--machine={self.names.machine(node.name)}",
            f"--hostname={node.name}",
            "--register=no",
            "--keep-unit",
            # Its own network namespace: root there may manage it (nftables), as on a real host.
            "--capability=CAP_NET_ADMIN",
            "--console=passive",
            f"--network-namespace-path=/run/netns/{self.names.netns(node.name)}",
            f"--bind-ro={self.tailnet_dir}:{TAILNET_MOUNT}",
            "-b",
        ]
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True
        )
        log.close()
        self._children[node.name] = process
        return process.pid

    def _wait_for_ssh(self, node: LabNode) -> None:
        deadline = time.monotonic() + SSH_WAIT_S
        while time.monotonic() < deadline:
            # Our own child: ask it (its /proc entry can read empty while it execs).
            child = self._children.get(node.name)
            stopped = child.poll() is not None if child else not self._alive(node)
            if node.pid is not None and stopped:
                tail = (self.folder / "nodes" / node.name / "console.log").read_text()[-400:]
                raise LabError(f"lab node {node.name} stopped while booting", tail.strip(), None)
            with contextlib.suppress(OSError), socket.create_connection((node.address, 22), 1):
                result = self.ssh_run(node.name, "true", timeout=10, check=False)
                if result.returncode == 0:
                    return
            time.sleep(0.3)
        raise LabError(
            f"lab node {node.name} did not answer on SSH",
            f"no sshd on {node.address}:22 after {SSH_WAIT_S:.0f} s",
            f"see {self.folder / 'nodes' / node.name / 'console.log'}",
        )

    def _alive(self, node: LabNode) -> bool:
        return node.pid is not None and self._owns(node.pid)

    def _owns(self, pid: int) -> bool:
        """True when ``pid`` is one of this lab's systemd-nspawn processes."""
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return False
        return (
            bool(cmdline)
            and cmdline[0].endswith(b"systemd-nspawn")
            and any(arg.startswith(str(self.folder / "nodes").encode()) for arg in cmdline)
        )

    # ---- tailnet --------------------------------------------------------------

    def _write_tailnet(self, state: LabState) -> None:
        devices = [TailnetDevice(MGMT_NAME, state.mgmt_address, tags=[])]
        for node in state.nodes:
            devices.append(
                TailnetDevice(
                    node.name,
                    node.address,
                    os="linux",
                    online=node.online and node.backend_state == "Running",
                    relay=node.relay,
                    backend_state=node.backend_state,
                    tags=["tag:k3s"] + (["tag:gpu"] if node.gpu else []),
                )
            )
        self.tailnet_dir.mkdir(parents=True, exist_ok=True)
        partial = self.tailnet_dir / ".tailnet.json.partial"
        partial.write_text(json.dumps(serialise(devices), indent=2))
        partial.replace(self.tailnet_dir / "tailnet.json")

    def set_tailscale(
        self,
        node_name: str,
        backend_state: str | None = None,
        online: bool | None = None,
        relay: str | None = None,
        direct: bool = False,
    ) -> LabNode:
        """Change a node's tailnet: log it out (NeedsLogin), take it offline, relay it."""
        state = self.require_state()
        node = state.node(node_name)
        if backend_state is not None:
            node.backend_state = backend_state
            local = self.rootfs(node.name) / "var/lib/tailscale/lab-backend-state"
            local.write_text(backend_state + "\n")
        if online is not None:
            node.online = online
            network.set_node_link(self.names, node.index, online)
        if relay is not None or direct:
            node.relay = None if direct else relay
        self._write_tailnet(state)
        self.save(state)
        return node

    # ---- inventory ------------------------------------------------------------

    def _write_inventory(self, state: LabState) -> None:
        """The lab's inventory, written through the inventory engine so that it validates."""
        from kubani.inventory.store import atomic_write, edit_inventory

        inventory = self.inventory
        inventory.parent.mkdir(parents=True, exist_ok=True)
        group_vars = inventory.parent / "group_vars" / "all.yml"
        group_vars.parent.mkdir(exist_ok=True)
        atomic_write(
            group_vars,
            (
                "---\n# Connection settings for the Kubani lab (written by `cluster-mgr lab up`).\n"
                "ansible_user: root\n"
                f"ansible_ssh_private_key_file: {self.key}\n"
                "ansible_ssh_common_args: >-\n"
                f"  -o UserKnownHostsFile={self.known_hosts} -o StrictHostKeyChecking=accept-new\n"
                "  -o ConnectTimeout=5\n"
                "# K3s comes from the lab's air-gap folder (the K3s stand-in, one per release).\n"
                f"k3s_airgap_dir: {self.folder / 'artifacts' / 'k3s'}/{{{{ k3s_version }}}}\n"
                f"k3s_control_plane_kubeconfig_path: {self.folder / 'kubeconfig'}\n"
                "# Flux from the lab's local copy of its components manifest.\n"
                f"gitops_flux_version: {FLUX_VERSION}\n"
                f"gitops_flux_manifest_src: {self.flux_artifacts / 'install.yaml'}\n"
                "# Quicker heartbeats, so that a stopped node shows NotReady within seconds.\n"
                'node_config_extra_kubelet_args: ["node-status-update-frequency=2s"]\n'
                "k3s_control_plane_extra_config:\n"
                '  kube-controller-manager-arg: ["node-monitor-grace-period=10s"]\n'
            ).encode(),
            backup=False,
        )
        if not inventory.exists():
            atomic_write(
                inventory,
                (
                    "---\n# Inventory of the Kubani lab (written by `cluster-mgr lab up`).\n"
                    "all:\n  vars:\n"
                    f"    cluster_name: lab-{self.name}\n"
                    f"    k3s_version: {K3S_VERSION}\n"
                    f"    tailscale_network: {state.subnet}\n"
                ).encode(),
                backup=False,
            )
        with edit_inventory(inventory, "cannot write the lab inventory") as document:
            present = {h for _, h, _ in document.iter_hosts()}
            for node in state.nodes:
                if not node.in_inventory or node.name in present:
                    continue
                variables: dict[str, Any] = {
                    "ansible_host": node.address,
                    "tailscale_ip": node.address,
                }
                if node.gpu:
                    variables["gpu"] = True
                group = "control_plane" if node.role == "control-plane" else "workers"
                document.add_host(group, node.name, variables)

    # ---- using nodes ----------------------------------------------------------

    def ssh_command(self, node_name: str) -> list[str]:
        state = self.require_state()
        node = state.node(node_name)
        return [
            "ssh",
            "-i",
            str(self.key),
            "-o",
            f"UserKnownHostsFile={self.known_hosts}",
            "-o",
            "StrictHostKeyChecking=accept-new",
            "-o",
            "ConnectTimeout=5",
            "-o",
            "LogLevel=ERROR",
            f"root@{node.address}",
        ]

    def ssh_run(
        self, node_name: str, command: str, timeout: float = 60, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [*self.ssh_command(node_name), command],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise LabError(
                f"`{command}` failed on {node_name}",
                (result.stderr or result.stdout).strip()[-300:] or f"exit code {result.returncode}",
                None,
            )
        return result

    def serve_git(self, tree: Path, node_name: str = "cp-1") -> tuple[str, str]:
        """A Git server for GitOps in the lab: ``tree`` committed and pushed over SSH to a
        bare repository on ``node_name`` (as it would be on any Git host). Returns the
        ssh:// URL and the commit."""
        node = self.require_state().node(node_name)
        self.ssh_run(
            node_name,
            "rm -rf /srv/git/kubani.git && git init -q --bare -b main /srv/git/kubani.git",
        )
        work = self.folder / "git-work"
        shutil.rmtree(work, ignore_errors=True)
        shutil.copytree(tree, work / tree.name, symlinks=True)
        url = f"ssh://root@{node.address}/srv/git/kubani.git"
        env = {
            **os.environ,
            "GIT_SSH_COMMAND": f"ssh -i {self.key} -o UserKnownHostsFile={self.known_hosts} "
            "-o StrictHostKeyChecking=accept-new -o BatchMode=yes",
            "GIT_AUTHOR_NAME": "Kubani lab",
            "GIT_AUTHOR_EMAIL": "lab@kubani.invalid",
            "GIT_COMMITTER_NAME": "Kubani lab",
            "GIT_COMMITTER_EMAIL": "lab@kubani.invalid",
        }
        for command in (
            ["git", "init", "-q", "-b", "main"],
            ["git", "add", "-A"],
            ["git", "commit", "-q", "-m", f"{tree.name} tree"],
            ["git", "push", "-q", url, "main"],
        ):
            result = subprocess.run(
                command, cwd=work, env=env, capture_output=True, text=True, check=False
            )
            if result.returncode != 0:
                raise LabError(
                    f"cannot serve {tree} from {node_name}",
                    (result.stderr or result.stdout).strip()[-300:],
                    None,
                )
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=work, capture_output=True, text=True, check=True
        ).stdout.strip()
        return url, commit

    def status(self) -> list[dict[str, Any]]:
        state = self.load()
        if state is None:
            return []
        rows = []
        for node in state.nodes:
            alive = self._alive(node)
            ssh = False
            if alive:
                with contextlib.suppress(OSError), socket.create_connection((node.address, 22), 1):
                    ssh = True
            rows.append(
                {
                    "name": node.name,
                    "role": node.role,
                    "gpu": node.gpu,
                    "address": node.address,
                    "pid": node.pid if alive else None,
                    "running": alive,
                    "ssh": ssh,
                    "tailscale": node.backend_state,
                    "online": node.online,
                    "path": f"relay {node.relay}" if node.relay else "direct",
                    "in_inventory": node.in_inventory,
                    "memory_bytes": _memory_of(node.pid) if alive and node.pid else None,
                }
            )
        return rows

    # ---- down -----------------------------------------------------------------

    def down(self) -> dict[str, Any]:
        """Stop every node by its own PID, remove links, namespaces, bridge and files."""
        require_lab_host()
        state = self.load()
        pids = {n.pid for n in state.nodes if n.pid} if state else set()
        pids |= set(self._leftover_pids())
        stopped = [pid for pid in pids if self._owns(pid)]
        for pid in stopped:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while any(self._owns(pid) for pid in stopped) and time.monotonic() < deadline:
            _reap(stopped)
            time.sleep(0.2)
        for pid in stopped:
            if self._owns(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        _reap(stopped)
        removed = network.remove_everything(self.names)
        if self.folder.exists():
            shutil.rmtree(self.folder, ignore_errors=True)
        return {"stopped_pids": sorted(stopped), "removed": removed}

    def _leftover_pids(self) -> Iterator[int]:
        """nspawn processes of this lab that the state file no longer knows (after a crash)."""
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit() and self._owns(int(entry.name)):
                yield int(entry.name)


def _reap(pids: list[int]) -> None:
    """Collect the exit status of nodes this process started (others are not our children)."""
    for pid in pids:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)


def _memory_of(pid: int) -> int | None:
    """Resident memory of a node: its nspawn process and every process below it."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            status = (entry / "status").read_text()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry.name))
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                rss[int(entry.name)] = int(line.split()[1]) * 1024
    total, stack = 0, [pid]
    while stack:
        current = stack.pop()
        total += rss.get(current, 0)
        stack += children.get(current, [])
    return total or None
