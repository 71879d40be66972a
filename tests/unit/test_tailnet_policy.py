"""`cluster-mgr tailnet policy` and `tailnet check`: the ports K3s needs on a tailnet."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import FakeHttp, run_cli

ROOT = Path(__file__).resolve().parents[2]
HUJSON_CHECK = ROOT / "tools" / "hujsoncheck"


def _go() -> str:
    found = shutil.which("go") or (
        "/usr/local/go/bin/go" if Path("/usr/local/go/bin/go").exists() else None
    )
    assert found is not None, "the components tests need Go (scripts/setup.sh says where to get it)"
    return found


def standardized_by_tailscale(text: str) -> Any:
    """The policy as Tailscale's own HuJSON parser (github.com/tailscale/hujson) reads it."""
    done = subprocess.run(
        [_go(), "run", "."],
        cwd=HUJSON_CHECK,
        input=text,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "GOTOOLCHAIN": "local", "GOFLAGS": "-mod=readonly"},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.components
@pytest.mark.parametrize("style", ["grants", "acls"])
def test_the_policy_is_hujson_that_opens_every_needed_path(tmp_path: Path, style: str) -> None:
    printed = run_cli("tailnet", "policy", "--format", style, "--tag", "tag:homelab")
    assert printed.code == 0, printed.stderr
    assert printed.stdout.startswith("// Kubani")  # comments: HuJSON, not plain JSON
    policy = standardized_by_tailscale(printed.stdout)
    assert policy["tagOwners"] == {"tag:homelab": ["autogroup:admin"]}
    assert style in policy
    as_json = run_cli("tailnet", "policy", "--format", style, "--tag", "tag:homelab", "--json")
    assert as_json.json() == policy
    saved = tmp_path / "policy.hujson"
    saved.write_text(printed.stdout)
    checked = run_cli("tailnet", "check", "--policy-file", saved, "--tag", "tag:homelab", "--json")
    assert checked.code == 0, checked.stdout
    assert all(path["allowed"] for path in checked.json()["paths"])


TIGHT = """\
// A policy that forgot the kubelet.
{
  "tagOwners": {"tag:k3s": ["autogroup:admin"]},
  "hosts": {"lab": "100.64.0.0/24"},
  "acls": [
    {"action": "accept", "src": ["tag:k3s"], "proto": "udp", "dst": ["tag:k3s:8472"]},
    {"action": "accept", "src": ["tag:k3s"], "proto": "tcp", "dst": ["tag:k3s:6443,2379-2380"]},
    /* the admins */
    {"action": "accept", "src": ["autogroup:admin"], "dst": ["lab:22,6443"]},
  ],
}
"""


def _inventory(tmp_path: Path) -> Path:
    path = tmp_path / "hosts.yml"
    path.write_text(
        "all:\n  children:\n    control_plane:\n      hosts:\n"
        "        cp-1: {tailscale_ip: 100.64.0.1}\n    workers:\n      hosts:\n"
        "        w-1: {tailscale_ip: 100.64.0.2}\n"
    )
    return path


def test_check_names_what_a_policy_blocks(tmp_path: Path) -> None:
    policy = tmp_path / "policy.hujson"
    policy.write_text(TIGHT)
    inventory = _inventory(tmp_path)
    result = run_cli("-i", inventory, "tailnet", "check", "--policy-file", policy, "--json")
    assert result.code == 1
    verdicts = {(p["proto"], p["ports"], p["src"]): p["allowed"] for p in result.json()["paths"]}
    assert verdicts == {
        ("tcp", "10250", "tag:k3s"): False,  # the kubelet: blocked
        ("udp", "8472", "tag:k3s"): True,
        ("tcp", "6443", "tag:k3s"): True,
        ("tcp", "2379-2380", "tag:k3s"): True,
        # The admins reach the nodes through a host alias whose range holds every node.
        ("tcp", "22", "autogroup:admin"): True,
        ("tcp", "6443", "autogroup:admin"): True,
    }
    people = run_cli("-i", inventory, "tailnet", "check", "--policy-file", policy)
    assert "✗ blocked kubelet, between nodes" in people.stderr
    assert "tailnet policy" in people.stderr
    # An alias for a range that misses a node opens nothing for it.
    policy.write_text(TIGHT.replace("100.64.0.0/24", "100.64.0.1/32"))
    narrow = run_cli("-i", inventory, "tailnet", "check", "--policy-file", policy, "--json")
    assert not any(p["allowed"] for p in narrow.json()["paths"] if p["ports"] == "22")


def test_a_policy_without_rules_lets_everything_through(tmp_path: Path) -> None:
    policy = tmp_path / "empty.hujson"
    policy.write_text('{"tagOwners": {"tag:k3s": ["autogroup:admin"]}}')
    assert run_cli("tailnet", "check", "--policy-file", policy).code == 0


def test_grants_with_bare_ports_and_wildcards(tmp_path: Path) -> None:
    policy = tmp_path / "grants.hujson"
    policy.write_text(
        '{"grants": [{"src": ["autogroup:tagged"], "dst": ["*"], "ip": ["10250", "8472",'
        ' "6443", "2379-2380"]}, {"src": ["*"], "dst": ["tag:k3s"], "ip": ["*"]},],}'
    )
    assert run_cli("tailnet", "check", "--policy-file", policy).code == 0


def test_the_live_policy_comes_from_the_api_and_from_headscale(
    tmp_path: Path, fake_http: FakeHttp
) -> None:
    env = {"TAILSCALE_API_KEY": "tskey-api-secret"}

    def check_with_reply(status: int, reply: dict[str, Any]) -> Any:
        fake_http.routes[("GET", "/api/v2/tailnet/example.com/acl")] = (status, reply)
        return run_cli(
            "tailnet", "check", "--tailnet", "example.com", "--api-url", fake_http.url, env=env
        )

    result = check_with_reply(200, {"acls": [{"action": "accept", "src": ["*"], "dst": ["*:*"]}]})
    assert result.code == 0, result.stderr
    _method, _path, headers, _ = fake_http.requests[-1]
    assert headers["authorization"] == "Bearer tskey-api-secret"
    assert headers["accept"] == "application/json"
    limited = check_with_reply(429, {"message": "rate limit exceeded, retry in 10s"})
    assert limited.code == 1 and "HTTP 429: rate limit exceeded" in limited.stderr
    assert "tskey-api-secret" not in limited.stderr
    refused = check_with_reply(401, {"message": "API token invalid"})
    assert refused.code == 1 and "TAILSCALE_API_KEY" in refused.stderr

    fake_http.routes[("GET", "/api/v1/policy")] = (
        200,
        {"policy": TIGHT, "updatedAt": "2026-11-30T10:00:00Z"},
    )
    headscale = run_cli(
        "tailnet", "check", "--source", "headscale", "--json",
        env={"HEADSCALE_URL": fake_http.url, "HEADSCALE_API_KEY": "hs-key"},
    )  # fmt: skip
    assert headscale.code == 1
    assert next(p["ports"] for p in headscale.json()["paths"] if not p["allowed"]) == "10250"


def test_a_policy_file_that_is_not_hujson_is_a_clear_error(tmp_path: Path) -> None:
    policy = tmp_path / "broken.hujson"
    policy.write_text('{"acls": [ /* never closed ')
    result = run_cli("tailnet", "check", "--policy-file", policy)
    assert result.code == 1 and "comment is never closed" in result.stderr
    policy.write_text('{"acls": [}')
    result = run_cli("tailnet", "check", "--policy-file", policy)
    assert result.code == 1 and "not valid HuJSON" in result.stderr
    assert "internal error" not in result.stderr


def test_doctor_checks_the_live_policy_only_with_credentials(
    fake_http: FakeHttp, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kubani.operations.tailnet import live_policy_verdicts

    for name in ("HEADSCALE_URL", "HEADSCALE_API_KEY", "TAILSCALE_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("TAILSCALE_OAUTH_CLIENT_ID", raising=False)
    assert live_policy_verdicts([]) is None  # nothing to read it with: no check, no noise
    fake_http.routes[("GET", "/api/v1/policy")] = (200, {"policy": TIGHT})
    monkeypatch.setenv("HEADSCALE_URL", fake_http.url)
    monkeypatch.setenv("HEADSCALE_API_KEY", "hs-key")
    verdicts = live_policy_verdicts(["100.64.0.1", "100.64.0.2"])
    assert verdicts is not None
    assert [v.path.ports for v in verdicts if not v.allowed] == ["10250"]


def _fleet(tmp_path: Path, address: str) -> Path:
    path = tmp_path / "hosts.yml"
    path.write_text(
        "all:\n  children:\n    control_plane:\n      hosts:\n"
        "        cp-1: {tailscale_ip: 100.64.0.9}\n    workers:\n      hosts:\n"
        f"        k3s-server-1: {{tailscale_ip: {address}}}\n"
    )
    return path


def test_remove_node_forgets_the_device_in_headscale_and_the_api(
    tmp_path: Path, fake_http: FakeHttp
) -> None:
    from tests.conftest import fixture_json

    nodes = fixture_json("headscale-api-v1-nodes.json")
    fake_http.routes[("GET", "/api/v1/node")] = (200, nodes)
    fake_http.routes[("DELETE", "/api/v1/node/1")] = (200, {})

    def remove_forgetting(address: str, env: dict[str, str]) -> Any:
        inventory = _fleet(tmp_path, address)
        result = run_cli(
            "-i", inventory, "remove-node", "k3s-server-1", "--inventory-only",
            "--forget-device", "--json", env=env,
        )  # fmt: skip
        assert result.code == 0, result.stderr
        return result

    result = remove_forgetting(
        "100.64.0.1", {"HEADSCALE_URL": fake_http.url, "HEADSCALE_API_KEY": "hs-secret"}
    )
    assert result.json()["forgot_device"] == "1"
    assert ("DELETE", "/api/v1/node/1") in [(m, p) for m, p, _, _ in fake_http.requests]
    assert "hs-secret" not in result.stdout + result.stderr

    devices = fixture_json("tailscale-api-v2-devices.json")
    fake_http.routes[("GET", "/api/v2/tailnet/-/devices")] = (200, devices)
    fake_http.routes[("DELETE", "/api/v2/device/nAbCdEf1CNTRL")] = (200, {})
    result = remove_forgetting(
        "100.101.10.1", {"TAILSCALE_API_KEY": "tskey-api-x", "TAILSCALE_BASE_URL": fake_http.url}
    )
    assert result.json()["forgot_device"] == "nAbCdEf1CNTRL"


def test_forget_device_without_credentials_changes_nothing(tmp_path: Path) -> None:
    inventory = _fleet(tmp_path, "100.64.0.1")
    before = inventory.read_text()
    result = run_cli(
        "-i", inventory, "remove-node", "k3s-server-1", "--inventory-only", "--forget-device"
    )
    assert result.code == 1 and "no Tailscale API or headscale credentials" in result.stderr
    assert inventory.read_text() == before


def test_a_device_the_control_server_refuses_to_delete_is_reported(
    tmp_path: Path, fake_http: FakeHttp
) -> None:
    from tests.conftest import fixture_json

    fake_http.routes[("GET", "/api/v1/node")] = (200, fixture_json("headscale-api-v1-nodes.json"))
    fake_http.routes[("DELETE", "/api/v1/node/1")] = (500, {"message": "database is locked"})
    inventory = _fleet(tmp_path, "100.64.0.1")
    result = run_cli(
        "-i", inventory, "remove-node", "k3s-server-1", "--inventory-only", "--forget-device",
        env={"HEADSCALE_URL": fake_http.url, "HEADSCALE_API_KEY": "k"},
    )  # fmt: skip
    assert result.code == 1
    assert "is removed, but its tailnet device is not" in result.stderr
    assert "database is locked" in result.stderr


@pytest.mark.parametrize(
    ("policy", "why"),
    [
        ('{"acls": "nope"}', 'acls is "nope", not a list'),
        ('{"hosts": ["a"], "acls": []}', 'hosts is ["a"], not an object'),
        ('{"grants": [7]}', "grants[0] is int, not an object"),
        (
            '{"grants": [{"src": "tag:k3s", "dst": ["*"], "ip": ["*"]}]}',
            'grants[0].src is "tag:k3s", not a list of strings',
        ),
        ('{"acls": [{"action": "accept", "src": ["*"], "dst": [1]}]}', "acls[0].dst is [1]"),
        ('{"grants": [{"src": ["*"], "dst": ["*"], "ip": {"x": 1}}]}', 'grants[0].ip is {"x": 1}'),
    ],
)
def test_a_policy_tailscale_would_refuse_is_refused_with_the_spot(
    tmp_path: Path, policy: str, why: str
) -> None:
    """Tailscale's parser wants lists of strings in rules (a lone "*" is refused there): a
    check that read them leniently would pass a file Tailscale will not load."""
    path = tmp_path / "odd.hujson"
    path.write_text(policy)
    result = run_cli("tailnet", "check", "--policy-file", path, "--json")
    assert result.code == 1, result.stderr
    assert "internal error" not in result.stderr
    assert "cannot check the policy" in result.stderr and why in result.stderr
    assert "Tailscale would refuse this policy file too" in result.stderr
    assert result.stdout == ""


def test_ports_in_other_scripts_digits_open_nothing(tmp_path: Path) -> None:
    # int() reads "\u0662\u0662" as 22; Tailscale reads ASCII port numbers only.
    policy = tmp_path / "digits.hujson"
    policy.write_text(
        '{"grants": [{"src": ["*"], "dst": ["*"],'
        ' "ip": ["\u0662\u0662", "\uff16\uff14\uff14\uff13"]}]}'
    )
    result = run_cli("tailnet", "check", "--policy-file", policy, "--json")
    assert result.code == 1, result.stderr
    assert not any(p["allowed"] for p in result.json()["paths"])


@pytest.mark.parametrize(
    ("ranges", "opened"),
    [
        (("100.64.0.0/10", "100.64.0.0/10"), True),
        (("0.0.0.0/0", "100.0.0.0/8"), True),
        # K3s runs on the nodes' IPv4 addresses: IPv6 ranges open none of its paths.
        (("fd7a:115c:a1e0::/48", "::/0"), False),
        (("100.64.0.0/10", "100.64.0.0/16"), False),  # could miss a node: not known here
    ],
)
def test_a_range_holding_the_whole_tailnet_holds_every_node_without_their_addresses(
    tmp_path: Path, ranges: tuple[str, str], opened: bool
) -> None:
    """Without an inventory the nodes' addresses are unknown; a range that holds all of
    Tailscale's IPv4 addresses (100.64.0.0/10) holds every node's anyway."""
    source, destination = ranges
    policy = tmp_path / "ranges.hujson"
    policy.write_text(
        f'{{"acls": [{{"action": "accept", "src": ["{source}"], "dst": ["{destination}:*"]}}]}}'
    )
    result = run_cli("tailnet", "check", "--policy-file", policy, "--json")
    assert result.code == (0 if opened else 1), result.stderr
    assert {p["allowed"] for p in result.json()["paths"]} == {opened}


def test_a_policy_file_saved_with_a_byte_order_mark_is_read(tmp_path: Path) -> None:
    policy = tmp_path / "policy.hujson"
    policy.write_bytes(b"\xef\xbb\xbf" + b'{"acls": [{"action": "accept", "src": ["*"], '
                       b'"dst": ["*:*"]}]}')  # fmt: skip
    assert run_cli("tailnet", "check", "--policy-file", policy).code == 0
    policy.write_bytes(b'{"acls": [\xff]}')
    result = run_cli("tailnet", "check", "--policy-file", policy)
    assert result.code == 1
    assert f"cannot read {policy}: it is not UTF-8 text" in result.stderr
