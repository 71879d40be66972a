"""The whole inventory as a validated model, and the checks that span nodes."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from kubani.models.addresses import parse_address
from kubani.models.cluster import DEFAULT_TAILNET_V4, DEFAULT_TAILNET_V6, ClusterConfig
from kubani.models.entries import HostEntry
from kubani.models.node import Node
from kubani.models.problems import Problems
from kubani.vocabulary import ProblemCode, Role

# The variables the models declare (what a vaulted value is opened for).
CLUSTER_FIELDS = frozenset(ClusterConfig.model_fields)
NODE_FIELDS = frozenset(Node.model_fields)


class Inventory(BaseModel):
    model_config = ConfigDict(frozen=True)

    cluster: ClusterConfig
    nodes: tuple[Node, ...]

    @property
    def control_planes(self) -> list[Node]:
        return [n for n in self.nodes if n.role is Role.CONTROL_PLANE]

    @property
    def workers(self) -> list[Node]:
        return [n for n in self.nodes if n.role is Role.WORKER]

    def node(self, hostname: str) -> Node | None:
        return next((n for n in self.nodes if n.hostname == hostname), None)

    def hostnames(self) -> set[str]:
        return {n.hostname for n in self.nodes}

    def addresses(self) -> set[str]:
        return {str(n.tailscale_ip) for n in self.nodes}


def build_inventory(
    cluster_vars: Mapping[str, Any],
    entries: Iterable[HostEntry],
    problems: Problems | None = None,
) -> tuple[Inventory | None, Problems]:
    """Validate everything, collecting every problem (after those already in ``problems``);
    the model only when there is no error."""
    problems = problems if problems is not None else Problems()
    try:
        cluster: ClusterConfig | None = ClusterConfig.model_validate(dict(cluster_vars))
    except ValidationError as exc:
        problems.add_validation_error("all.vars", exc)
        cluster = None

    nodes: list[tuple[HostEntry, Node]] = []
    groups_of: dict[str, list[HostEntry]] = {}
    entries_seen: list[HostEntry] = []
    for entry in entries:
        entries_seen.append(entry)
        groups_of.setdefault(entry.hostname, []).append(entry)
        data = {**entry.variables, "hostname": entry.hostname, "role": Role.from_group(entry.group)}
        if "tailscale_ip" not in entry.variables:
            problems.error(f"{entry.where}.tailscale_ip", "required: the node's Tailscale address")
            continue
        try:
            nodes.append((entry, Node.model_validate(data)))
        except ValidationError as exc:
            problems.add_validation_error(entry.where, exc)

    for hostname, found in groups_of.items():
        if len(found) > 1:
            places = " and ".join(e.where for e in found)
            problems.error(found[-1].where, f"host {hostname!r} is listed twice: {places}")

    _check_addresses(entries_seen, cluster, cluster_vars, problems)
    _check_control_planes(nodes, problems)
    if cluster is not None:
        _check_gitops(cluster, cluster_vars, problems)

    if problems.errors or cluster is None:
        return None, problems
    return Inventory(cluster=cluster, nodes=tuple(node for _, node in nodes)), problems


def _tailnet_for(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address,
    cluster: ClusterConfig | None,
    cluster_vars: Mapping[str, Any],
) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """The tailnet range for an address, even when other cluster settings are invalid."""
    v4 = isinstance(address, ipaddress.IPv4Address)
    if cluster is not None:
        return cluster.tailscale_network if v4 else cluster.tailscale_network_v6
    key = "tailscale_network" if v4 else "tailscale_network_v6"
    default = DEFAULT_TAILNET_V4 if v4 else DEFAULT_TAILNET_V6
    try:
        return ipaddress.ip_network(str(cluster_vars.get(key, default)))
    except ValueError:
        return default


def _check_addresses(
    entries: list[HostEntry],
    cluster: ClusterConfig | None,
    cluster_vars: Mapping[str, Any],
    problems: Problems,
) -> None:
    """Unique, in-tailnet addresses; also for hosts whose other fields are invalid."""
    owner: dict[str, str] = {}
    for entry in entries:
        try:
            address = parse_address(str(entry.variables.get("tailscale_ip")))
        except ValueError:
            continue  # reported by the node's own validation
        text = str(address)
        if text in owner and owner[text] != entry.hostname:
            problems.error(
                f"{entry.where}.tailscale_ip", f"{text} is already the address of {owner[text]!r}"
            )
        owner.setdefault(text, entry.hostname)
        network = _tailnet_for(address, cluster, cluster_vars)
        if address not in network:
            problems.error(
                f"{entry.where}.tailscale_ip",
                f"{text} is outside the tailnet {network} (tailscale_network); "
                "use the address `tailscale ip -4` prints on that node",
            )


def _check_control_planes(nodes: list[tuple[HostEntry, Node]], problems: Problems) -> None:
    count = sum(1 for _, node in nodes if node.role is Role.CONTROL_PLANE)
    if count == 0:
        problems.error(
            "all.children.control_plane.hosts",
            "no control plane: add at least one node with role control-plane",
        )
    elif count >= 2 and count % 2 == 0:
        problems.warning(
            "all.children.control_plane.hosts",
            f"{count} control planes: etcd needs a majority, so {count} tolerate no more "
            f"failures than {count - 1}; use an odd number (3, 5, 7)",
            ProblemCode.EVEN_CONTROL_PLANES,
        )


def _check_gitops(
    cluster: ClusterConfig, cluster_vars: Mapping[str, Any], problems: Problems
) -> None:
    """What a first GitOps run needs besides the URL (Flux would report it only later, as
    an object that never becomes Ready)."""
    url = cluster.git_repo_url
    if not url:
        return
    if url.startswith("ssh://") and not cluster_vars.get("gitops_deploy_key_file"):
        problems.warning(
            "all.vars.gitops_deploy_key_file",
            f"{url} is an ssh:// repository, so Flux needs a deploy key: add one to the "
            "repository and set gitops_deploy_key_file to its private key (docs/GITOPS.md)",
        )
    if not cluster_vars.get("gitops_sops_age_key_file"):
        problems.warning(
            "all.vars.gitops_sops_age_key_file",
            "the apps Kustomization decrypts SOPS Secrets with the sops-age Secret, which is "
            "made from gitops_sops_age_key_file: create a key (`cluster-mgr secrets keygen`) "
            "and set it, or apps will not become Ready once the tree holds an encrypted Secret",
        )
