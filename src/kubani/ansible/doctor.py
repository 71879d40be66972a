"""``doctor``: what doctor.yml found on each node, turned into a checklist with fixes."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from kubani import jsonsafe
from kubani.vocabulary import Role, Verdict

SUPPORTED_FAMILIES = ("Debian", "RedHat")
SUPPORTED_ARCHITECTURES = ("x86_64", "aarch64")
MIN_DISK_BYTES = 5 * 2**30
LOW_DISK_BYTES = 15 * 2**30
MIN_MEMORY_MB: dict[str, int] = {Role.CONTROL_PLANE: 1800, Role.WORKER: 900}


@dataclass(frozen=True)
class Check:
    host: str
    name: str
    result: Verdict
    detail: str
    fix: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "check": self.name,
            "result": self.result,
            "detail": self.detail,
            "fix": self.fix,
        }


def _ok(host: str, name: str, detail: str) -> Check:
    return Check(host, name, Verdict.OK, detail)


def node_checks(
    host: str, role: str, tailscale_ip: str | None, report: dict[str, Any]
) -> list[Check]:
    checks = [_ok(host, "SSH", "reachable")]
    if report.get("sudo_error"):
        checks.append(
            Check(host, "sudo", Verdict.FAIL, str(report["sudo_error"]),
                  f"give the SSH user password-less sudo on {host}")
        )  # fmt: skip
    else:
        checks.append(_ok(host, "sudo", "works"))
    family, arch = str(report.get("os_family")), str(report.get("architecture"))
    system = f"{report.get('distribution')} ({arch})"
    if family in SUPPORTED_FAMILIES and arch in SUPPORTED_ARCHITECTURES:
        checks.append(_ok(host, "OS", system))
    else:
        checks.append(
            Check(host, "OS", Verdict.FAIL, f"{system} is not supported",
                  "use a Debian/Ubuntu or RHEL-family system on x86_64 or aarch64")
        )  # fmt: skip
    checks += _tailscale(host, tailscale_ip, report)
    checks.append(_ports(host, report))
    checks.append(_disk(host, report))
    checks.append(_memory(host, role, report))
    synced = str(report.get("time_synchronised", "")).strip()
    if synced == "yes":
        checks.append(_ok(host, "time", "synchronised (NTP)"))
    else:
        checks.append(
            Check(host, "time", Verdict.WARN, f"NTP synchronised: {synced or 'unknown'}",
                  "enable time sync (systemd-timesyncd or chrony); TLS and etcd need it")
        )  # fmt: skip
    return checks


def _tailscale(host: str, tailscale_ip: str | None, report: dict[str, Any]) -> list[Check]:
    rc = int(report.get("tailscale_rc", -1))
    if rc in (-1, 127) or "No such file" in str(report.get("tailscale_error")):
        return [
            Check(host, "tailscale", Verdict.FAIL, "the tailscale CLI is not installed",
                  f"install Tailscale on {host} and run `sudo tailscale up`")
        ]  # fmt: skip
    try:
        state = jsonsafe.loads(str(report.get("tailscale") or "{}"))
    except json.JSONDecodeError:
        state = {}
    backend = state.get("BackendState") or "unknown"
    if rc != 0 or backend != "Running":
        detail = f"BackendState {backend}" if state else str(report.get("tailscale_error"))[:200]
        return [
            Check(host, "tailscale", Verdict.FAIL, detail, f"run `sudo tailscale up` on {host}")
        ]
    checks = [_ok(host, "tailscale", "Running")]
    addresses = list((state.get("Self") or {}).get("TailscaleIPs") or [])
    if tailscale_ip and tailscale_ip not in addresses:
        checks.append(
            Check(host, "tailnet IP", Verdict.FAIL,
                  f"inventory says {tailscale_ip}, node has {', '.join(addresses) or 'none'}",
                  f"cluster-mgr config-set tailscale_ip <ip> --scope {host}")
        )  # fmt: skip
    else:
        checks.append(_ok(host, "tailnet IP", tailscale_ip or "-"))
    relayed = [
        str(peer.get("HostName"))
        for peer in (state.get("Peer") or {}).values()
        if peer.get("Online")
        and peer.get("Relay")
        and not peer.get("CurAddr")
        and set(peer.get("TailscaleIPs") or []) & set(report.get("cluster_ips") or [])
    ]
    if relayed:
        checks.append(
            Check(host, "tailnet paths", Verdict.WARN, f"relayed to {', '.join(sorted(relayed))}",
                  "check UDP 41641 and NAT on both sides (`tailscale netcheck`)")
        )  # fmt: skip
    return checks


def _ports(host: str, report: dict[str, Any]) -> Check:
    try:
        ports = jsonsafe.loads(str(report.get("ports") or "{}"))
    except json.JSONDecodeError:
        ports = {}
    blocked = ports.get("blocked") or []
    if "checked" not in ports:
        return Check(host, "ports", Verdict.WARN, "could not probe the tailnet ports", None)
    if blocked:
        pairs = ", ".join(f"{b['name']}:{b['port']} ({b['error']})" for b in blocked)
        return Check(
            host, "ports", Verdict.FAIL, f"cannot reach {pairs}",
            "allow TCP 6443 (control planes) and 10250 on tailscale0: Tailscale ACLs and the "
            "target's firewall",
        )  # fmt: skip
    return _ok(host, "ports", f"{ports.get('checked', 0)} tailnet paths answer")


def _disk(host: str, report: dict[str, Any]) -> Check:
    free = int(float(report.get("disk_free_bytes") or -1))
    if free < 0:
        return Check(host, "disk", Verdict.WARN, "free space unknown", None)
    text = f"{free / 2**30:.1f} GiB free for /var/lib"
    if free < MIN_DISK_BYTES:
        return Check(
            host, "disk", Verdict.FAIL, text, "free at least 5 GiB (images and etcd live there)"
        )
    if free < LOW_DISK_BYTES:
        return Check(host, "disk", Verdict.WARN, text, "15 GiB or more leaves room for images")
    return _ok(host, "disk", text)


def _memory(host: str, role: str, report: dict[str, Any]) -> Check:
    total = int(float(report.get("memtotal_mb") or 0))
    need = MIN_MEMORY_MB.get(role, 900)
    text = f"{total / 1024:.1f} GiB"
    if total < need:
        return Check(
            host, "memory", Verdict.FAIL, text,
            f"a {role} needs at least {need / 1024:.1f} GiB (plus what its user needs)",
        )  # fmt: skip
    return _ok(host, "memory", text)


def unreachable(host: str, message: str | None) -> list[Check]:
    return [
        Check(host, "SSH", Verdict.FAIL, message or "unreachable",
              f"check SSH to {host}: ansible_host, ansible_user and the key (`ssh {host} true`)")
    ]  # fmt: skip
