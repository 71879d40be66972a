"""What to do about a failure: the role's own "Fix:" text, else a hint for known failures."""

from __future__ import annotations

import re

_KNOWN: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(r"BackendState (NeedsLogin|Stopped|NeedsMachineAuth)|logged out", re.I),
        "run `sudo tailscale up` on {host}",
    ),
    (
        re.compile(r"inventory says tailscale_ip", re.I),
        "set the node's real address: `cluster-mgr config-set tailscale_ip <ip> --scope {host}` "
        "(see `cluster-mgr discover`)",
    ),
    (
        re.compile(r"cannot reach .* on \d+/tcp|Connection refused|No route to host", re.I),
        "allow the port on the tailscale0 interface of the target (firewall / ACLs), then retry",
    ),
    (
        re.compile(r"does not match\s+sha256sum|checksum", re.I),
        "the K3s artifact is corrupt or for another version: download it again for k3s_version",
    ),
    (
        re.compile(r"unrecognized or mismatching host key|Host key verification failed", re.I),
        "this machine does not know {host}'s SSH host key (or it changed): connect once with "
        "`ssh {host}` and compare the fingerprint with the node's, then retry",
    ),
    (
        # Mitogen's words when ssh ends before the node said anything: sshd closed the
        # connection, and ssh only says why at a log level Mitogen turns off.
        re.compile(r"EOF on stream; last \d+ lines received:\W*$"),
        "{host}'s SSH server closed the connection without a reason: a machine still booting "
        "turns away every user but root (/run/nologin), as do sshd's AllowUsers or DenyUsers "
        "and an expired account; `ssh -v {host} true` shows which",
    ),
    (
        re.compile(r"Failed to connect to the host via ssh|Permission denied \(publickey", re.I),
        "check SSH to {host} (ansible_host, ansible_user, key): `ssh {host} true`",
    ),
    (
        re.compile(r"Missing sudo password|sudo: a password is required", re.I),
        "give the SSH user password-less sudo on {host}, or pass --ask-become-pass",
    ),
)
_FIX = re.compile(r"\bFix:\s*(.+?)\s*$", re.I | re.S)


def hint_for(message: str | None, host: str) -> str | None:
    if not message:
        return None
    explicit = _FIX.search(message)
    if explicit:
        return explicit.group(1).rstrip(".")
    for pattern, hint in _KNOWN:
        if pattern.search(message):
            return hint.format(host=host)
    return None


def without_fix(message: str) -> str:
    """The message with its "Fix: ..." tail removed (shown separately as the hint)."""
    return _FIX.sub("", message).rstrip(" .") + "."
