"""Bringing machines onto the tailnet over SSH (``--bootstrap-ssh``): a single-use join key
minted from the control server, ``join_tailnet.yml`` run against the machine's current
address (Tailscale installed where missing, then logged in), and the tailnet address the
control server gave it, read back from the run's report.

The key exists on this machine only in a private temporary folder (0700, the file 0600)
for the length of the run; it is removed whatever happens, and it is never printed: the
playbook's tasks that touch it are ``no_log`` and the run gets only the file's path.
"""

from __future__ import annotations

import os
import shlex
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from kubani.errors import KubaniError
from kubani.vocabulary import (
    HEADSCALE_URL_VARIABLE,
    PeerSource,
    Playbook,
    Report,
    Role,
)

if TYPE_CHECKING:
    from kubani.ansible.events import PlaybookEvent
    from kubani.ansible.runner import PlaybookRequest, PlaybookRun
    from kubani.tailscale.remote import AuthKey


@dataclass(frozen=True)
class BootstrapTarget:
    """A machine reachable by SSH now (``ssh_host``: a LAN address or name) that is to join
    the tailnet as ``hostname`` (its inventory name and its tailnet name)."""

    hostname: str
    ssh_host: str
    role: Role = Role.WORKER
    ssh_user: str | None = None
    ssh_port: int | None = None

    def host_vars(self) -> dict[str, Any]:
        variables: dict[str, Any] = {"ansible_host": self.ssh_host}
        if self.ssh_user:
            variables["ansible_user"] = self.ssh_user
        if self.ssh_port:
            variables["ansible_port"] = self.ssh_port
        return variables


@dataclass(frozen=True)
class Joined:
    """A machine on the tailnet: its address there, and whether this run logged it in."""

    hostname: str
    address: str
    newly_joined: bool
    host_keys: tuple[str, ...] = ()  # "type base64", read over the checked LAN connection
    ssh_args: str = ""  # the SSH options Ansible used for it (they say where keys are kept)
    ssh_port: int = 22


@dataclass
class JoinRun:
    """One run of join_tailnet.yml, ready to start: the request, and what its events said."""

    request: PlaybookRequest
    targets: tuple[BootstrapTarget, ...]
    reports: dict[str, dict[str, Any]] = field(default_factory=dict)

    def observe(self, event: PlaybookEvent) -> None:
        report = event.report
        if event.host and report is not None and report.get(Report.TAILNET_JOIN) is True:
            self.reports[event.host] = report

    def joined(self, run: PlaybookRun) -> list[Joined]:
        """Each target's address, or the error that names the machine and the step."""
        failures = {f.host: f for f in run.state.failures}
        if run.state.interrupted:
            raise KubaniError(
                "joining the tailnet was interrupted",
                "the run was stopped before every machine had joined",
                "run the command again: machines already on the tailnet are left as they are",
            )
        out: list[Joined] = []
        for target in self.targets:
            name = target.hostname
            failure = failures.get(name)
            if failure is not None:
                step = f"{failure.role} : {failure.task}" if failure.role else failure.task
                raise KubaniError(
                    f"{name} ({target.ssh_host}) did not join the tailnet",
                    f"failed at {step}: {failure.message}",
                    failure.hint or "fix what the step says and run the command again",
                )
            report = self.reports.get(name) or {}
            address = report.get("address")
            if not isinstance(address, str) or not address:
                raise KubaniError(
                    f"{name} ({target.ssh_host}) did not report a tailnet address",
                    "the join run ended without the node's address",
                    f"see the run's log in {run.run_dir}",
                )
            out.append(
                Joined(
                    name,
                    address,
                    bool(report.get("joined")),
                    _host_keys(report.get("host_keys")),
                    str(report.get("ssh_args") or ""),
                    _port(report.get("ssh_port")),
                )
            )
        return out


def _port(value: object) -> int:
    try:
        port = int(str(value))
    except ValueError:
        return 22
    return port if 0 < port < 65536 else 22


def _host_keys(facts: object) -> tuple[str, ...]:
    """``type base64`` lines from Ansible's ssh_pub_keys facts."""
    if not isinstance(facts, dict):
        return ()
    lines = []
    for kind in ("ed25519", "ecdsa", "rsa"):
        key, keytype = (
            facts.get(f"ssh_host_key_{kind}_public"),
            facts.get(f"ssh_host_key_{kind}_public_keytype"),
        )
        if isinstance(key, str) and isinstance(keytype, str) and key and keytype:
            lines.append(f"{keytype} {key}")
    return tuple(lines)


def known_hosts_file(ssh_args: str, address: str) -> Path:
    """The known_hosts file SSH reads for ``address`` with ``ssh_args`` (``ssh -G``)."""
    try:
        result = subprocess.run(
            ["ssh", "-G", *shlex.split(ssh_args), address],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, ValueError, subprocess.SubprocessError) as exc:
        raise KubaniError(
            "cannot tell where SSH keeps host keys", str(exc), "check that `ssh` is installed"
        ) from None
    for line in result.stdout.splitlines():
        option, _, value = line.partition(" ")
        if option == "userknownhostsfile" and value.split():
            return Path(value.split()[0]).expanduser()
    return Path.home() / ".ssh" / "known_hosts"


def trust_host_keys(joined: Sequence[Joined]) -> list[str]:
    """Record each machine's host keys (read over the LAN connection, whose key SSH checked)
    for its new tailnet address in the known_hosts file SSH uses for it, replacing what that
    file held for the address (a machine that had it before). Returns what was done."""
    done: list[str] = []
    for machine in joined:
        if not machine.host_keys:
            continue
        path = known_hosts_file(machine.ssh_args, machine.address)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if path.is_file():
            subprocess.run(
                ["ssh-keygen", "-R", machine.address, "-f", str(path)],
                capture_output=True,
                timeout=30,
                check=False,
            )
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(descriptor, "a", encoding="utf-8") as handle:
            handle.writelines(f"{machine.address} {key}\n" for key in machine.host_keys)
        done.append(f"{machine.hostname}'s host keys trusted at {machine.address} in {path}")
    return done


def join_credentials() -> PeerSource:
    """Where join keys can be minted with this environment's credentials (headscale, or the
    Tailscale API); raises the fix when there is nowhere, before anything is done."""
    from kubani.operations.tailnet import live_policy_source

    source = live_policy_source()
    if source is None:
        raise KubaniError(
            "cannot mint a join key",
            "no Tailscale API or headscale credentials are set",
            "set TAILSCALE_API_KEY (or TAILSCALE_OAUTH_CLIENT_ID and _SECRET, with the "
            "auth_keys scope), or HEADSCALE_URL and HEADSCALE_API_KEY",
        )
    return source


def mint_join_key(source: PeerSource, tags: Sequence[str], timeout: float = 10.0) -> AuthKey:
    """A single-use, pre-authorised key carrying ``tags``."""
    from kubani.tailscale.remote import ApiCredentials, mint_api_auth_key, mint_headscale_auth_key

    if source == PeerSource.HEADSCALE:
        return mint_headscale_auth_key(list(tags), timeout=timeout)
    return mint_api_auth_key(ApiCredentials.from_env(), list(tags), timeout=timeout)


def revoke_join_keys(source: PeerSource, keys: Mapping[str, AuthKey]) -> list[str]:
    """Take back the run's keys, used or not (a used one is spent already; one a failed run
    did not use would stay valid until it expires). Returns what could not be done."""
    from kubani.tailscale.parse import TailscaleError
    from kubani.tailscale.remote import (
        ApiCredentials,
        expire_headscale_auth_key,
        revoke_api_auth_key,
    )

    problems: list[str] = []
    for hostname, key in keys.items():
        if key.key_id is None:
            problems.append(f"{hostname}: the control server gave the key no id")
            continue
        try:
            if source == PeerSource.HEADSCALE:
                expire_headscale_auth_key(key.key_id)
            else:
                revoke_api_auth_key(ApiCredentials.from_env(), key.key_id)
        except TailscaleError as exc:
            problems.append(f"{hostname}: {exc.line()}")
    return problems


def default_login_server(source: PeerSource) -> str:
    """The control server ``tailscale up`` must be told of: headscale's URL (its API and
    its control protocol share one address); empty for Tailscale's own."""
    return os.environ.get(HEADSCALE_URL_VARIABLE, "") if source == PeerSource.HEADSCALE else ""


def _inventory_text(targets: Sequence[BootstrapTarget], key_files: dict[str, Path]) -> str:
    groups: dict[str, Any] = {}
    for target in targets:
        hosts = groups.setdefault(target.role.group, {"hosts": {}})["hosts"]
        hosts[target.hostname] = target.host_vars() | {
            "tailscale_auth_key_file": str(key_files[target.hostname])
        }
    return yaml.safe_dump({"all": {"children": groups}}, sort_keys=False)


@contextmanager
def prepared_join(
    project: Path,
    inventory: Path | None,
    targets: Sequence[BootstrapTarget],
    keys: Mapping[str, AuthKey],
    tags: Sequence[str],
    login_server: str,
) -> Iterator[JoinRun]:
    """The run of join_tailnet.yml for ``targets``: an inventory of just them (beside the
    cluster's own, whose group variables give the connection settings) and each one's key
    (``keys``, by hostname: a key is single-use) in a private file; all removed when the
    block ends, however it ends."""
    from kubani.ansible.runner import PlaybookRequest

    folder = Path(tempfile.mkdtemp(prefix="kubani-join-"))  # mkdtemp: 0700
    try:
        key_files: dict[str, Path] = {}
        for target in targets:
            key_files[target.hostname] = folder / f"{target.hostname}.key"
            descriptor = os.open(
                key_files[target.hostname], os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600
            )
            with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
                handle.write(keys[target.hostname].secret)
        machines = folder / "machines.yml"
        machines.write_text(_inventory_text(targets, key_files), encoding="utf-8")
        variables: dict[str, Any] = {"tailscale_tags": list(tags)}
        if login_server:
            variables["tailscale_login_server"] = login_server
        request = PlaybookRequest(
            playbook=Playbook.JOIN_TAILNET.value,
            inventory=inventory if inventory is not None else machines,
            extra_inventories=(machines,) if inventory is not None else (),
            project=project,
            extravars=variables,
            limit=",".join(t.hostname for t in targets),
        )
        yield JoinRun(request, tuple(targets))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        if folder.exists():  # a key left behind must not go unnoticed
            raise KubaniError(
                "a join key could not be removed",
                f"{folder} is still there",
                f"delete {folder} (the keys in it are single-use and expire within 30 minutes)",
            )


def keep_servers_from_expiring(source: PeerSource, joined: Sequence[Joined]) -> list[str]:
    """Key expiry off for the joined machines where the control server has the switch (the
    Tailscale API); headscale's tagged nodes never expire. Returns what could not be done."""
    from kubani.operations.tailnet import device_id_for
    from kubani.tailscale.parse import TailscaleError
    from kubani.tailscale.remote import ApiCredentials, disable_api_key_expiry

    if source != PeerSource.API:
        return []
    problems: list[str] = []
    for machine in joined:
        try:
            device = device_id_for(source, machine.address)
            if device is None:
                problems.append(f"{machine.hostname}: no device with {machine.address} yet")
                continue
            disable_api_key_expiry(ApiCredentials.from_env(), device)
        except TailscaleError as exc:
            problems.append(f"{machine.hostname}: {exc.line()}")
    return problems


# How long a machine that has just joined may take to be reached at its tailnet address: this
# machine's tailscaled learns of a new peer from the control server's next map update.
TAILNET_REACH_WAIT_S = 60.0


def wait_until_reachable(
    joined: Sequence[Joined], wait_s: float = TAILNET_REACH_WAIT_S, poll_s: float = 0.5
) -> list[Joined]:
    """Wait (``wait_s`` in all) until this machine reaches each joined machine's SSH port at
    its tailnet address, so that what comes next (provisioning) does not race the tailnet.
    Returns the machines still out of reach when the time ran out."""
    deadline = time.monotonic() + wait_s
    unreached: list[Joined] = []
    for machine in joined:
        while True:
            try:
                with socket.create_connection((machine.address, machine.ssh_port), timeout=2):
                    break
            except OSError:
                if time.monotonic() >= deadline:
                    unreached.append(machine)
                    break
                time.sleep(poll_s)
    return unreached
