"""Kubani's terms, each spelled once: node roles and where the inventory keeps them, and the
sources a tailnet's devices are read from. Standard library only, so that command-line
options, models and the TUI can all use it without importing anything heavy."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    CONTROL_PLANE = "control-plane"
    WORKER = "worker"

    @property
    def group(self) -> str:
        """The inventory group that holds nodes of this role."""
        return "control_plane" if self is Role.CONTROL_PLANE else "workers"

    @classmethod
    def from_group(cls, group: str) -> Role:
        return cls.CONTROL_PLANE if group == "control_plane" else cls.WORKER


# The inventory groups that hold nodes, control planes first.
NODE_GROUPS: tuple[str, ...] = tuple(role.group for role in Role)


class PeerSource(StrEnum):
    """Where a tailnet's device list comes from."""

    CLI = "cli"  # this machine's `tailscale status --json`
    API = "api"  # the Tailscale API v2
    HEADSCALE = "headscale"  # a headscale server's API


DEFAULT_CLUSTER_NAME = "kubani"
# Where Tailscale hands out node addresses (CGNAT and its ULA); a tailnet's own pool is a
# part of the first.
TAILNET_V4 = "100.64.0.0/10"
TAILNET_V6 = "fd7a:115c:a1e0::/48"
# The playbooks' switch for a run that checks every step even where each node's record of
# the last complete run says nothing changed (ansible/roles/node_state).
FULL_RUN_VARIABLE = "kubani_full_run"
# Playbook runs' folders kept in the project (.kubani/runs: each run's log and what it was
# given); older ones are removed as a new run starts.
RUN_FOLDERS_KEPT = 50
# The largest inventory file (hosts.yml, group_vars/, host_vars/) Kubani reads: text, not data.
INVENTORY_FILE_MAX_BYTES = 64 * 2**20


class Playbook(StrEnum):
    """The playbooks in ansible/playbooks/."""

    SITE = "site"
    PROVISION_CLUSTER = "provision_cluster"
    PREFLIGHT = "preflight"
    ADD_NODE = "add_node"
    REMOVE_NODE = "remove_node"
    UPGRADE = "upgrade"
    BACKUP = "backup"
    RESTORE = "restore"
    RESET = "reset"
    GITOPS = "gitops"
    DOCTOR = "doctor"
    JOIN_TAILNET = "join_tailnet"


class Report(StrEnum):
    """The marker keys of the structured reports playbooks send (a task's ``msg`` as a
    mapping holding the marker set to true): only these reach the event stream's ``report``."""

    DOCTOR = "kubani_doctor"  # doctor.yml: one node's checks
    TAILNET_JOIN = "kubani_tailnet_join"  # join_tailnet.yml: the node's tailnet address


# Credentials for the tailnet's control server are read from these variables.
HEADSCALE_URL_VARIABLE = "HEADSCALE_URL"
HEADSCALE_API_KEY_VARIABLE = "HEADSCALE_API_KEY"
# The tags a node joins the tailnet with unless told otherwise (the tailnet policy's too).
DEFAULT_NODE_TAGS: tuple[str, ...] = ("tag:k3s",)


# What `cluster-mgr provision --playbook` runs; the others have commands of their own.
PROVISION_PLAYBOOKS: tuple[Playbook, ...] = (
    Playbook.SITE,
    Playbook.PROVISION_CLUSTER,
    Playbook.PREFLIGHT,
    Playbook.ADD_NODE,
    Playbook.GITOPS,
    Playbook.JOIN_TAILNET,
)
# Playbooks after which Flux's objects are checked for Ready.
GITOPS_PLAYBOOKS = frozenset({Playbook.SITE, Playbook.GITOPS})


# The words Ansible's `bool` filter reads as booleans (any case), as the playbooks read a
# flag: how a yes/no typed on the command line or written in an INI inventory is read.
BOOLEAN_WORDS: dict[str, bool] = {
    **dict.fromkeys(("y", "yes", "on", "1", "true", "t"), True),
    **dict.fromkeys(("n", "no", "off", "0", "false", "f"), False),
}


class ValueKind(StrEnum):
    """How a value typed on the command line is read (config-set's --type)."""

    STRING = "string"
    INT = "int"
    BOOL = "bool"
    JSON = "json"


class NodeState(StrEnum):
    """A machine's state as `status` and the TUI report it."""

    READY = "Ready"
    NOT_READY = "NotReady"
    UNREACHABLE = "unreachable"  # not online on the tailnet
    NOT_JOINED = "not joined"  # in the inventory, not in the cluster
    UNKNOWN = "unknown"  # the API could not be asked


# Rich style names per state, shared by `status` and the TUI.
NODE_STATE_STYLES: dict[str, str] = {
    NodeState.READY: "green",
    NodeState.NOT_READY: "bold red",
    NodeState.UNREACHABLE: "bold red",
    NodeState.NOT_JOINED: "yellow",
    NodeState.UNKNOWN: "yellow",
}


class GuardOverride(StrEnum):
    """What an owner can tell a workstation's guard through its Node (``GUARD_OVERRIDE``)."""

    HOLD = "hold"  # keep the cluster off the machine, whatever the signals say
    RELEASE = "release"  # let the cluster use it, whatever the signals say


# The workstation guard's marks on its own Node (ansible/roles/workstation_guard/files/
# kubani_guard.py spells them too, as the node-side program imports nothing of Kubani's; a
# test holds the two spellings equal).
GUARD_TAINT = "kubani.io/owner-active"
GUARD_GPU_TAINT = "kubani.io/owner-gpu"
GUARD_HELD_SINCE = "kubani.io/held-since"
GUARD_HELD_REASON = "kubani.io/held-reason"
GUARD_OVERRIDE = "kubani.io/guard-override"


class Verdict(StrEnum):
    """What `doctor` found for one check."""

    OK = "ok"
    WARN = "warn"
    FAIL = "fail"


class ProblemCode(StrEnum):
    """Inventory findings that code acts on (never by matching a message's words)."""

    EVEN_CONTROL_PLANES = "even-control-planes"
