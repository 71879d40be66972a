"""Inventories written for other tools: recognised, and converted.

k3s-ansible (github.com/k3s-io/k3s-ansible) puts servers in ``server`` and agents in
``agent`` (``master``/``node`` before 2023), under ``k3s_cluster``, with the cluster's
settings (``token``, ``k3s_version``, ``api_endpoint``, ``extra_server_args``...) as
variables of that group. Kubespray puts control planes in ``kube_control_plane`` and
nodes in ``kube_node`` (``kube-master``/``kube-node`` before 2.16; a control plane is
often a node too), under ``k8s_cluster``, each host with the address Kubernetes uses as
``ip`` (and ``access_ip``); its settings are for kubeadm and stay behind. Kubani's groups
are ``control_plane`` and ``workers``, every node needs its Tailscale address, and K3s
settings are config.yaml keys.
"""

from __future__ import annotations

import ipaddress
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from kubani.inventory.fastyaml import AnsibleTagged
from kubani.models.names import is_dns_label
from kubani.userfiles import BYTE_ORDER_MARK
from kubani.vocabulary import TAILNET_V4, TAILNET_V6, Role
from kubani.yamlsafe import safe_load


@dataclass(frozen=True)
class ForeignFormat:
    """Another tool's inventory layout: its groups of control planes, of the other nodes,
    and of the whole cluster (whose variables are the cluster's settings).

    ``settings_for``: what the tool's settings configure when Kubani has no use for them
    (they are left out, and the import says so); empty when they are K3s's and converted.
    ``host_settings``: per-host variables of the tool, left out with them."""

    name: str
    server_groups: tuple[str, ...]
    agent_groups: tuple[str, ...]
    cluster_groups: tuple[str, ...]
    settings_for: str = ""
    host_settings: tuple[str, ...] = ()

    def groups(self) -> tuple[str, ...]:
        return (*self.server_groups, *self.agent_groups)


K3S_ANSIBLE = ForeignFormat(
    "k3s-ansible", ("server", "master"), ("agent", "node"), ("k3s_cluster",)
)
KUBESPRAY = ForeignFormat(
    "Kubespray",
    ("kube_control_plane", "kube-master"),
    ("kube_node", "kube-node"),
    ("k8s_cluster", "k8s-cluster"),
    settings_for="kubeadm",
    # ip and access_ip also give the address (convert_host).
    host_settings=("ip", "access_ip", "etcd_member_name"),
)
# The two Ansible projects for RKE2 (Rancher's Kubernetes distribution built like K3s).
RKE2_LABLABS = ForeignFormat(
    "lablabs.rke2",
    ("masters",),
    ("workers",),
    ("k8s_cluster",),
    settings_for="RKE2",
    host_settings=("rke2_type",),
)
RKE2_ANSIBLE = ForeignFormat(
    "rke2-ansible",
    ("rke2_servers",),
    ("rke2_agents",),
    ("rke2_cluster",),
    settings_for="RKE2",
    host_settings=("rke2_type", "rke2_role"),
)
FOREIGN_FORMATS = (K3S_ANSIBLE, KUBESPRAY, RKE2_LABLABS, RKE2_ANSIBLE)
# Kubani's own groups in a file Kubani does not read as it is (an INI inventory): imported
# with its variables as they are. Not a foreign format: a YAML inventory with these groups
# is simply Kubani's.
KUBANI_LAYOUT = ForeignFormat("Kubani", (Role.CONTROL_PLANE.group,), (Role.WORKER.group,), ())
IMPORT_HINT = "convert it with `cluster-mgr inventory import {path}`"
INI_HINT = (
    "convert it with `cluster-mgr inventory import {path}` when its groups are k3s-ansible's, "
    "Kubespray's or Kubani's own; any other with "
    "`ansible-inventory -i {path} --list --yaml --export > hosts.yml`"
)
_INI_SECTION = re.compile(r"^\[[^\]\s]+\]$")
TAILNET_RANGES = (ipaddress.ip_network(TAILNET_V4), ipaddress.ip_network(TAILNET_V6))

# k3s-ansible settings Kubani has no counterpart for: left out, and said so.
_DROPPED = frozenset(
    {
        "user_kubectl",
        "cluster_context",
        "kubeconfig",
        "systemd_dir",
        "master_ip",
        "api_port",
        "airgap_dir",
        "extra_manifests",
        "registries_config_yaml",
        "extra_install_envs",
        "extra_service_envs",
        "use_external_database",
        "k3s_server_location",
        "server_group",
        "agent_group",
    }
)
# K3s flags that Kubani derives from the inventory itself (Tailscale address, token, joins).
_MANAGED_FLAGS = frozenset(
    {
        "node-ip",
        "node-external-ip",
        "advertise-address",
        "flannel-iface",
        "node-name",
        "token",
        "token-file",
        "server",
        "cluster-init",
        "write-kubeconfig-mode",
        "tls-san",
        "node-label",
        "node-taint",
    }
)


def looks_like_ini(text: str) -> bool:
    """True when the first line that is not a comment is an INI section (``[group]``)."""
    for line in text.removeprefix(BYTE_ORDER_MARK).splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith(("#", ";")):
            continue
        return bool(_INI_SECTION.match(stripped))
    return False


def recognise(groups: Mapping[str, Any]) -> tuple[ForeignFormat, list[str]] | None:
    """The other tool whose groups an inventory has (the first with control planes, else
    any), with those groups; None when it has none of theirs."""
    # A group named as Kubani names its own (lablabs.rke2's `workers`) tells nothing alone.
    own = KUBANI_LAYOUT.groups()
    found = [(f, [g for g in f.groups() if g in groups and g not in own]) for f in FOREIGN_FORMATS]
    with_servers = [(f, g) for f, g in found if any(s in groups for s in f.server_groups)]
    return next(iter(with_servers or [(f, g) for f, g in found if g]), None)


# k0sctl's cluster file (read by kubani.inventory.k0sctl): recognised here, where every
# inventory read can ask, without loading its converter.
K0SCTL_API_GROUP = "k0sctl.k0sproject.io/"


def is_k0sctl(data: object) -> bool:
    """Whether parsed YAML is a k0sctl cluster file (apiVersion k0sctl.k0sproject.io/...)."""
    if not isinstance(data, Mapping):
        return False
    api_version = data.get("apiVersion")
    return isinstance(api_version, str) and api_version.startswith(K0SCTL_API_GROUP)


def is_inventory_listing(data: object) -> bool:
    """Whether parsed YAML or JSON is ``ansible-inventory --list`` output (a dynamic
    inventory's JSON: groups with lists of hosts, every host's variables under _meta)."""
    if not isinstance(data, Mapping):
        return False
    meta = data.get("_meta")
    return isinstance(meta, Mapping) and "hostvars" in meta


def in_tailnet_range(value: object) -> bool:
    try:
        address = ipaddress.ip_address(str(value))
    except ValueError:
        return False
    return any(address in network for network in TAILNET_RANGES)


def flags_to_config(args: Any) -> tuple[dict[str, Any], list[str]]:
    """K3s command-line flags (a string or a list, as k3s-ansible takes them) as config.yaml
    keys, and the flags left out because Kubani sets them itself."""
    if isinstance(args, str):
        words = shlex.split(args)
    elif isinstance(args, list):
        words = [w for item in args for w in shlex.split(str(item))]
    else:
        words = []
    config: dict[str, Any] = {}
    left_out: list[str] = []
    index = 0
    while index < len(words):
        word = words[index]
        index += 1
        if not word.startswith("-"):
            left_out.append(word)
            continue
        name, has_value, value = word.lstrip("-").partition("=")
        if not has_value:
            if index < len(words) and not words[index].startswith("-"):
                value = words[index]
                index += 1
            else:
                value = "true"
        if name in _MANAGED_FLAGS:
            left_out.append(f"--{name}={value}" if value != "true" else f"--{name}")
            continue
        parsed: Any = True if value == "true" else value
        if name in config:
            previous = config[name]
            config[name] = [*(previous if isinstance(previous, list) else [previous]), parsed]
        else:
            config[name] = parsed
    return config, left_out


def _config_yaml(text: Any) -> dict[str, Any]:
    if isinstance(text, dict):
        return dict(text)
    if not isinstance(text, str) or "{{" in text:
        return {}
    try:
        loaded = safe_load(text)
    except yaml.YAMLError:
        return {}
    return dict(loaded) if isinstance(loaded, dict) else {}


@dataclass
class Conversion:
    """Kubani's inventory data made from another tool's, and what the user must know."""

    source_format: ForeignFormat = K3S_ANSIBLE
    cluster_vars: dict[str, Any] = field(default_factory=dict)
    control_planes: dict[str, dict[str, Any]] = field(default_factory=dict)
    workers: dict[str, dict[str, Any]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    missing_addresses: list[str] = field(default_factory=list)
    # Every host's name as the source wrote it and as converted (what --address may name).
    known_names: set[str] = field(default_factory=set)

    def data(self) -> dict[str, Any]:
        return {
            "all": {
                "vars": self.cluster_vars,
                "children": {
                    "control_plane": {"hosts": self.control_planes},
                    "workers": {"hosts": self.workers or None},
                },
            }
        }


def _is_template(value: Any) -> bool:
    return isinstance(value, str) and not isinstance(value, AnsibleTagged) and "{{" in value


def convert_cluster_vars(source: Mapping[str, Any], conversion: Conversion) -> None:
    """k3s-ansible's cluster settings as Kubani's."""
    out = conversion.cluster_vars
    server_config: dict[str, Any] = {}
    agent_config: dict[str, Any] = {}
    for key, value in source.items():
        if key == "token":
            out["k3s_token"] = value
        elif key == "api_endpoint":
            if _is_template(value):
                conversion.notes.append(
                    "api_endpoint is a template; left out: Kubani uses the first control "
                    "plane's Tailscale address unless api_endpoint names another"
                )
            else:
                out["api_endpoint"] = value
        elif key in ("extra_server_args", "extra_agent_args"):
            config, left_out = flags_to_config(value)
            (server_config if key == "extra_server_args" else agent_config).update(config)
            if left_out:
                conversion.notes.append(
                    f"{key}: left out {' '.join(left_out)} (Kubani sets these from the "
                    "inventory: Tailscale address, token, labels and taints per node)"
                )
        elif key in ("server_config_yaml", "agent_config_yaml"):
            config = _config_yaml(value)
            kept = {k: v for k, v in config.items() if k not in _MANAGED_FLAGS}
            (server_config if key.startswith("server") else agent_config).update(kept)
            if len(kept) != len(config) or (value and not config):
                conversion.notes.append(f"{key}: only the keys Kubani does not set were kept")
        elif key in _DROPPED:
            conversion.notes.append(f"{key}: no Kubani counterpart; left out")
        else:
            out[key] = value
    if "disable" in server_config:
        disabled = server_config.pop("disable")
        out["k3s_control_plane_disable"] = disabled if isinstance(disabled, list) else [disabled]
    if server_config.pop("secrets-encryption", None) is not None:
        out["k3s_control_plane_secrets_encryption"] = True
    if "flannel-backend" in server_config:
        out["k3s_control_plane_flannel_backend"] = server_config.pop("flannel-backend")
    if server_config:
        out["k3s_control_plane_extra_config"] = server_config
    if agent_config:
        out["k3s_worker_extra_config"] = agent_config


def convert_host(
    key: str,
    variables: Mapping[str, Any],
    default_name: str,
    addresses: Mapping[str, str],
    conversion: Conversion,
) -> tuple[str, dict[str, Any]]:
    """One host: its Kubani name and variables (only those that differ from the cluster's)."""
    entry = {k: v for k, v in variables.items() if conversion.cluster_vars.get(k, object()) != v}
    for dropped in ("token", "extra_server_args", "extra_agent_args", "api_endpoint"):
        entry.pop(dropped, None)
    name = key.lower() if is_dns_label(key.lower()) else default_name
    if name != key.lower():
        entry.setdefault("ansible_host", key)
        conversion.notes.append(
            f"{key} is named {name}; K3s knows the machine by its own hostname: rename it "
            "in the file before provisioning a running cluster"
        )
    candidates = [
        addresses.get(key),
        addresses.get(name),
        entry.get("tailscale_ip"),
        # Kubespray's ip/access_ip: the address Kubernetes uses, a tailnet one on a tailnet.
        *(v for v in (entry.get("ansible_host"), key, entry.get("ip"), entry.get("access_ip"))
          if in_tailnet_range(v)),
    ]  # fmt: skip
    conversion.known_names.update((key, name))
    address = next((str(c) for c in candidates if c), None)
    if address is None:
        conversion.missing_addresses.append(key)
    else:
        entry["tailscale_ip"] = address
    return name, entry
