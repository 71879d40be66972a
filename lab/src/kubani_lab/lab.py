"""A lab: N Debian hosts booted with systemd-nspawn, each in its own network namespace on a
shared bridge (the underlay, in 198.18.0.0/15), joined to a real tailnet: tailscaled on every
node and on the management side, headscale as the control server in a namespace of its own.

Everything a lab owns lives under its folder (state, SSH key, node root filesystems, the
control server's files, the inventory it writes); ``down`` removes all of it and is safe to
repeat.
"""

from __future__ import annotations

import contextlib
import fcntl
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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from kubani_lab import cgroups, headscale, network
from kubani_lab.artifacts import (
    FLUX_VERSION,
    build_flux_manifest,
    build_k3s_artifacts,
    build_tailscale_release,
    build_zipapp,
)
from kubani_lab.components import (
    COMPONENTS,
    FLUX,
    HEADSCALE,
    KUBERNETES,
    KWOK,
    TAILSCALE,
    ensure_built,
    pinned_version,
)
from kubani_lab.host import LabError, capture, process_tree, require_lab_host, run
from kubani_lab.image import ensure_image
from kubani_lab.k3s.shim import SHIM, SHIM_SCRIPT
from kubani_lab.network import LabNames
from kubani_lab.tailnet import (
    NODE_UNIT,
    QUIET_ENV,
    ManagementDaemon,
    install_on_node,
    trust_ca,
    up_flags,
    write_private,
)

DEFAULT_HOME = Path(os.environ.get("KUBANI_LAB_HOME", "/var/lib/kubani-lab"))
MGMT_NAME = "mgmt"
MAX_LABS = 256  # one /24 of the underlay and one of the tailnet each
STOP_TIMEOUT_S = 20.0
TAILNET_WAIT_S = 60.0
# The user Kubani logs in to the nodes as (password-less sudo), as on users' machines.
ADMIN_USER = "kubani"
# Machines booted on the LAN without Tailscale (Lab.up's bare_nodes) are named BARE_PREFIX<n>.
BARE_PREFIX = "bare-"
SSH_WAIT_S = 60.0
# Diagnostics folders of failed lab runs kept under the lab home (the newest).
DIAGNOSTICS_KEPT = 6
# Of each log kept there, its end (what led to the failure).
DIAGNOSTICS_LOG_BYTES = 2 * 2**20
# How long a node's boot may take once its sshd answers: until then it refuses every login
# but root's (/run/nologin), as a real machine does, so Kubani's admin user cannot get in.
BOOT_WAIT_S = 120
# Until systemd has finished booting the node; then its state (running, degraded), the jobs
# still queued (a boot that did not finish), and the units that failed.
_WAIT_FOR_BOOT = (
    f"timeout {BOOT_WAIT_S} systemctl is-system-running --wait; "
    "echo '--'; systemctl list-jobs --no-legend --no-pager | head -n 8; "
    "echo '--'; systemctl --failed --no-legend --no-pager --plain | head -n 8"
)
K3S_VERSION = "v1.35.4+k3s1"
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
# Until the node's tailscaled answers on its socket, then its status.
_WAIT_FOR_TAILSCALED = (
    "for i in $(seq 100); do [ -S /run/tailscale/tailscaled.sock ] && break; sleep 0.1; done; "
    "tailscale status --json"
)
# Two releases, so that upgrades can be rehearsed in the lab: the second repackages the same
# Kubernetes build (as a K3s "k3s2" release fixes K3s's own parts only).
K3S_VERSIONS = (K3S_VERSION, "v1.35.4+k3s2")


@dataclass
class LabNode:
    name: str
    role: str
    index: int
    underlay: str  # its address on the lab bridge (the "LAN")
    address: str = ""  # its tailnet IPv4, handed out by the control server
    gpu: bool = False
    pid: int | None = None
    backend_state: str = "Running"  # the state the lab last put it in
    online: bool = True
    relayed: bool = False
    in_inventory: bool = True
    # False for a machine booted without Tailscale (``bare`` nodes): Kubani installs it.
    tailscale_preinstalled: bool = True
    # The node's own cgroup, one folder per hierarchy (see kubani_lab.cgroups).
    cgroups: list[str] = field(default_factory=list)


def tailnet_of(slot: int) -> str:
    return f"100.64.{slot}.0/24"


@dataclass
class LabState:
    lab_id: str
    slot: int
    nodes: list[LabNode] = field(default_factory=list)
    image: str = ""
    image_build_seconds: float = 0.0
    build_seconds: dict[str, float] = field(default_factory=dict)
    control_pid: int | None = None
    mgmt_pid: int | None = None
    # Desktop machines by name: logins register with logind (a person's session is what the
    # workstation guard watches); the others are servers, with no D-Bus, logind or PAM sessions.
    desktops: list[str] = field(default_factory=list)

    @property
    def underlay(self) -> str:
        return f"198.18.{self.slot}.0/24"

    @property
    def tailnet(self) -> str:
        """The lab's slice of 100.64.0.0/10: labs on one machine never share an address."""
        return tailnet_of(self.slot)

    @property
    def mgmt_underlay(self) -> str:
        return f"198.18.{self.slot}.1"

    @property
    def control_address(self) -> str:
        return f"198.18.{self.slot}.2"

    @property
    def prefix(self) -> int:
        return ipaddress.ip_network(self.underlay).prefixlen

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
        # The daemons this process started (headscale, the management tailscaled): kept so that
        # they are not collected while running, and reaped by down().
        self._processes: dict[str, subprocess.Popen[bytes]] = {}

    # ---- paths ----------------------------------------------------------------

    @property
    def key(self) -> Path:
        return self.folder / "ssh" / "id_ed25519"

    @property
    def known_hosts(self) -> Path:
        return self.folder / "ssh" / "known_hosts"

    @property
    def cache(self) -> Path:
        """Built components, shared by every lab and test run on this machine."""
        return self.home / "cache"

    def control_server(self, state: LabState) -> headscale.ControlServer:
        return headscale.ControlServer(
            folder=self.folder / "control",
            address=state.control_address,
            tailnet_prefix=state.tailnet,
            base_domain=f"{self.name}.lab.kubani.test",
        )

    def management(self, state: LabState) -> ManagementDaemon:
        binaries, _ = ensure_built(TAILSCALE, self.cache)
        return ManagementDaemon(
            folder=self.folder / "mgmt",
            tun=self.names.tun,
            port=42000 + state.slot,
            binaries=binaries,
            nameserver=state.control_address,
        )

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
        try:
            nodes = [LabNode(**n) for n in raw.pop("nodes", [])]
            return LabState(nodes=nodes, **raw)
        except TypeError:
            return None  # written by an older Kubani: `down` still finds everything by name

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
        bare_nodes: int = 0,
        desktops: tuple[str, ...] = (),
    ) -> LabState:
        """Boot the lab (idempotent: running nodes are kept). ``extra_nodes`` are booted
        and on the tailnet but left out of the inventory, to be joined later; ``bare_nodes``
        (``bare-N``) are machines on the LAN only, without Tailscale, for Kubani to bring onto
        the tailnet (reached by SSH at their ``underlay`` address). ``desktops``: nodes that
        register logins with logind, as a desktop Debian does."""
        require_lab_host()
        say = progress or (lambda _message: None)
        state = self.load() or self._claim_slot()
        state.desktops = list(desktops)
        say("image: checking the cached Debian bookworm root filesystem")
        image, seconds = ensure_image(self.home / "images")
        state.image, state.image_build_seconds = str(image), seconds or state.image_build_seconds
        for component in COMPONENTS:
            _, built = ensure_built(component, self.cache, say)
            if built:
                state.build_seconds[component.name] = round(built, 1)
        self._ensure_key()
        self._ensure_standins(state)
        wanted = _node_names(nodes, control_planes, gpu_nodes)
        wanted += [(f"extra-{i}", "worker", False) for i in range(1, extra_nodes + 1)]
        wanted += [(f"{BARE_PREFIX}{i}", "worker", False) for i in range(1, bare_nodes + 1)]
        underlay = ipaddress.ip_network(state.underlay)
        known = {n.name: n for n in state.nodes}
        for index, (name, role, gpu) in enumerate(wanted, start=1):
            if name not in known:
                node = LabNode(
                    name,
                    role,
                    index,
                    underlay=str(underlay[10 + index]),
                    gpu=gpu,
                    in_inventory=not name.startswith(("extra-", BARE_PREFIX)),
                    tailscale_preinstalled=not name.startswith(BARE_PREFIX),
                    backend_state="Running" if not name.startswith(BARE_PREFIX) else "NoState",
                )
                state.nodes.append(node)
                known[name] = node
        network.ensure_bridge(self.names, state.mgmt_underlay, state.prefix)
        network.ensure_guard(self.names)
        network.ensure_tailnet_contained(state.tailnet)
        self.save(state)
        self._ensure_control_server(state, say)
        self._ensure_management(state, say)
        booting = [node for node in state.nodes if not self._alive(node)]
        for node in booting:
            say(f"{node.name}: preparing {node.underlay}")
            self._prepare_rootfs(Path(state.image), node, state)
            network.ensure_machine_link(
                self.names, node.name, node.index, node.underlay, state.prefix
            )
            node.pid = self._boot(node)
            self.save(state)
        for node in state.nodes:
            say(f"{node.name}: waiting for sshd")
            self._wait_for_ssh(node)
        for node in state.nodes:
            self._wait_for_boot(node, say)
        joining = [node for node in state.nodes if node.tailscale_preinstalled]
        say(f"tailnet: joining {', '.join(n.name for n in joining)}")
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(lambda node: self._join(state, node), joining))
        self.save(state)
        self._wait_for_tailnet(joining, say)
        if booting:  # a lab already up keeps the tailnet states its user gave its nodes
            self._warm_node_paths(joining, say)
        self._record_host_keys(state)
        self._write_inventory(state)
        self.save(state)
        return state

    def _claim_slot(self) -> LabState:
        """A new state on a free slot, saved before the lock is let go: labs booting at the
        same time (parallel test workers) never share one."""
        lock_file = self.home / "labs" / ".slots.lock"
        lock_file.parent.mkdir(parents=True, exist_ok=True)
        with lock_file.open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            state = LabState(lab_id=self.lab_id, slot=self._free_slot())
            self.save(state)
        return state

    def _free_slot(self) -> int:
        """The first slot (underlay 198.18.N.0/24, tailnet 100.64.N.0/24) no other lab under
        the same home uses, nor one whose tailnet route is still on this machine (a lab whose
        state file was lost before it went down)."""
        used = set()
        for other in (self.home / "labs").glob("*/state.json"):
            with contextlib.suppress(OSError, ValueError, KeyError):
                used.add(int(json.loads(other.read_text())["slot"]))
        routes = capture(["ip", "route", "show", "type", "unreachable"], 10).stdout
        for slot in range(MAX_LABS):
            if slot not in used and tailnet_of(slot) not in routes.split():
                return slot
        raise LabError("no free lab slot", f"{MAX_LABS} labs exist", "remove some with `lab down`")

    def _ensure_control_server(self, state: LabState, say: Any) -> None:
        server = self.control_server(state)
        binaries, _ = ensure_built(HEADSCALE, self.cache)
        if state.control_pid is not None and self._owns(state.control_pid, "headscale"):
            return
        say(f"control server: headscale on {server.url}")
        network.ensure_machine_link(
            self.names, network.CONTROL, 0, state.control_address, state.prefix
        )
        headscale.write_config(server)
        process = headscale.start(server, binaries / "headscale", self.names.netns("control"))
        self._processes["control"] = process
        state.control_pid = process.pid
        self.save(state)
        headscale.ensure_api_key(server, binaries / "headscale")

    def _ensure_management(self, state: LabState, say: Any) -> None:
        daemon = self.management(state)
        server = self.control_server(state)
        if state.mgmt_pid is None or not self._owns(state.mgmt_pid, "tailscaled"):
            say(f"management side: tailscaled on {daemon.tun}")
            process = daemon.start(server.ca_cert)
            self._processes["mgmt"] = process
            state.mgmt_pid = process.pid
            self.save(state)
        status = daemon.status() or {}
        if status.get("BackendState") != "Running":
            key_file = daemon.folder / "auth-key"
            write_private(key_file, headscale.mint_auth_key(server, []))
            try:
                daemon.join(server.url, MGMT_NAME, key_file)
            finally:
                key_file.unlink(missing_ok=True)

    def _join(self, state: LabState, node: LabNode) -> None:
        """Log a node in to the lab tailnet with a single-use key, unless it is already."""
        status = json.loads(self.ssh_run(node.name, _WAIT_FOR_TAILSCALED).stdout or "{}")
        if status.get("BackendState") != "Running":
            server = self.control_server(state)
            if headscale.node_id(server, node.name) is not None:
                headscale.disable_expiry(server, node.name)  # logging in again
            tags = list(headscale.CLUSTER_TAGS) + ([headscale.GPU_TAG] if node.gpu else [])
            flags = " ".join(up_flags(server.url, node.name))
            self.ssh_run(
                node.name,
                "umask 077; cat > /run/kubani-auth-key && "
                f"tailscale up --auth-key=file:/run/kubani-auth-key {flags}; "
                "status=$?; rm -f /run/kubani-auth-key; exit $status",
                stdin=headscale.mint_auth_key(server, tags),
                timeout=90,
            )
        node.backend_state = "Running"
        node.address = self.ssh_run(node.name, "tailscale ip -4").stdout.strip()

    def _wait_for_tailnet(self, nodes: list[LabNode], say: Any) -> None:
        """Until the management side reaches every node's sshd over the tailnet."""
        deadline = time.monotonic() + TAILNET_WAIT_S
        for node in nodes:
            say(f"{node.name}: reachable on the tailnet at {node.address}?")
            while True:
                try:
                    with socket.create_connection((node.address, 22), 2):
                        break
                except OSError as exc:
                    if time.monotonic() > deadline:
                        raise LabError(
                            f"{node.name} is not reachable over the lab tailnet",
                            f"{node.address}:22: {exc}",
                            f"see {self.folder / 'mgmt' / 'tailscaled.log'}",
                        ) from None
                    time.sleep(0.3)

    def _warm_node_paths(self, nodes: list[LabNode], say: Any) -> None:
        """Until every node reaches every other over the tailnet, as machines that have been
        on a tailnet for a while do: the first packets to a peer wait for its tunnel, which
        on this busy machine can outlast the prerequisite checks' tries."""
        if len(nodes) < 2:
            return
        say("tailnet: opening the paths between the nodes")

        def reach_others(node: LabNode) -> None:
            others = " ".join(n.address for n in nodes if n is not node)
            script = (
                f"for ip in {others}; do "
                f"timeout {TAILNET_WAIT_S:.0f} bash -c "
                "'until echo >/dev/tcp/'$ip'/22; do sleep 0.3; done' 2>/dev/null "
                "|| { echo $ip; exit 1; }; done"
            )
            result = self.ssh_run(node.name, script, timeout=TAILNET_WAIT_S * 2, check=False)
            if result.returncode != 0:
                raise LabError(
                    f"{node.name} does not reach {result.stdout.strip() or 'a peer'} over the "
                    "lab tailnet",
                    result.stderr.strip()[-300:] or f"no answer within {TAILNET_WAIT_S:.0f} s",
                    f"see {self.folder / 'nodes' / node.name / 'console.log'}",
                )

        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(reach_others, nodes))

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
    def tailscale_artifacts(self) -> Path:
        """The air-gap folder of Tailscale's static release (the tailscale_install role's)."""
        return self.folder / "artifacts" / "tailscale"

    @property
    def flux_artifacts(self) -> Path:
        """The Flux components manifest the gitops role installs from (air-gap style)."""
        return self.folder / "artifacts" / "flux" / FLUX_VERSION

    def _k3s_payload(self) -> tuple[dict[str, Path], dict[str, Path]]:
        """What the K3s stand-in carries: the real control plane, KWOK with its stages, and
        the Flux controllers it runs for Flux's Deployments."""
        kubernetes, _ = ensure_built(KUBERNETES, self.cache)
        kwok, _ = ensure_built(KWOK, self.cache)
        flux, _ = ensure_built(FLUX, self.cache)
        binaries = {
            "kube-components": kubernetes / "kube-components",
            "kwok": kwok / "kwok",
            "source-controller": flux / "source-controller",
            "kustomize-controller": flux / "kustomize-controller",
        }
        shim = self.folder / "artifacts" / "payload" / SHIM
        shim.parent.mkdir(parents=True, exist_ok=True)
        if not shim.is_file() or shim.read_text() != SHIM_SCRIPT:
            shim.write_text(SHIM_SCRIPT)
            shim.chmod(0o755)
        binaries[SHIM] = shim
        stages = kwok / "assets" / "kwok" / "kustomize" / "stage"
        files = {
            f"kwok/stages/{path.relative_to(stages).as_posix()}": path
            for path in sorted(stages.rglob("*.yaml"))
        }
        return binaries, files

    def _ensure_standins(self, state: LabState) -> None:
        build_zipapp(self.bin_dir / "nvidia-smi-standin", "kubani_lab.standins.nvidia_smi")
        binaries, files = self._k3s_payload()
        for version in K3S_VERSIONS:
            build_k3s_artifacts(self.k3s_artifacts(version), version, binaries, files, self.cache)
        flux, _ = ensure_built(FLUX, self.cache)
        build_flux_manifest(self.flux_artifacts, sorted((flux / "assets").rglob("*.yaml")))
        tailscale, _ = ensure_built(TAILSCALE, self.cache)
        build_tailscale_release(
            self.tailscale_artifacts, tailscale, pinned_version(TAILSCALE), NODE_UNIT
        )
        daemon = self.management(state)
        wrapper = self.bin_dir / "tailscale"
        wrapper.write_text(
            "#!/bin/sh\n# The management machine's tailscale CLI for this lab's tailnet.\n"
            f"exec '{daemon.binaries / 'tailscale'}' --socket='{daemon.socket}' \"$@\"\n"
        )
        wrapper.chmod(0o755)

    def _prepare_rootfs(self, image: Path, node: LabNode, state: LabState) -> None:
        root = self.rootfs(node.name)
        if not (root / "etc").exists() and not self._overlay(image, root):
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
        (root / "etc/hosts").write_text(f"127.0.0.1 localhost\n127.0.1.1 {node.name}\n")
        machine_id = root / "etc/machine-id"
        if not machine_id.read_text().strip():
            machine_id.write_text(secrets.token_hex(16) + "\n")
        ssh_dir = root / "root/.ssh"
        ssh_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        (ssh_dir / "authorized_keys").write_text(self.key.with_suffix(".pub").read_text())
        (ssh_dir / "authorized_keys").chmod(0o600)
        self._add_admin_user(root)
        ca_cert = self.control_server(state).ca_cert
        if node.tailscale_preinstalled:
            tailscale, _ = ensure_built(TAILSCALE, self.cache)
            install_on_node(root, tailscale, ca_cert)
        else:  # a machine that trusts the control server's CA, as the user set it up
            trust_ca(root, ca_cert)
        sysfs_unit = root / "etc/systemd/system/kubani-lab-sysfs.service"
        sysfs_unit.write_text(SYSFS_UNIT)
        wants = root / "etc/systemd/system/sysinit.target.wants"
        wants.mkdir(parents=True, exist_ok=True)
        link = wants / sysfs_unit.name
        if not link.is_symlink():
            link.symlink_to(f"/etc/systemd/system/{sysfs_unit.name}")
        if node.gpu:
            self._install_gpu_standins(root, node)
        _set_logind(root, node.name in state.desktops)

    def _add_admin_user(self, root: Path) -> None:
        """The account Kubani logs in as, as on a user's machine (README's prerequisite): an
        ordinary user with password-less sudo; the playbooks become root. Root's own key is
        the lab's console (``ssh_command``), not Kubani's way in."""
        if f"\n{ADMIN_USER}:" not in "\n" + (root / "etc/passwd").read_text():
            run(
                ["chroot", str(root), "useradd", "--create-home", "--shell", "/bin/bash",
                 "--groups", "sudo", ADMIN_USER],
                "cannot add the lab's admin user",
            )  # fmt: skip
        sudoers = root / "etc/sudoers.d" / f"90-{ADMIN_USER}"
        sudoers.write_text(f"{ADMIN_USER} ALL=(ALL:ALL) NOPASSWD: ALL\n")
        sudoers.chmod(0o440)
        entry = next(
            line.split(":")
            for line in (root / "etc/passwd").read_text().splitlines()
            if line.startswith(f"{ADMIN_USER}:")
        )
        uid, gid = int(entry[2]), int(entry[3])
        ssh_dir = root / "home" / ADMIN_USER / ".ssh"
        ssh_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        keys = ssh_dir / "authorized_keys"
        keys.write_text(self.key.with_suffix(".pub").read_text())
        keys.chmod(0o600)
        for path in (ssh_dir.parent, ssh_dir, keys):
            os.chown(path, uid, gid)

    def _overlay(self, image: Path, root: Path) -> bool:
        """The node's root filesystem as an overlay on the shared image (instant; its changes
        go to its own upper layer); False where the kernel refuses, and a copy is made."""
        upper, work = root.with_name("upper"), root.with_name("work")
        for folder in (root, upper, work):
            folder.mkdir(parents=True, exist_ok=True)
        mounted = run(
            [
                "mount",
                "-t",
                "overlay",
                "overlay",
                "-o",
                f"lowerdir={image},upperdir={upper},workdir={work}",
                str(root),
            ],
            "cannot mount the node's root filesystem",
            check=False,
        )
        if mounted.returncode != 0:
            for folder in (root, upper, work):
                shutil.rmtree(folder, ignore_errors=True)
        return mounted.returncode == 0

    def _unmount_all(self) -> list[str]:
        """Unmount whatever is mounted below the lab's folder, deepest first."""
        try:
            lines = Path("/proc/self/mounts").read_text().splitlines()
        except OSError:
            return []
        inside = str(self.folder) + "/"
        points = [line.split()[1] for line in lines if line.split()[1].startswith(inside)]
        for point in sorted(points, key=len, reverse=True):
            run(["umount", "--lazy", point], f"cannot unmount {point}", check=False)
        return points

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
            # tailscaled makes its real TUN device, tailscale0, from this.
            "--bind=/dev/net/tun",
            "-b",
        ]
        folders = cgroups.make(self.names.machine(node.name))
        node.cgroups = [str(f) for f in folders]
        process = subprocess.Popen(
            cgroups.entered(folders, command),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
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
            with contextlib.suppress(OSError), socket.create_connection((node.underlay, 22), 1):
                result = self.ssh_run(node.name, "true", timeout=10, check=False)
                if result.returncode == 0:
                    return
            time.sleep(0.3)
        raise LabError(
            f"lab node {node.name} did not answer on SSH",
            f"no sshd on {node.underlay}:22 after {SSH_WAIT_S:.0f} s",
            f"see {self.folder / 'nodes' / node.name / 'console.log'}",
        )

    def _wait_for_boot(self, node: LabNode, say: Any) -> None:
        """Until the node has finished booting: sshd answers root early, but turns every
        other user away (the admin user Kubani connects as) until boot is complete."""
        result = self.ssh_run(node.name, _WAIT_FOR_BOOT, timeout=BOOT_WAIT_S + 30, check=False)
        state, jobs, failed = ([*result.stdout.split("--\n"), "", ""])[:3]
        if state.strip() in ("running", "degraded"):
            if failed.strip():
                units = " ".join(line.split()[0] for line in failed.splitlines() if line.strip())
                say(f"{node.name}: booted, with failed units: {units}")
            return
        raise LabError(
            f"lab node {node.name} did not finish booting",
            f"systemd says {state.strip() or result.stderr.strip()[-200:] or 'nothing'}"
            f" after {BOOT_WAIT_S} s; jobs still queued:\n{jobs.strip() or '(none)'}",
            f"see {self.folder / 'nodes' / node.name / 'console.log'} and "
            f"`journalctl -b` on {node.name}",
        )

    def _alive(self, node: LabNode) -> bool:
        return node.pid is not None and self._owns(node.pid)

    def _owns(self, pid: int, program: str = "systemd-nspawn") -> bool:
        """True when ``pid`` is this lab's ``program`` (a node's systemd-nspawn, its
        headscale or its management tailscaled): known by a path in the lab's folder."""
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return False
        folder = str(self.folder).encode()
        return (
            bool(cmdline)
            and cmdline[0].endswith(program.encode())
            and any(folder + b"/" in arg for arg in cmdline)
        )

    # ---- tailnet --------------------------------------------------------------

    def set_tailscale(
        self,
        node_name: str,
        backend_state: str | None = None,
        online: bool | None = None,
        relayed: bool | None = None,
        expire: bool = False,
    ) -> LabNode:
        """Change a node's tailnet for real: log it out (NeedsLogin) or in again (Running),
        stop it (Stopped), cut its link (offline), block its direct UDP paths so that its
        traffic goes through the DERP relay, or expire its key on the control server."""
        state = self.require_state()
        node = state.node(node_name)
        if backend_state is not None:
            self._set_backend_state(state, node, backend_state)
        if online is not None:
            node.online = online
            network.set_machine_link(self.names, node.index, online)
        if relayed is not None:
            node.relayed = relayed
            network.set_relayed(self.names, node.index, state.control_address, relayed)
        if expire:
            headscale.expire_node(self.control_server(state), node.name)
            node.backend_state = "NeedsLogin"
        self.save(state)
        return node

    def _set_backend_state(self, state: LabState, node: LabNode, wanted: str) -> None:
        if wanted == "NeedsLogin":
            self._logout(node.name)
        elif wanted == "Stopped":
            self.ssh_run(node.name, "tailscale down")
        elif wanted == "Running":
            self._join(state, node)
            # Back as a machine that was never away: reached from this side and from every
            # node on the tailnet, before whatever the caller does next.
            self._wait_for_tailnet([node], lambda _: None)
            reachable = [
                n
                for n in state.nodes
                if n.tailscale_preinstalled and n.online and n.backend_state == "Running"
            ]
            self._warm_node_paths(reachable, lambda _: None)  # _join made it Running
            if not node.relayed:
                self._wait_for_direct_path(state, node)
        else:
            raise LabError(
                f"cannot put {node.name} in state {wanted!r}",
                "the lab can log a node out (NeedsLogin), stop it (Stopped) or log it in (Running)",
                "use one of NeedsLogin, Stopped, Running",
            )
        node.backend_state = wanted

    def _wait_for_direct_path(self, state: LabState, node: LabNode) -> None:
        """Until the management side talks to the node directly, as before it was away: the
        first packets after a login go through the DERP relay while the peers find their
        direct path, which traffic (a connection to its sshd) brings about."""
        deadline = time.monotonic() + TAILNET_WAIT_S
        while _path(self._peers_seen(state).get(node.name, {})) != "direct":
            if time.monotonic() > deadline:
                raise LabError(
                    f"{node.name} is reached only through the relay after its login",
                    f"no direct path within {TAILNET_WAIT_S:.0f} s",
                    f"see {self.folder / 'mgmt' / 'tailscaled.log'}",
                )
            with contextlib.suppress(OSError), socket.create_connection((node.address, 22), 2):
                pass
            time.sleep(0.5)

    def _logout(self, node_name: str, attempts: int = 3) -> None:
        """``tailscale logout``, again when the control server's answer was lost on the way
        (tailscaled reuses a connection headscale has closed: "use of closed network
        connection"); done when the node reports NeedsLogin."""
        for attempt in range(attempts):
            result = self.ssh_run(node_name, "tailscale logout", check=False)
            state = self.ssh_run(node_name, "tailscale status --json", check=False)
            try:
                backend = json.loads(state.stdout).get("BackendState")
            except ValueError:
                backend = None
            if result.returncode == 0 or backend == "NeedsLogin":
                return
            if attempt + 1 == attempts:
                raise LabError(
                    f"`tailscale logout` failed on {node_name}",
                    (result.stderr or result.stdout).strip()[-300:],
                    None,
                )
            time.sleep(1)

    def tailnet_info(self) -> dict[str, Any]:
        """Where the lab's tailnet is reached from this machine (paths, never secrets)."""
        state = self.load()
        if state is None:
            return {}
        server = self.control_server(state)
        return {
            "prefix": state.tailnet,
            "underlay": state.underlay,
            "control_url": server.url,
            "control_ca": str(server.ca_cert),
            "control_api_key_file": str(server.api_key_file),
            "tailscale_bin": str(self.bin_dir / "tailscale"),
            "interface": self.names.tun,
            "derp_region": headscale.DERP_REGION_CODE,
            "base_domain": server.base_domain,
        }

    def management_status(self) -> dict[str, Any]:
        """The management side's ``tailscale status --json``."""
        return self.management(self.require_state()).status() or {}

    def _record_host_keys(self, state: LabState) -> None:
        """The nodes' host keys under their tailnet and LAN addresses, as in the known_hosts
        of a user who has logged in to each machine once: SSH checks them strictly (Mitogen,
        the playbooks' strategy, does not honour StrictHostKeyChecking=accept-new)."""
        from kubani.inventory.store import atomic_write

        lines = []
        for node in state.nodes:
            # A bare machine has no tailnet address yet: its keys are known at its LAN
            # address only (Kubani records them for the address it is given when it joins).
            hosts = f"{node.address},{node.underlay}" if node.address else node.underlay
            for public in sorted((self.rootfs(node.name) / "etc/ssh").glob("ssh_host_*_key.pub")):
                kind, key = public.read_text().split()[:2]
                lines.append(f"{hosts} {kind} {key}\n")
        atomic_write(self.known_hosts, "".join(lines).encode(), backup=False)

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
                f"ansible_user: {ADMIN_USER}\n"
                f"ansible_ssh_private_key_file: {self.key}\n"
                "ansible_ssh_common_args: >-\n"
                f"  -o UserKnownHostsFile={self.known_hosts} -o ConnectTimeout=5\n"
                "# K3s comes from the lab's air-gap folder (the K3s stand-in, one per release).\n"
                f"k3s_airgap_dir: {self.folder / 'artifacts' / 'k3s'}/{{{{ k3s_version }}}}\n"
                f"k3s_control_plane_kubeconfig_path: {self.folder / 'kubeconfig'}\n"
                "# Flux from the lab's local copy of its components manifest.\n"
                f"gitops_flux_version: {FLUX_VERSION}\n"
                f"gitops_flux_manifest_src: {self.flux_artifacts / 'install.yaml'}\n"
                "# Quicker heartbeats, so that a stopped node shows NotReady within seconds.\n"
                'k3s_common_extra_kubelet_args: ["node-status-update-frequency=2s"]\n'
                "k3s_control_plane_extra_config:\n"
                '  kube-controller-manager-arg: ["node-monitor-grace-period=10s"]\n'
                "# Tailscale, where Kubani installs it, from the lab's air-gap folder (built from\n"
                "# the lab's tailscale), never uploading logs or probing the gateway.\n"
                f"tailscale_airgap_dir: {self.tailscale_artifacts}\n"
                'tailscale_daemon_flags: ["--no-logs-no-support"]\n'
                "tailscale_daemon_environment:\n"
                + "".join(f'  {name}: "{value}"\n' for name, value in QUIET_ENV.items())
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
                    f"    tailscale_network: {state.tailnet}\n"
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
        """SSH to a node over the lab's LAN (its console, as it were): this keeps working
        while the lab takes the node off the tailnet. Kubani itself uses the tailnet."""
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
            f"root@{node.underlay}",
        ]

    def ssh_run(
        self,
        node_name: str,
        command: str,
        timeout: float = 60,
        check: bool = True,
        stdin: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        result = capture([*self.ssh_command(node_name), command], timeout, stdin)
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
        peers = self._peers_seen(state)
        rows = []
        for node in state.nodes:
            alive = self._alive(node)
            ssh = False
            if alive and node.address:
                with contextlib.suppress(OSError), socket.create_connection((node.address, 22), 1):
                    ssh = True
            seen = peers.get(node.name, {})
            rows.append(
                {
                    "name": node.name,
                    "role": node.role,
                    "gpu": node.gpu,
                    "address": node.address,
                    "underlay": node.underlay,
                    "pid": node.pid if alive else None,
                    "running": alive,
                    "ssh": ssh,
                    "tailscale": node.backend_state,
                    "online": bool(seen.get("Online")),
                    "path": _path(seen),
                    "in_inventory": node.in_inventory,
                    "memory_bytes": _memory_of(node.pid) if alive and node.pid else None,
                }
            )
        return rows

    def _peers_seen(self, state: LabState) -> dict[str, dict[str, Any]]:
        """The nodes as the management side's tailscaled sees them, by hostname."""
        if state.mgmt_pid is None or not self._owns(state.mgmt_pid, "tailscaled"):
            return {}
        status = self.management(state).status(check=False) or {}
        return {str(p.get("HostName")): p for p in (status.get("Peer") or {}).values()}

    # ---- down -----------------------------------------------------------------

    def down(self) -> dict[str, Any]:
        """Stop every node, the control server and the management tailscaled by their own
        PIDs; remove links, namespaces, bridge, nft tables and files."""
        require_lab_host()
        state = self.load()
        pids = {n.pid for n in state.nodes if n.pid} if state else set()
        pids |= set(self._leftover_pids())
        stopped = [pid for pid in pids if self._owns(pid)]
        daemons = [pid for pid, program in self._leftover_daemons() if self._owns(pid, program)]
        for pid in [*stopped, *daemons]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        everything = [*stopped, *daemons]
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while any(self._running(pid) for pid in everything) and time.monotonic() < deadline:
            _reap(everything)
            time.sleep(0.2)
        for pid in everything:
            if self._running(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        _reap(everything)
        ours = self.names.machine("")  # every node's cgroup is named after its machine
        folders = {Path(f) for n in (state.nodes if state else []) for f in n.cgroups}
        folders = {f for f in folders | set(cgroups.leftovers(ours)) if f.name.startswith(ours)}
        for folder in folders:
            cgroups.kill_all(folder)
        removed = [f"cgroup {f}" for f in sorted(folders) if f.exists() and cgroups.remove(f)]
        removed += network.remove_everything(self.names)
        removed += [f"mount {point}" for point in self._unmount_all()]
        tailnet = state.tailnet if state is not None else self._tailnet_from_control_config()
        if tailnet:
            network.release_tailnet(tailnet)
            removed.append(f"route unreachable {tailnet}")
        if self.folder.exists():
            shutil.rmtree(self.folder, ignore_errors=True)
        return {"stopped_pids": sorted(stopped), "removed": removed}

    def save_diagnostics(self, keep: int = DIAGNOSTICS_KEPT) -> Path | None:
        """What a failure in this lab needs explaining, kept where ``down`` does not remove
        it: each node's journal of this boot and console, the control server's and the
        management side's logs, this machine's routes for the tailnet. The newest ``keep``
        folders are kept. None when the lab has no state (nothing was booted)."""
        state = self.load()
        if state is None:
            return None
        stamp = time.strftime("%Y%m%dT%H%M%S")
        folder = self.home / "diagnostics" / f"{self.name}-{stamp}"
        folder.mkdir(parents=True, exist_ok=True)
        copies = {
            "control.log": self.control_server(state).log,
            "mgmt-tailscaled.log": self.management(state).log,
            "state.json": self.folder / "state.json",
            "hosts.yml": self.inventory,
        }
        for node in state.nodes:
            copies[f"{node.name}.console.log"] = self.folder / "nodes" / node.name / "console.log"
            # The K3s stand-in's programs (API server, kine, KWOK's kubelet...) log here.
            k3s = self.rootfs(node.name) / "var/lib/rancher/k3s"
            for program_log in sorted(k3s.glob("*/logs/*.log")):
                copies[f"{node.name}.{program_log.parent.parent.name}.{program_log.name}"] = (
                    program_log
                )
        for name, source in copies.items():
            with contextlib.suppress(OSError), source.open("rb") as handle:
                handle.seek(max(0, source.stat().st_size - DIAGNOSTICS_LOG_BYTES))
                (folder / name).write_bytes(handle.read())
        kubeconfig = self.folder / "kubeconfig"
        if kubeconfig.exists():
            cluster = capture(
                ["kubectl", "--kubeconfig", str(kubeconfig), "--request-timeout=10s", "get",
                 "nodes,pods", "-A", "-o", "wide"], 30,
            )  # fmt: skip
            (folder / "cluster.txt").write_text(cluster.stdout + cluster.stderr)
        for node in state.nodes:
            if self._alive(node):
                journal = self.ssh_run(
                    node.name, "journalctl -b --no-pager -o short-monotonic; "
                    "systemctl list-jobs --no-pager; systemctl --failed --no-pager",
                    timeout=60, check=False,
                )  # fmt: skip
                (folder / f"{node.name}.journal").write_text(journal.stdout + journal.stderr)
        routes = [["ip", "rule"], ["ip", "route", "show", "table", network.TAILSCALE_ROUTE_TABLE]]
        (folder / "routes.txt").write_text(
            "".join(f"$ {' '.join(c)}\n{capture(c, 10).stdout}" for c in routes)
        )
        for old in sorted((self.home / "diagnostics").iterdir(), key=lambda p: p.stat().st_mtime)[
            :-keep
        ]:
            shutil.rmtree(old, ignore_errors=True)
        return folder

    def _tailnet_from_control_config(self) -> str | None:
        """The lab's tailnet slice when its state file is lost: headscale's config has it."""
        import yaml

        try:
            config = yaml.safe_load((self.folder / "control" / "config.yaml").read_text())
            return str(config["prefixes"]["v4"])
        except (OSError, yaml.YAMLError, KeyError, TypeError):
            return None

    def _running(self, pid: int) -> bool:
        return any(self._owns(pid, p) for p in ("systemd-nspawn", "headscale", "tailscaled"))

    def _leftover_pids(self) -> Iterator[int]:
        """nspawn processes of this lab that the state file no longer knows (after a crash)."""
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit() and self._owns(int(entry.name)):
                yield int(entry.name)

    def _leftover_daemons(self) -> Iterator[tuple[int, str]]:
        """This lab's headscale and management tailscaled, found by their command lines."""
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            for program in ("headscale", "tailscaled"):
                if self._owns(int(entry.name), program):
                    yield int(entry.name), program


LOGIND_UNITS = ("dbus.service", "dbus.socket", "systemd-logind.service")
PAM_SYSTEMD = "session\toptional\tpam_systemd.so\n"


def _set_logind(root: Path, on: bool) -> None:
    """A desktop's logins register with logind (pam_systemd, over D-Bus); a server of the
    lab runs neither D-Bus nor logind and opens no PAM session with systemd, as a minimal
    Debian without libpam-systemd (the image has it for the desktops)."""
    units = root / "etc/systemd/system"
    units.mkdir(parents=True, exist_ok=True)
    for unit in LOGIND_UNITS:
        masked = units / unit
        if on and masked.is_symlink():
            masked.unlink()
        elif not on and not masked.is_symlink():
            masked.symlink_to("/dev/null")
    session = root / "etc/pam.d/common-session"
    lines = [line for line in session.read_text().splitlines(keepends=True)
             if "pam_systemd.so" not in line]  # fmt: skip
    session.write_text("".join(lines) + (PAM_SYSTEMD if on else ""))


def _path(peer: dict[str, Any]) -> str:
    """How the management side reaches a peer: direct, relayed, or idle (no traffic yet)."""
    if not peer.get("Online"):
        return "offline"
    if peer.get("CurAddr"):
        return "direct"
    return "relayed" if peer.get("Active") and peer.get("Relay") else "idle"


def _reap(pids: list[int]) -> None:
    """Collect the exit status of nodes this process started (others are not our children)."""
    for pid in pids:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)


def _memory_of(pid: int) -> int | None:
    """Resident memory of a node: its nspawn process and every process below it."""
    total = 0
    for member in process_tree(pid):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{member}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
    return total or None
