"""The lab's tailnet pieces that need no root: the control server's config (nothing that
calls out), the component builds' pins and cache keys, and the tailnet's account of an
unreachable node."""

from __future__ import annotations

import json
import re
import stat
from pathlib import Path

import pytest
import yaml

from kubani.ansible.progress import Failure, HostState, RunState
from kubani.ansible.unreachable import explain_unreachable, tailnet_hint
from kubani_lab import headscale
from kubani_lab.components import COMPONENTS, TAILSCALE, cache_key, modules_root
from tests.tailnet_fakes import TailnetDevice, render_status


def _server(tmp_path: Path) -> headscale.ControlServer:
    return headscale.ControlServer(
        folder=tmp_path / "control",
        address="198.18.7.2",
        tailnet_prefix="100.64.7.0/24",
        base_domain="t.lab.kubani.test",
    )


def test_the_control_server_calls_nothing_outside_the_lab(tmp_path: Path) -> None:
    server = _server(tmp_path)
    headscale.write_config(server)
    config = yaml.safe_load(server.config.read_text())
    assert config["server_url"] == "https://198.18.7.2"
    assert config["derp"]["urls"] == [] and config["derp"]["paths"] == []
    assert config["derp"]["auto_update_enabled"] is False
    assert config["derp"]["server"]["enabled"] is True
    assert config["derp"]["server"]["stun_listen_addr"] == "198.18.7.2:3478"
    assert config["disable_check_updates"] is True
    assert config["logtail"]["enabled"] is False
    assert config["dns"]["nameservers"]["global"] == []
    assert config["dns"]["magic_dns"] is True and config["dns"]["override_local_dns"] is False
    assert config["prefixes"] == {"v4": "100.64.7.0/24", "allocation": "sequential"}
    # Everything else it listens on stays on loopback.
    for key in ("metrics_listen_addr", "grpc_listen_addr"):
        assert config[key].startswith("127.0.0.1:")
    assert not (server.folder / "tls.key").stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO)
    policy = json.loads((server.folder / "policy.json").read_text())
    assert set(policy["tagOwners"]) == {"tag:k3s", "tag:gpu"}
    before = server.config.read_text(), (server.folder / "ca.crt").read_bytes()
    headscale.write_config(server)  # idempotent: the CA and certificate are kept
    assert (server.config.read_text(), (server.folder / "ca.crt").read_bytes()) == before


def test_components_are_pinned_with_checksums() -> None:
    root = modules_root()
    for component in COMPONENTS:
        module = root / component.name
        go_mod = (module / "go.mod").read_text()
        own = re.search(r"^module (\S+)$", go_mod, re.M)
        assert own is not None
        for package in component.packages:
            if package.startswith(own.group(1) + "/"):  # a wrapper command of our own
                assert (module / package.removeprefix(own.group(1) + "/") / "main.go").is_file()
            else:
                assert re.search(rf"^(tool)?\s*{re.escape(package)}\s*$", go_mod, re.M), package
        # Exact versions and a checksum for each; a replace only pins another released
        # version (never a local folder or a fork).
        pinned: dict[str, str] = {}
        for replaced, target in re.findall(r"^(?:replace)?\s*(\S+) => (.+)$", go_mod, re.M):
            path, version = target.split()
            assert path == replaced and re.fullmatch(r"v\d+\.\d+\.\d+(-[0-9a-z.-]+)?", version), (
                target
            )
            pinned[path] = version
        sums = (module / "go.sum").read_text()
        required = re.findall(r"^\t(\S+) (v\S+)(?: // indirect)?$", go_mod, re.M)
        assert len(required) > 50
        for path, required_version in required:
            version = pinned.get(path, required_version)
            assert f"{path} {version} h1:" in sums or f"{path} {version}/go.mod h1:" in sums


def test_the_cache_key_follows_the_pins(tmp_path: Path) -> None:
    original = modules_root() / TAILSCALE.name
    copy = tmp_path / TAILSCALE.name
    copy.mkdir()
    for name in ("go.mod", "go.sum"):
        (copy / name).write_bytes((original / name).read_bytes())
    first = cache_key(TAILSCALE, copy)
    assert cache_key(TAILSCALE, copy) == first
    (copy / "go.sum").write_text((copy / "go.sum").read_text().replace("h1:", "h1:x", 1))
    assert cache_key(TAILSCALE, copy) != first


def _status(devices: list[TailnetDevice]) -> dict[str, object]:
    return render_status(devices, "mgmt")


def test_an_unreachable_node_is_explained_by_the_tailnet() -> None:
    from datetime import UTC, datetime

    status = _status(
        [
            TailnetDevice("mgmt", "100.64.0.1"),
            TailnetDevice("w-1", "100.64.0.3"),
            TailnetDevice(
                "w-2", "100.64.0.4", online=False, last_seen=datetime(2026, 11, 1, tzinfo=UTC)
            ),
        ]
    )
    offline = tailnet_hint("w-2", "100.64.0.4", status)
    assert offline is not None
    assert "w-2 is offline on the tailnet (last seen 2026-11-01T00:00:00Z)" in offline
    assert "run `sudo tailscale up` on w-2" in offline
    gone = tailnet_hint("w-9", "100.64.0.9", status)
    assert gone is not None and "100.64.0.9 is not on this machine's tailnet" in gone
    assert tailnet_hint("w-1", "100.64.0.3", status) is None  # online: not the tailnet's fault
    assert tailnet_hint("w-1", "not-an-address", status) is not None


def test_explain_unreachable_replaces_only_the_unreachable_hosts_hints(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(
        "all:\n  children:\n    control_plane:\n      hosts:\n        cp-1:\n"
        "          tailscale_ip: 100.64.0.2\n    workers:\n      hosts:\n        w-2:\n"
        "          tailscale_ip: 100.64.0.4\n"
    )
    status_file = tmp_path / "status.json"
    status_file.write_text(
        json.dumps(
            _status(
                [
                    TailnetDevice("mgmt", "100.64.0.1"),
                    TailnetDevice("cp-1", "100.64.0.2"),
                    TailnetDevice("w-2", "100.64.0.4", online=False),
                ]
            )
        )
    )
    fake = tmp_path / "tailscale"
    fake.write_text(f"#!/bin/sh\ncat '{status_file}'\n")
    fake.chmod(0o755)
    monkeypatch.setenv("KUBANI_TAILSCALE_BIN", str(fake))
    state = RunState("site")
    state.hosts = {"cp-1": HostState("cp-1", failed=1), "w-2": HostState("w-2", unreachable=True)}
    state.failures = [
        Failure("cp-1", "prerequisites", "Fail with the pairs", "cp-1 cannot reach w-2", "ports"),
        Failure("w-2", None, "Gathering Facts", "No route to host", "check SSH"),
    ]
    explain_unreachable(state, inventory)
    hints = {f.host: f.hint for f in state.failures}
    assert hints["cp-1"] == "ports"
    assert hints["w-2"] is not None and "w-2 is offline on the tailnet" in hints["w-2"]
    # Without a tailscale CLI here, the generic hint stays.
    monkeypatch.setenv("KUBANI_TAILSCALE_BIN", str(tmp_path / "missing"))
    state.failures[1] = Failure("w-2", None, "Gathering Facts", "No route to host", "check SSH")
    explain_unreachable(state, inventory)
    assert state.failures[1].hint == "check SSH"
