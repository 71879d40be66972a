"""cluster-mgr as a user runs it: a real process, real files, exit codes and stderr."""

from __future__ import annotations

import json
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from tests.conftest import PEER_KEYS, CliResult, snapshot
from tests.tailnet_fakes import TailnetDevice, render_status

Cli = Callable[..., CliResult]


def _status_file(tmp_path: Path, backend: str = "Running") -> Path:
    devices = [
        TailnetDevice("mgmt", "100.64.0.1", backend_state=backend),
        TailnetDevice("cp-1", "100.64.0.10"),
        TailnetDevice("newbox", "100.64.0.40"),
        TailnetDevice("other", "100.64.0.20", relay="ams"),
        TailnetDevice("k3s-old", "100.64.0.50", online=False),
    ]
    path = tmp_path / "status.json"
    path.write_text(json.dumps(render_status(devices, "mgmt")))
    return path


def _one_line_error(result: CliResult, *fragments: str) -> None:
    assert result.code == 1, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    assert result.stdout == ""


def test_help_and_version(cli: Cli) -> None:
    assert cli("--help").code == 0
    result = cli("version", "--json")
    assert result.code == 0 and result.json()["kubani"]
    assert cli("no-such-command").code == 2


def test_discover_json(cli: Cli, tmp_path: Path, inventory: Path) -> None:
    status = _status_file(tmp_path)
    result = cli("-i", inventory, "discover", "--json", "--status-file", status)
    assert result.code == 0, result.stderr
    peers = result.json()
    assert isinstance(peers, list) and len(peers) == 5
    assert set(peers[0]) >= PEER_KEYS
    # cp-1 by name; "other" by address 100.64.0.20, which is w-1's in the inventory.
    assert sorted(p["hostname"] for p in peers if p["in_cluster"]) == ["cp-1", "other"]
    assert peers[0]["is_self"] and peers[0]["hostname"] == "mgmt"
    assert next(p for p in peers if p["hostname"] == "other")["relay"] == "ams"

    online = cli("-i", inventory, "discover", "--json", "--online-only", "--status-file", status)
    assert "k3s-old" not in {p["hostname"] for p in online.json()}
    assert len(online.json()) == 4
    filtered = cli(
        "-i", inventory, "discover", "--json", "--filter", "k3s-*", "--status-file", status
    )
    assert [p["hostname"] for p in filtered.json()] == ["k3s-old"]


def test_discover_table_for_people(cli: Cli, tmp_path: Path, inventory: Path) -> None:
    result = cli("-i", inventory, "discover", "--status-file", _status_file(tmp_path))
    assert result.code == 0
    assert "relay ams" in result.stdout and "newbox" in result.stdout
    assert "5 devices, 4 online, 2 in the cluster" in result.stderr


def test_discover_logged_out(cli: Cli, tmp_path: Path, inventory: Path) -> None:
    result = cli("-i", inventory, "discover", "--status-file", _status_file(tmp_path, "NeedsLogin"))
    _one_line_error(result, "NeedsLogin", "sudo tailscale up")


def test_discover_missing_cli(cli: Cli, inventory: Path) -> None:
    result = cli("-i", inventory, "discover", "--tailscale-bin", "/nonexistent/tailscale")
    _one_line_error(result, "tailscale CLI not found")


def test_add_from_discovery(cli: Cli, tmp_path: Path, inventory: Path) -> None:
    status = _status_file(tmp_path)
    result = cli(
        "-i", inventory, "add-node", "newbox", "--from-discovery", "--status-file", status, "--json"
    )
    assert result.code == 0, result.stderr
    assert result.json()["added"]["tailscale_ip"] == "100.64.0.40"
    missing = cli("-i", inventory, "add-node", "ghost", "--from-discovery", "--status-file", status)
    _one_line_error(missing, "no device named 'ghost'")


def test_add_from_discovery_never_guesses_between_devices_of_one_name(
    cli: Cli, tmp_path: Path, inventory: Path
) -> None:
    from datetime import UTC, datetime

    devices = [
        TailnetDevice("mgmt", "100.64.0.1"),
        # An old "nuc" that was reinstalled: MagicDNS calls the new one nuc-1.
        TailnetDevice("nuc", "100.64.0.41", dns_label="nuc-1"),
        TailnetDevice(
            "nuc", "100.64.0.42", online=False, last_seen=datetime(2026, 1, 2, tzinfo=UTC)
        ),
        TailnetDevice("box", "100.64.0.51", dns_label="box-2"),
        TailnetDevice("box", "100.64.0.52", dns_label="box-3"),
    ]
    status = tmp_path / "status.json"
    status.write_text(json.dumps(render_status(devices, "mgmt")))
    exact = cli("-i", inventory, "add-node", "nuc", "--from-discovery", "--status-file", status)
    assert exact.code == 0, exact.stderr
    assert "100.64.0.42" in inventory.read_text()  # the device whose MagicDNS name is "nuc"
    before = inventory.read_text()
    ambiguous = cli("-i", inventory, "add-node", "box", "--from-discovery", "--status-file", status)
    assert ambiguous.code == 1
    for shown in ("2 devices are called 'box'", "box-2.", "100.64.0.51", "box-3.", "100.64.0.52"):
        assert shown in ambiguous.stderr, ambiguous.stderr
    assert inventory.read_text() == before


BAD_INPUTS = [
    (["add-node", "Bad_Host", "100.64.0.77"], "hostname"),
    (["add-node", "n-1", "300.1.1.1"], "tailscale_ip"),
    (["add-node", "n-1", "10.0.0.5"], "tailscale_ip"),
    (["add-node", "n-1", "100.64.0.20"], "tailscale_ip"),
    (["add-node", "w-1", "100.64.0.77"], "already in the inventory"),
    (["add-node", "n-1", "100.64.0.77", "--labels", "bad key=x"], "node_labels"),
    (["add-node", "n-1", "100.64.0.77", "--labels", "k=bad value!"], "node_labels"),
    (["add-node", "n-1", "100.64.0.77", "--labels", "novalue"], "--labels"),
    (["add-node", "n-1", "100.64.0.77", "--taints", "k=v:Sometimes"], "node_taints"),
    (["add-node", "n-1", "100.64.0.77", "--reserved-cpu", "lots"], "reserved_cpu"),
    (["add-node", "n-1", "100.64.0.77", "--reserved-memory", "512m"], "reserved_memory"),
    (["add-node", "n-1", "100.64.0.77", "--ansible-port", "70000"], "ansible_port"),
    (["config-set", "cluster_name", "Bad Name"], "cluster_name"),
    (["config-set", "k3s_version", "latest"], "k3s_version"),
    (["config-set", "git_repo_url", "git@github.com:me/x.git"], "git_repo_url"),
    (["config-set", "gpu", "maybe", "--scope", "w-1"], "gpu is declared bool"),
    (["config-set", "gpu", "yes", "--scope", "w-1", "--type", "string"], "gpu"),
    (["config-set", "gpu_time_slicing_replicas", "eight"], "declared int"),
    (["config-set", "prerequisites_node_ports", "22,80"], "declared json"),
    (["config-set", "reserved_memory", "4GB", "--scope", "workers"], "reserved_memory"),
    (["config-set", "tailscale_network", "10.0.0.0/8"], "tailscale_ip"),
    (["config-set", "ansible_port", "x", "--type", "int"], "not an integer"),
    (["config-set", "x", "{bad", "--type", "json"], "not JSON"),
    (["config-set", "x", "y", "--scope", "nohost"], "unknown scope"),
    (["remove-node", "nohost", "--inventory-only"], "not in the inventory"),
    (["remove-node", "cp-1", "--inventory-only"], "etcd"),
]


@pytest.mark.parametrize(("args", "field"), BAD_INPUTS, ids=[" ".join(a) for a, _ in BAD_INPUTS])
def test_bad_input_changes_nothing(cli: Cli, inventory: Path, args: list[str], field: str) -> None:
    before = snapshot(inventory.parent)
    result = cli("-i", inventory, *args)
    _one_line_error(result, field)
    assert snapshot(inventory.parent) == before


@pytest.mark.parametrize(
    "args",
    [
        ["add-node", "n-1", "100.64.0.77", "--role", "master"],
        ["add-node"],
        ["add-node", "n-1", "100.64.0.77", "--bogus"],
        ["add-node", "n-1"],
        ["config-set", "k", "v", "--type", "float"],
    ],
)
def test_usage_errors_exit_2(cli: Cli, inventory: Path, args: list[str]) -> None:
    before = snapshot(inventory.parent)
    result = cli("-i", inventory, *args)
    assert result.code == 2, result
    assert "Traceback" not in result.stderr
    assert snapshot(inventory.parent) == before


def test_add_remove_round_trip_keeps_comments(cli: Cli, inventory: Path) -> None:
    original = inventory.read_text()
    added = cli(
        "-i",
        inventory,
        "add-node",
        "desk-1",
        "100.64.0.60",
        "--role",
        "worker",
        "--reserved-cpu",
        "1",
        "--reserved-memory",
        "2Gi",
        "--gpu",
        "--labels",
        "kubani.io/desk=true,zone=attic",
        "--taints",
        "kubani.io/desk=true:PreferNoSchedule",
    )
    assert added.code == 0, added.stderr
    data = YAML(typ="safe").load(inventory.read_text())
    assert data["all"]["children"]["workers"]["hosts"]["desk-1"] == {
        "tailscale_ip": "100.64.0.60",
        "reserved_cpu": "1",
        "reserved_memory": "2Gi",
        "gpu": True,
        "node_labels": {"kubani.io/desk": "true", "zone": "attic"},
        "node_taints": ["kubani.io/desk=true:PreferNoSchedule"],
    }
    removed = cli("-i", inventory, "remove-node", "desk-1", "--inventory-only")
    assert removed.code == 0, removed.stderr
    after = inventory.read_text()
    comments = [line.strip() for line in original.splitlines() if line.strip().startswith("#")]
    assert [line.strip() for line in after.splitlines() if line.strip().startswith("#")] == comments
    assert YAML(typ="safe").load(after) == YAML(typ="safe").load(original)
    assert (inventory.parent / "hosts.yml.bak").exists()


def test_remove_control_plane_with_force(cli: Cli, inventory: Path) -> None:
    result = cli("-i", inventory, "remove-node", "cp-1", "--force", "--inventory-only")
    assert result.code == 0, result.stderr
    assert "odd number" in result.stderr


def test_validate_reports_every_problem(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "hosts.yml"
    path.write_text(
        "all:\n  vars:\n    cluster_name: Bad Name\n  children:\n    workers:\n      hosts:\n"
        "        Bad_Host:\n          tailscale_ip: 100.64.0.1\n"
        "        w-2:\n          tailscale_ip: 10.0.0.1\n          reserved_memory: 1GB\n"
    )
    result = cli("-i", path, "validate", "--json")
    assert result.code == 1
    report = result.json()
    assert report["valid"] is False
    wheres = [p["where"] for p in report["problems"]]
    assert "all.vars.cluster_name" in wheres
    assert "all.children.workers.hosts.Bad_Host.hostname" in wheres
    assert "all.children.workers.hosts.w-2.tailscale_ip" in wheres
    assert "all.children.workers.hosts.w-2.reserved_memory" in wheres
    assert "all.children.control_plane.hosts" in wheres
    human = cli("-i", path, "validate")
    assert human.code == 1 and human.stdout.count("error:") == 5


def test_validate_warning_only_passes(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "hosts.yml"
    path.write_text(
        "all:\n  children:\n    control_plane:\n      hosts:\n"
        "        a:\n          tailscale_ip: 100.64.0.1\n"
        "        b:\n          tailscale_ip: 100.64.0.2\n"
    )
    result = cli("-i", path, "validate")
    assert result.code == 0 and "warning" in result.stdout


def test_config_get_and_set(cli: Cli, inventory: Path) -> None:
    assert cli("-i", inventory, "config-get", "reserved_cpu", "--scope", "w-1").stdout == "500m\n"
    result = cli(
        "-i", inventory, "config-set", "gpu_time_slicing_replicas", "8", "--type", "int", "--json"
    )
    assert result.code == 0 and result.json()["value"] == 8
    got = cli("-i", inventory, "config-get", "gpu_time_slicing_replicas", "--json").json()
    assert got == {"key": "gpu_time_slicing_replicas", "scope": "all", "value": 8}
    shadowed = cli("-i", inventory, "config-set", "reserved_cpu", "3", "--scope", "all")
    assert shadowed.code == 0 and "overridden for" in shadowed.stderr
    nested = cli(
        "-i",
        inventory,
        "config-set",
        "node_labels[topology.kubernetes.io/zone]",
        "loft",
        "--scope",
        "gpu-1",
    )
    assert nested.code == 0, nested.stderr
    assert json.loads(
        cli("-i", inventory, "config-get", "node_labels", "--scope", "gpu-1", "--json").stdout
    )["value"] == {"topology.kubernetes.io/zone": "loft"}
    flags = cli("-i", inventory, "config-set", "extra_flags", '{"a": [1, 2]}', "--type", "json")
    assert flags.code == 0
    assert cli("-i", inventory, "config-get", "extra_flags.a").stdout == "[\n  1,\n  2\n]\n"
    missing = cli("-i", inventory, "config-get", "nothing_here")
    _one_line_error(missing, "not set")


def test_config_set_reads_values_as_declared(cli: Cli, inventory: Path) -> None:
    """Without --type, VALUE is read as the models or the roles' argument specs declare the
    setting; a variable no one declares stays text."""
    cases = [
        (["gpu_time_slicing_replicas", "8"], 8),
        (["gpu", "yes", "--scope", "w-1"], True),
        (["node_labels[zone]", "7", "--scope", "w-1"], "7"),
        (["prerequisites_firewall", "false"], False),
        (["prerequisites_node_ports", "[10250, 8472]"], [10250, 8472]),
        (["my_own_note", "1"], "1"),
        (["my_own_flag", "true", "--type", "bool"], True),
    ]
    for args, expected in cases:
        result = cli("-i", inventory, "config-set", *args, "--json")
        assert result.code == 0, (args, result.stderr)
        assert result.json()["value"] == expected, args
        scope = args[args.index("--scope") + 1] if "--scope" in args else "all"
        got = cli("-i", inventory, "config-get", args[0], "--scope", scope, "--json")
        assert got.json()["value"] == expected, (args, got.stdout)


def test_inventory_is_found_upward_and_from_env(cli: Cli, tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "ansible/inventory").mkdir(parents=True)
    (project / "deep/er").mkdir(parents=True)
    (project / "ansible/inventory/hosts.yml").write_text(
        "all:\n  children:\n    control_plane:\n      hosts:\n        cp:\n"
        "          tailscale_ip: 100.64.0.1\n"
    )
    assert cli("validate", cwd=project / "deep/er").code == 0
    other = tmp_path / "elsewhere.yml"
    other.write_text("all: {}\n")
    assert cli("validate", cwd=project, env={"KUBANI_INVENTORY": str(other)}).code == 1
    _one_line_error(cli("validate", cwd=tmp_path), "no inventory found")


def test_debug_shows_traceback(cli: Cli, inventory: Path) -> None:
    result = cli("-i", inventory, "--debug", "remove-node", "nohost", "--inventory-only")
    assert result.code == 1 and "Traceback" in result.stderr


def test_no_colour_codes_when_asked(cli: Cli, tmp_path: Path, inventory: Path) -> None:
    result = cli(
        "-i",
        inventory,
        "discover",
        "--status-file",
        _status_file(tmp_path),
        env={"NO_COLOR": "1", "FORCE_COLOR": "1", "TERM": "xterm-256color"},
    )
    assert "\x1b[3" not in result.stdout + result.stderr


def test_new_files_are_private(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "hosts.yml"
    path.write_text(
        "all:\n  children:\n    control_plane:\n      hosts:\n"
        "        cp:\n          tailscale_ip: 100.64.0.1\n"
    )
    path.chmod(0o640)
    assert cli("-i", path, "add-node", "w", "100.64.0.2").code == 0
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


def test_the_last_control_plane_cannot_be_removed(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "hosts.yml"
    path.write_text(
        "all:\n  children:\n    control_plane:\n      hosts:\n        cp:\n"
        "          tailscale_ip: 100.64.0.1\n    workers:\n      hosts:\n"
        "        w:\n          tailscale_ip: 100.64.0.2\n"
    )
    before = snapshot(tmp_path)
    # The rule says why; forced, the inventory's own validation still refuses an inventory
    # without a control plane.
    for args, reason in (
        (["remove-node", "cp", "--inventory-only"], "it is the last control plane"),
        (["remove-node", "cp", "--force", "--inventory-only"], "no control plane"),
    ):
        _one_line_error(cli("-i", path, *args), reason)
    assert snapshot(tmp_path) == before


ROOT = Path(__file__).resolve().parents[2]


def test_the_repository_ships_example_inventories_only() -> None:
    import subprocess

    tracked = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files", "ansible/inventory"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert tracked and all(path.startswith("ansible/inventory/examples/") for path in tracked)


@pytest.mark.parametrize(
    "example", sorted(p.name for p in (ROOT / "ansible/inventory/examples").glob("*.yml"))
)
def test_the_quick_start_works_in_a_fresh_clone(cli: Cli, tmp_path: Path, example: str) -> None:
    """README: `cp ansible/inventory/examples/X.yml ansible/inventory/hosts.yml`, then the
    inventory is found from the project folder and validates."""
    project = tmp_path / "homelab"
    (project / "ansible/inventory").mkdir(parents=True)
    source = ROOT / "ansible/inventory/examples" / example
    (project / "ansible/inventory/hosts.yml").write_bytes(source.read_bytes())
    result = cli("validate", "--json", cwd=project)
    assert result.code == 0, result.stderr
    assert result.json()["nodes"] >= 1


def test_remove_node_asks_before_it_drains(cli: Cli, inventory: Path) -> None:
    before = snapshot(inventory.parent)
    result = cli("-i", inventory, "remove-node", "w-1")
    assert result.code == 1
    _one_line_error(result, "removing w-1 needs a confirmation", "pass --yes")
    assert snapshot(inventory.parent) == before


def test_remove_node_refuses_a_wrong_name_typed_at_the_prompt(inventory: Path) -> None:
    import os
    import pty
    import subprocess

    from tests.conftest import BIN

    leader, follower = pty.openpty()
    before = snapshot(inventory.parent)
    environment = {k: v for k, v in os.environ.items() if not k.startswith("KUBANI_")}
    process = subprocess.Popen(
        [str(BIN / "cluster-mgr"), "-i", str(inventory), "remove-node", "w-1"],
        stdin=follower, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env={**environment, "NO_COLOR": "1"},
    )  # fmt: skip
    os.close(follower)
    os.write(leader, b"w-2\n")
    _, stderr = process.communicate(timeout=60)
    os.close(leader)
    assert process.returncode == 1
    assert "Type 'w-1' to confirm" in stderr.decode()
    assert "removing w-1 cancelled" in stderr.decode()
    assert snapshot(inventory.parent) == before
