#!/usr/bin/env python3
"""kubani-guard: the cluster steps aside while a workstation's owner uses it.

Runs on a node marked as a workstation (a systemd service installed by the
workstation_guard role). Every poll it reads local signals only:

- logind's sessions: an active user session whose idle hint is off, on a seat or a TTY,
  of a user other than the ones Ansible logs in as;
- GPU compute processes (``nvidia-smi --query-compute-apps``) whose cgroup is not one of
  the cluster's pods.

While the machine is in use, its own Node object carries a ``NoSchedule`` taint (running
pods stay) and, when the policy says so and the GPU is in use, a ``NoExecute`` taint that
evicts the GPU pods. The taints go only after the machine has been idle for ``idle_after``
seconds, so that a short pause does not flap; during quiet hours the guard holds nothing;
``kubani.io/guard-override: hold|release`` on the Node (``cluster-mgr node hold|release``)
wins over the signals.

Standard library only: it runs on the node's own Python.
"""

from __future__ import annotations

import json
import re
import signal
import ssl
import subprocess
import sys
import threading
import time as time_module
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, time
from pathlib import Path
from typing import Any

# The Node's taints and annotations the guard owns (and never touches any other).
TAINT_KEY = "kubani.io/owner-active"
GPU_TAINT_KEY = "kubani.io/owner-gpu"
HELD_SINCE = "kubani.io/held-since"
HELD_REASON = "kubani.io/held-reason"
# Refreshed while a live guard holds its node; a hold whose heartbeat is old is a dead guard's
# and the sweeper (on a control plane) lifts it.
HEARTBEAT = "kubani.io/held-heartbeat"
HEARTBEAT_S = 60.0
# Node events live in the default namespace (as the kubelet's do).
EVENT_NAMESPACE = "default"
HELD_EVENT, RELEASED_EVENT = "HeldByOwner", "ReleasedByOwner"
OVERRIDE = "kubani.io/guard-override"
HOLD, RELEASE = "hold", "release"
# Only cluster pods live under a cgroup with this in its path (K3s's kubelet, systemd or
# cgroupfs driver alike).
POD_CGROUP_MARK = "kubepods"


class PolicyError(ValueError):
    """The guard's settings file says something the guard cannot do."""


def _clock(text: str) -> time:
    match = re.fullmatch(r"([01]?\d|2[0-3]):([0-5]\d)", text.strip())
    if match is None:
        raise PolicyError(f"quiet hours: {text!r} is not a time of day (HH:MM)")
    return time(int(match.group(1)), int(match.group(2)))


@dataclass(frozen=True)
class Policy:
    """What the guard watches and does, from its settings file (written by the role)."""

    node: str
    idle_after_s: float = 600.0
    poll_s: float = 10.0
    ignore_users: frozenset[str] = frozenset()
    watch_gpu: bool = True
    evict_gpu: bool = False
    quiet_hours: tuple[tuple[time, time], ...] = ()
    stale_after_s: float = 600.0  # a hold whose heartbeat is this old is lifted by the sweeper

    @classmethod
    def from_json(cls, data: Any) -> Policy:
        if not isinstance(data, dict) or not isinstance(data.get("node"), str) or not data["node"]:
            raise PolicyError("the settings need the node's name (node)")
        try:
            idle_after = float(data.get("idle_after_s", 600))
            poll = float(data.get("poll_s", 10))
            stale_after = float(data.get("stale_after_s", 600))
        except (TypeError, ValueError):
            raise PolicyError(
                "idle_after_s, poll_s and stale_after_s must be numbers of seconds"
            ) from None
        if idle_after < 0 or poll <= 0:
            raise PolicyError("idle_after_s must be 0 or more and poll_s more than 0")
        if stale_after < 4 * poll:
            raise PolicyError("stale_after_s must be at least 4 polls (poll_s)")
        windows = []
        for window in data.get("quiet_hours") or []:
            start, dash, end = str(window).partition("-")
            if not dash:
                raise PolicyError(f"quiet hours: {window!r} is not a window (HH:MM-HH:MM)")
            windows.append((_clock(start), _clock(end)))
        users = data.get("ignore_users") or []
        if not isinstance(users, list) or not all(isinstance(u, str) for u in users):
            raise PolicyError("ignore_users must be a list of user names")
        return cls(
            node=data["node"],
            idle_after_s=idle_after,
            poll_s=poll,
            ignore_users=frozenset(users),
            watch_gpu=bool(data.get("watch_gpu", True)),
            evict_gpu=bool(data.get("evict_gpu", False)),
            quiet_hours=tuple(windows),
            stale_after_s=stale_after,
        )

    def quiet(self, moment: datetime) -> bool:
        """Whether ``moment`` (local time) falls in a quiet window (one may cross midnight)."""
        now = moment.time()
        for start, end in self.quiet_hours:
            if start <= end and start <= now < end:
                return True
            if start > end and (now >= start or now < end):
                return True
        return False


# ---- signals --------------------------------------------------------------------------


@dataclass(frozen=True)
class Session:
    """One logind session, from ``loginctl show-session``."""

    session_id: str
    user: str
    session_class: str
    active: bool
    idle: bool
    remote: bool
    seat: str = ""
    tty: str = ""
    remote_host: str = ""

    @property
    def where(self) -> str:
        # An SSH login without a terminal (or one whose terminal logind was not told) has
        # neither seat nor TTY: where it comes from says as much.
        if self.seat or self.tty:
            return self.seat or self.tty
        if self.remote:
            return f"SSH from {self.remote_host}" if self.remote_host else "SSH"
        return "?"


def session_ids(listing: str) -> list[str]:
    """The session ids in ``loginctl list-sessions --no-legend`` (first column)."""
    return [line.split()[0] for line in listing.splitlines() if line.strip()]


def parse_session(properties: str) -> Session | None:
    """A session from ``loginctl show-session ID -p ...`` (KEY=VALUE lines), or None when a
    field it needs is missing (the session ended while it was read)."""
    values = dict(line.split("=", 1) for line in properties.splitlines() if "=" in line)
    if not values.get("Id") or not values.get("Name"):
        return None
    return Session(
        session_id=values["Id"],
        user=values["Name"],
        session_class=values.get("Class", ""),
        active=values.get("Active") == "yes",
        idle=values.get("IdleHint") == "yes",
        remote=values.get("Remote") == "yes",
        seat=values.get("Seat", ""),
        tty=values.get("TTY", ""),
        remote_host=values.get("RemoteHost", ""),
    )


def owners_sessions(sessions: Iterable[Session], ignore_users: frozenset[str]) -> list[Session]:
    """Sessions that mean someone is using the machine: a user's (not a greeter's or a
    service's), active, not idle, of a user the cluster does not log in as."""
    return [
        s
        for s in sessions
        if s.session_class == "user" and s.active and not s.idle and s.user not in ignore_users
    ]


def compute_apps(csv_text: str) -> list[tuple[int, str]]:
    """(pid, name) of each line of ``nvidia-smi --query-compute-apps=pid,process_name
    --format=csv,noheader``; lines it cannot read (a header, "No running processes found")
    are skipped."""
    out = []
    for line in csv_text.splitlines():
        pid, _, name = line.partition(",")
        if pid.strip().isdigit():
            out.append((int(pid), name.strip()))
    return out


def is_pod(cgroup_text: str) -> bool:
    """Whether a process's ``/proc/PID/cgroup`` puts it in one of the cluster's pods."""
    return any(POD_CGROUP_MARK in line for line in cgroup_text.splitlines())


@dataclass(frozen=True)
class Signals:
    """What the node says right now: who uses it, and which GPU processes are not pods'."""

    sessions: tuple[Session, ...] = ()
    gpu_processes: tuple[tuple[int, str], ...] = ()

    @property
    def busy(self) -> bool:
        return bool(self.sessions or self.gpu_processes)

    def reason(self) -> str:
        parts = [f"{s.user} on {s.where}" for s in self.sessions]
        parts += [f"GPU: {name or '?'} (pid {pid})" for pid, name in self.gpu_processes]
        return ", ".join(parts)


# ---- the decision ---------------------------------------------------------------------


@dataclass(frozen=True)
class Desired:
    """What the Node should carry now."""

    hold: bool
    evict_gpu: bool = False
    reason: str = ""
    since: float | None = None  # when the hold began (seconds since the epoch)


@dataclass
class Guard:
    """The hysteresis: held from the first busy poll until ``idle_after`` seconds after the
    last one; the GPU's eviction likewise, after the last foreign GPU process."""

    policy: Policy
    last_busy: float | None = None
    last_gpu_busy: float | None = None
    held_since: float | None = None
    reason: str = ""

    def decide(
        self, now: float, local: datetime, signals: Signals, override: str | None
    ) -> Desired:
        if override == RELEASE:
            return self._release()
        if override == HOLD:
            self.held_since = self.held_since or now
            return Desired(True, False, "held by hand (cluster-mgr node hold)", self.held_since)
        if self.policy.quiet(local):
            return self._release()
        if signals.busy:
            self.last_busy = now
            self.reason = signals.reason()
            self.held_since = self.held_since or now
        if signals.gpu_processes:
            self.last_gpu_busy = now
        if self.last_busy is None or now - self.last_busy >= self.policy.idle_after_s:
            return self._release()
        gpu_recent = (
            self.last_gpu_busy is not None and now - self.last_gpu_busy < self.policy.idle_after_s
        )
        return Desired(True, self.policy.evict_gpu and gpu_recent, self.reason, self.held_since)

    def _release(self) -> Desired:
        self.last_busy = self.last_gpu_busy = self.held_since = None
        self.reason = ""
        return Desired(False)


# ---- the Node -------------------------------------------------------------------------


def _taints(desired: Desired) -> list[dict[str, str]]:
    out = []
    if desired.hold:
        out.append({"key": TAINT_KEY, "value": "true", "effect": "NoSchedule"})
    if desired.evict_gpu:
        out.append({"key": GPU_TAINT_KEY, "value": "true", "effect": "NoExecute"})
    return out


def _our_taints(node: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The guard's own taints on ``node``."""
    taints = (node.get("spec") or {}).get("taints") or []
    return [t for t in taints if isinstance(t, dict) and t.get("key") in (TAINT_KEY, GPU_TAINT_KEY)]


def _stamp(moment: float) -> str:
    return datetime.fromtimestamp(moment).astimezone().isoformat(timespec="seconds")


def _moment(stamp: object) -> float | None:
    try:
        return datetime.fromisoformat(str(stamp)).timestamp()
    except ValueError:
        return None


def _annotations(desired: Desired, now: float) -> dict[str, str | None]:
    if not desired.hold:
        return {HELD_SINCE: None, HELD_REASON: None, HEARTBEAT: None}
    return {
        HELD_SINCE: _stamp(desired.since or now),
        HELD_REASON: desired.reason[:250],
        HEARTBEAT: _stamp(now),
    }


def node_patch(
    node: Mapping[str, Any], desired: Desired, now: float = 0.0, heartbeat_s: float = HEARTBEAT_S
) -> list[dict[str, Any]] | None:
    """A JSON patch that makes ``node`` carry what ``desired`` says, touching only the
    guard's own taints and annotations, guarded by the object's resourceVersion (a change in
    between fails the patch, and the next poll reads the node again); None when the node
    carries it already. A hold's heartbeat is refreshed once it is ``heartbeat_s`` old."""
    metadata = node.get("metadata") or {}
    spec = node.get("spec") or {}
    current = [t for t in spec.get("taints") or [] if isinstance(t, dict)]
    others = [t for t in current if t.get("key") not in (TAINT_KEY, GPU_TAINT_KEY)]
    ours = [
        {"key": t.get("key"), "value": t.get("value", ""), "effect": t.get("effect")}
        for t in _our_taints(node)
    ]
    wanted = _taints(desired)
    annotations = dict(metadata.get("annotations") or {})
    changes = {
        k: v
        for k, v in _annotations(desired, now).items()
        if annotations.get(k) != v and not (v is None and k not in annotations)
    }
    # A hold that is still on only refreshes its reason when that changed, and its heartbeat
    # when that is old.
    if desired.hold and HELD_SINCE in annotations:
        changes.pop(HELD_SINCE, None)
    beat = _moment(annotations.get(HEARTBEAT))
    if desired.hold and beat is not None and now - beat < heartbeat_s:
        changes.pop(HEARTBEAT, None)
    if ours == wanted and not changes:
        return None
    version = {
        "op": "test",
        "path": "/metadata/resourceVersion",
        "value": metadata.get("resourceVersion"),
    }
    ops: list[dict[str, Any]] = [version]
    ops.append({"op": "add", "path": "/spec/taints", "value": others + wanted})
    if "annotations" not in metadata:
        ops.append({"op": "add", "path": "/metadata/annotations", "value": {}})
    for key, value in changes.items():
        path = "/metadata/annotations/" + key.replace("~", "~0").replace("/", "~1")
        ops.append({"op": "remove", "path": path} if value is None else
                   {"op": "add", "path": path, "value": value})  # fmt: skip
    return ops


def override_of(node: Mapping[str, Any]) -> str | None:
    value = ((node.get("metadata") or {}).get("annotations") or {}).get(OVERRIDE)
    return value if value in (HOLD, RELEASE) else None


def describe(ops: Sequence[Mapping[str, Any]]) -> str:
    return json.dumps(ops, sort_keys=True)


# ---- reading the node -----------------------------------------------------------------

Runner = Callable[[Sequence[str]], str]
SESSION_PROPERTIES = (
    "Id",
    "Name",
    "Class",
    "Active",
    "IdleHint",
    "Remote",
    "RemoteHost",
    "Seat",
    "TTY",
)


def run_command(argv: Sequence[str]) -> str:
    """A command's output; "" when it is missing or fails (a machine without a GPU has no
    nvidia-smi; logind may be restarting): a signal that cannot be read is no signal."""
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout if done.returncode == 0 else ""


def read_signals(policy: Policy, run: Runner = run_command, proc: Path = Path("/proc")) -> Signals:
    sessions = []
    for session_id in session_ids(run(["loginctl", "list-sessions", "--no-legend"])):
        shown = run(["loginctl", "show-session", session_id,
                     *(f"--property={p}" for p in SESSION_PROPERTIES)])  # fmt: skip
        session = parse_session(shown)
        if session is not None:
            sessions.append(session)
    gpu: list[tuple[int, str]] = []
    if policy.watch_gpu:
        listed = run(["nvidia-smi", "--query-compute-apps=pid,process_name",
                      "--format=csv,noheader"])  # fmt: skip
        for pid, name in compute_apps(listed):
            try:
                cgroup = (proc / str(pid) / "cgroup").read_text()
            except OSError:
                continue  # gone already
            if not is_pod(cgroup):
                gpu.append((pid, name))
    return Signals(tuple(owners_sessions(sessions, policy.ignore_users)), tuple(gpu))


# ---- the API --------------------------------------------------------------------------


class ApiError(Exception):
    """The API did not do what was asked (the next poll tries again)."""


@dataclass(frozen=True)
class Api:
    """The guard's own credentials: a token that may read and patch this Node only."""

    server: str
    token_file: Path | None
    ca_file: Path
    # The sweeper's credentials instead of a token: a control plane's admin client.
    client_cert: Path | None = None
    client_key: Path | None = None

    def _request(self, method: str, path: str, body: Any = None, kind: str = "") -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"{self.server}{path}", data=data, method=method)
        if self.token_file is not None:
            token = self.token_file.read_text().strip()
            request.add_header("Authorization", f"Bearer {token}")
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", kind or "application/json")
        context = None
        if self.server.startswith("https:"):
            context = ssl.create_default_context(cafile=str(self.ca_file))
            if self.client_cert is not None:
                context.load_cert_chain(str(self.client_cert), str(self.client_key or ""))
        try:
            with urllib.request.urlopen(request, timeout=10, context=context) as reply:
                return json.loads(reply.read() or b"{}")
        except urllib.error.HTTPError as exc:
            raise ApiError(f"{method} {path}: HTTP {exc.code} {exc.read()[:200]!r}") from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise ApiError(f"{method} {path}: {exc}") from None

    def node(self, name: str) -> dict[str, Any]:
        found = self._request("GET", f"/api/v1/nodes/{name}")
        if not isinstance(found, dict):
            raise ApiError(f"GET node {name}: not an object")
        return found

    def nodes(self) -> list[dict[str, Any]]:
        listed = self._request("GET", "/api/v1/nodes")
        items = listed.get("items") if isinstance(listed, dict) else None
        return [n for n in items or [] if isinstance(n, dict)]

    def record(self, node: Mapping[str, Any], reason: str, message: str, now: float) -> None:
        """An Event on the Node (``kubectl describe node`` and the TUI's events show it)."""
        metadata = node.get("metadata") or {}
        name = str(metadata.get("name"))
        stamp = _stamp(now)
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{name}.", "namespace": EVENT_NAMESPACE},
            "involvedObject": {"apiVersion": "v1", "kind": "Node", "name": name,
                               "uid": metadata.get("uid", "")},
            "reason": reason,
            "message": message[:1000],
            "type": "Normal",
            "source": {"component": "kubani-guard", "host": name},
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
        }  # fmt: skip
        self._request("POST", f"/api/v1/namespaces/{EVENT_NAMESPACE}/events", event)

    def patch_node(self, name: str, ops: list[dict[str, Any]]) -> None:
        self._request("PATCH", f"/api/v1/nodes/{name}", ops, "application/json-patch+json")


# ---- the loop -------------------------------------------------------------------------


def step(guard: Guard, api: Api, signals: Signals, now: float, local: datetime) -> Desired:
    """One poll: read the Node, decide, patch it when it must change."""
    node = api.node(guard.policy.node)
    desired = guard.decide(now, local, signals, override_of(node))
    ops = node_patch(node, desired, now, min(HEARTBEAT_S, guard.policy.stale_after_s / 4))
    if ops is not None:
        api.patch_node(guard.policy.node, ops)
        was_held = any(t.get("key") == TAINT_KEY for t in _our_taints(node))
        if desired.hold != was_held:
            _announce(api, node, desired, now)
    return desired


def _announce(api: Api, node: Mapping[str, Any], desired: Desired, now: float) -> None:
    """Log and record a hold or a release (an event that cannot be written is only logged:
    the node's state is what matters)."""
    name = str((node.get("metadata") or {}).get("name"))
    if desired.hold:
        reason, message = HELD_EVENT, f"kept free of new pods: {desired.reason}"
        if desired.evict_gpu:
            message += "; GPU pods evicted"
    else:
        reason, message = RELEASED_EVENT, "the owner no longer uses it: the cluster may again"
    log(f"{name}: {message}")
    try:
        api.record(node, reason, message, now)
    except ApiError as exc:
        log(f"{name}: the event was not recorded ({exc})")


def release(guard: Guard, api: Api, attempts: int = 3) -> bool:
    """Take the guard's taints off (on a clean stop): tried a few times, as the API may be
    down; a taint left behind is removed by the next guard that starts (or by hand)."""
    for attempt in range(attempts):
        try:
            node = api.node(guard.policy.node)
            now = time_module.time()
            ops = node_patch(node, Desired(False), now)
            if ops is not None:
                api.patch_node(guard.policy.node, ops)
                _announce(api, node, Desired(False), now)
            return True
        except ApiError as exc:
            log(f"could not release {guard.policy.node} ({exc}); attempt {attempt + 1}")
            time_module.sleep(1 + attempt)
    return False


def stale(node: Mapping[str, Any], now: float, stale_after_s: float) -> bool:
    """Whether ``node`` carries a guard's hold that no live guard keeps (its heartbeat, or
    its start when it has none, is ``stale_after_s`` old or unreadable)."""
    annotations = (node.get("metadata") or {}).get("annotations") or {}
    if not _our_taints(node) and HELD_SINCE not in annotations:
        return False
    beat = _moment(annotations.get(HEARTBEAT) or annotations.get(HELD_SINCE))
    return beat is None or now - beat >= stale_after_s


def sweep(api: Api, now: float, stale_after_s: float) -> list[str]:
    """Lift every stale hold (a guard that died, or was removed, while holding); the names
    of the nodes released."""
    released = []
    for node in api.nodes():
        if stale(node, now, stale_after_s):
            name = str((node.get("metadata") or {}).get("name"))
            ops = node_patch(node, Desired(False), now)
            if ops is not None:
                api.patch_node(name, ops)
                released.append(name)
                log(f"{name}: released a stale hold (no guard kept it for {stale_after_s:.0f} s)")
    return released


def sweep_main(settings: Path) -> int:
    """One sweep, as the control plane's timer runs it."""
    try:
        data = json.loads(settings.read_text())
        api = Api(str(data["server"]), None, Path(data["ca_file"]),
                  Path(data["client_cert"]), Path(data["client_key"]))  # fmt: skip
        stale_after = float(data.get("stale_after_s", 600))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log(f"cannot sweep: {settings}: {exc}")
        return 2
    try:
        sweep(api, time_module.time(), stale_after)
    except ApiError as exc:
        log(f"cannot sweep: {exc}")
        return 1
    return 0


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)  # journald keeps the service's stderr


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["--sweep"]:
        return sweep_main(Path(args[1] if len(args) > 1 else "/etc/kubani/guard/sweeper.json"))
    settings = Path(args[0] if args else "/etc/kubani/guard/guard.json")
    try:
        data = json.loads(settings.read_text())
        policy = Policy.from_json(data)
        api = Api(str(data["server"]), Path(data["token_file"]), Path(data["ca_file"]))
    except (OSError, ValueError, KeyError, PolicyError) as exc:
        log(f"cannot start: {settings}: {exc}")
        return 2  # a settings problem: systemd should not restart it in a loop
    guard = Guard(policy)
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    backoff = policy.poll_s
    while not stopping.is_set():
        try:
            step(guard, api, read_signals(policy), time_module.time(), datetime.now())
            backoff = policy.poll_s
        except ApiError as exc:
            # The API is away (a control plane restarting, the tailnet down): keep the node
            # as it is and try again later, at most every 5 minutes.
            log(f"{policy.node}: {exc}; next try in {backoff:.0f} s")
            backoff = min(backoff * 2, 300.0)
        stopping.wait(backoff)
    return 0 if release(guard, api) else 1


if __name__ == "__main__":
    sys.exit(main())
