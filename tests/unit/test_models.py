from __future__ import annotations

from decimal import Decimal

import pytest
from pydantic import ValidationError

from kubani.models.cluster import ClusterConfig
from kubani.models.entries import HostEntry
from kubani.models.inventory import build_inventory
from kubani.models.node import Node, NodeTaint
from kubani.quantity import QuantityError, cpu_quantity, memory_quantity, parse_quantity
from kubani.vocabulary import Role


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("500m", Decimal("0.5")),
        ("2", Decimal(2)),
        ("1Gi", Decimal(2**30)),
        ("1.5k", Decimal(1500)),
        ("1e3", Decimal(1000)),
        (".5", Decimal("0.5")),
        ("100n", Decimal("1E-7")),
    ],
)
def test_quantities_parse_exactly(text: str, value: Decimal) -> None:
    assert parse_quantity(text) == value


@pytest.mark.parametrize(
    "text",
    # Other scripts' digits, which Python's int() and Decimal take and Kubernetes does not.
    ["", "1.2.3", "Gi", "1 Gi", "1GB", "abc", "1Gib", "\uff11", "\u0661Gi", "1e\u0663"],
)
def test_non_quantities_are_rejected(text: str) -> None:
    with pytest.raises(QuantityError, match="not a Kubernetes quantity"):
        parse_quantity(text)


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("1e999", "beyond what a Kubernetes quantity holds"),
        ("-1e999", "beyond what a Kubernetes quantity holds"),
        ("9223372036854775808", "beyond what a Kubernetes quantity holds"),
        ("8Ei", "beyond what a Kubernetes quantity holds"),
        ("1e99999999999999999999", "exponent out of any range"),
        ("1e-99999999999999999999", "exponent out of any range"),
    ],
)
def test_quantities_kubernetes_cannot_hold_are_rejected(text: str, said: str) -> None:
    with pytest.raises(QuantityError, match=said):
        parse_quantity(text)
    assert parse_quantity("9223372036854775807") == 2**63 - 1


def test_cpu_and_memory_catch_classic_slips() -> None:
    assert cpu_quantity("500m") == "500m"
    with pytest.raises(QuantityError, match="memory suffix"):
        cpu_quantity("2Gi")
    with pytest.raises(QuantityError, match="did you mean 512Mi"):
        memory_quantity("512m")
    with pytest.raises(QuantityError, match="negative"):
        memory_quantity("-1Gi")


def _node(**overrides: object) -> Node:
    data: dict[str, object] = {"hostname": "node-1", "tailscale_ip": "100.64.0.5", "role": "worker"}
    data.update(overrides)
    return Node.model_validate(data)


def test_only_hostname_ip_and_role_are_required() -> None:
    node = _node()
    assert node.role is Role.WORKER and not node.gpu and node.connect_host == "100.64.0.5"
    with pytest.raises(ValidationError):
        Node.model_validate({"hostname": "a", "role": "worker"})


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [
        ("hostname", "Bad_Host", "RFC 1123"),
        ("hostname", "-edge", "RFC 1123"),
        ("hostname", "a" * 64, "RFC 1123"),
        ("tailscale_ip", "not-an-ip", "IPv4"),
        ("role", "master", "control-plane"),
        ("reserved_cpu", "lots", "quantity"),
        ("reserved_memory", "12GB", "quantity"),
        ("gpu", "yes", "boolean"),
        ("ansible_port", 70000, "less than or equal"),
        ("node_labels", {"bad key!": "x"}, "label key"),
        ("node_labels", {"ok": "bad value!"}, "label value"),
        ("node_labels", {"UPPER.example.com/x": "y"}, "DNS subdomain"),
        ("node_taints", ["key=value:Sometimes"], "effect"),
        ("node_taints", ["no-effect"], "key=value:Effect"),
        ("node_taints", ["a=b:NoSchedule", "a=c:NoSchedule"], "twice"),
        ("ansible_host", "bad host", "neither an IP"),
    ],
)
def test_invalid_fields_are_named(field: str, value: object, fragment: str) -> None:
    with pytest.raises(ValidationError) as info:
        _node(**{field: value})
    assert field in str(info.value)
    assert fragment in str(info.value)


def test_label_values_from_yaml_scalars_become_text() -> None:
    node = _node(node_labels={"gpu": True, "zone": 3})
    assert node.node_labels == {"gpu": "true", "zone": "3"}


def test_taints_parse_and_print_in_k3s_form() -> None:
    taint = NodeTaint.parse("nvidia.com/gpu=present:NoSchedule")
    assert (taint.key, taint.value, taint.effect) == ("nvidia.com/gpu", "present", "NoSchedule")
    assert str(NodeTaint.parse("dedicated:NoExecute")) == "dedicated:NoExecute"
    node = _node(node_taints=["a=b:PreferNoSchedule", {"key": "c", "effect": "NoExecute"}])
    assert node.host_vars()["node_taints"] == ["a=b:PreferNoSchedule", "c:NoExecute"]


def test_ipv6_addresses_are_refused_where_k3s_needs_ipv4() -> None:
    """K3s is configured with IPv4 pod and service ranges and URLs of the form
    https://ADDRESS:6443: an IPv6 node address or API endpoint would fail at K3s's start."""
    with pytest.raises(ValidationError, match=r"IPv6 address.*tailscale ip -4"):
        _node(tailscale_ip="fd7a:115c:a1e0::5")
    with pytest.raises(ValidationError, match=r"IPv6 address.*IPv4 address or a DNS name"):
        ClusterConfig(api_endpoint="fd7a:115c:a1e0::1")
    assert ClusterConfig(api_endpoint="100.64.0.1").api_endpoint == "100.64.0.1"


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [
        ("cluster_name", "My Cluster", "RFC 1123"),
        ("k3s_version", "1.31", "K3s release tag"),
        ("git_repo_url", "git@github.com:me/repo.git", "ssh://git@github.com/me/repo.git"),
        ("git_repo_url", "ftp://x/y", "must start with"),
        ("tailscale_network", "100.64.0.0/33", "network"),
        ("gpu_time_slicing_replicas", 0, "greater than or equal"),
        ("api_endpoint", "https://k8s.home.lan", "without a scheme, port or path"),
        ("api_endpoint", "k8s.home.lan:6443", "not a DNS name or an IP address"),
        ("api_endpoint", "my api", "not a DNS name or an IP address"),
    ],
)
def test_cluster_config_errors(field: str, value: object, fragment: str) -> None:
    with pytest.raises(ValidationError) as info:
        ClusterConfig.model_validate({field: value})
    assert fragment in str(info.value)


def _entry(name: str, ip: str, group: str = "workers", **extra: object) -> HostEntry:
    return HostEntry(
        group, name, {"tailscale_ip": ip, **extra}, f"all.children.{group}.hosts.{name}"
    )


@pytest.mark.parametrize("endpoint", ["k8s.home.lan", "K8s.Home.Lan", "192.168.1.50", "", None])
def test_an_api_endpoint_is_a_name_or_an_address(endpoint: str | None) -> None:
    """It stands in https://ENDPOINT:6443 and in the API server's certificate; empty is
    not set, as the playbooks' default() reads it."""
    assert ClusterConfig.model_validate({"api_endpoint": endpoint}).api_endpoint == endpoint


def test_inventory_cross_checks_report_everything_at_once() -> None:
    inventory, problems = build_inventory(
        {"cluster_name": "Bad Name"},
        [
            _entry("w-1", "100.64.0.1"),
            _entry("w-2", "100.64.0.1"),
            _entry("w-3", "10.0.0.3"),
            _entry("w-4", "100.64.0.4", reserved_memory="1GB"),
            _entry("w-1", "100.64.0.9", group="control_plane"),
        ],
    )
    assert inventory is None
    text = "\n".join(str(p) for p in problems.errors)
    assert "all.vars.cluster_name" in text
    assert "already the address of 'w-1'" in text
    assert "outside the tailnet 100.64.0.0/10" in text
    assert "w-4.reserved_memory" in text
    assert "listed twice" in text
    assert len(problems.errors) == 5


def test_inventory_needs_a_control_plane_and_warns_on_even_counts() -> None:
    _, problems = build_inventory({}, [_entry("w-1", "100.64.0.1")])
    assert any("no control plane" in p.message for p in problems.errors)
    inventory, problems = build_inventory(
        {},
        [
            _entry("cp-1", "100.64.0.1", "control_plane"),
            _entry("cp-2", "100.64.0.2", "control_plane"),
        ],
    )
    assert inventory is not None and not problems.errors
    assert [p.severity for p in problems.items] == ["warning"]
    assert "odd number" in problems.warnings[0].message


def test_narrow_tailnet_setting_is_enforced() -> None:
    _, problems = build_inventory(
        {"tailscale_network": "100.100.0.0/16"},
        [_entry("cp", "100.64.0.1", "control_plane")],
    )
    assert "outside the tailnet 100.100.0.0/16" in problems.errors[0].message


def test_a_first_gitops_run_is_warned_of_what_it_lacks() -> None:
    entries = [HostEntry("control_plane", "cp-1", {"tailscale_ip": "100.64.0.1"},
                         "all.children.control_plane.hosts.cp-1")]  # fmt: skip

    def warned(settings: dict[str, str]) -> set[str]:
        model, problems = build_inventory(settings, entries)
        assert model is not None
        return {p.where.removeprefix("all.vars.") for p in problems.warnings}

    ssh = {"git_repo_url": "ssh://git@example.com/me/cluster.git"}
    assert warned(ssh) == {"gitops_deploy_key_file", "gitops_sops_age_key_file"}
    assert warned({**ssh, "gitops_deploy_key_file": "~/.ssh/flux",
                   "gitops_sops_age_key_file": "~/.config/kubani/age.agekey"}) == set()  # fmt: skip
    https = {"git_repo_url": "https://example.com/me/cluster.git"}
    assert warned(https) == {"gitops_sops_age_key_file"}
    assert warned({}) == set()  # no GitOps, nothing to say


def test_a_k3s_release_is_written_in_ascii_digits() -> None:
    from kubani.models.cluster import ClusterConfig
    from tests.conftest import run_cli

    assert ClusterConfig.model_validate({"k3s_version": "v1.31.0+k3s1"})
    with pytest.raises(ValidationError, match="not a K3s release tag"):
        ClusterConfig.model_validate({"k3s_version": "v1.3\uff11.0+k3s1"})
    result = run_cli("upgrade", "--k3s-version", "v\u0661.31.0+k3s1")
    assert result.code == 1 and "not a K3s release name" in result.stderr
