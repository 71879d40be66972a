from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest

from kubani.models.peer import TailscalePeer
from kubani.tailscale import DiscoveryOptions, TailscaleError, discover, fetch_peers
from kubani.tailscale.local import check_backend, read_status
from kubani.tailscale.parse import peers_from_api, peers_from_headscale, peers_from_status
from kubani.tailscale.remote import ApiCredentials
from kubani.vocabulary import PeerSource
from tests.conftest import PEER_KEYS, FakeHttp, fixture_json
from tests.tailnet_fakes import TailnetDevice, render_api_devices, render_status


def test_status_fixture_normalises() -> None:
    peers = {p.hostname: p for p in peers_from_status(fixture_json("tailscale-status.json"))}
    me = peers["k3s-server-1"]
    assert me.is_self and me.relay is None and me.ipv4 == "100.101.10.1"
    assert me.dns_name == "k3s-server-1.tail1234ab.ts.net"
    gpu = peers["k3s-agent-gpu-1"]
    assert gpu.online and gpu.relay is None and gpu.tags == ("tag:k3s-agent", "tag:gpu")
    mac = peers["Alices-MacBook-Pro"]
    assert mac.relay == "fra" and mac.os == "macOS" and mac.tags == ()
    offline = peers["k3s-agent-2"]
    assert not offline.online and offline.relay is None
    assert offline.last_seen is not None and offline.last_seen.year == 2025
    assert set(me.to_json()) == PEER_KEYS


def test_a_status_from_before_tailscale_ips_gives_tail_addr() -> None:
    old = {
        "BackendState": "Running",
        "Self": {"HostName": "desk", "TailAddr": "100.101.10.1", "Online": True},
        "Peer": {"nodekey:1": {"HostName": "nuc", "TailAddr": "100.101.10.2", "Online": True}},
    }
    assert [(p.hostname, p.ipv4) for p in peers_from_status(old)] == [
        ("desk", "100.101.10.1"),
        ("nuc", "100.101.10.2"),
    ]


def test_api_fixture_normalises() -> None:
    peers = {p.hostname: p for p in peers_from_api(fixture_json("tailscale-api-v2-devices.json"))}
    assert peers["k3s-server-1"].online and peers["k3s-server-1"].last_seen is None
    assert not peers["k3s-agent-2"].online
    assert peers["k3s-agent-2"].last_seen is not None


def test_headscale_fixture_normalises() -> None:
    peers = peers_from_headscale(fixture_json("headscale-api-v1-nodes.json"), "hs.example")
    first = peers[0]
    assert first.hostname == "k3s-server-1" and first.dns_name == "k3s-server-1.hs.example"
    assert first.ipv4 == "100.64.0.1" and first.tags == ("tag:k3s-server",)
    assert not peers[1].online and peers[1].last_seen is not None


def test_old_headscale_tags_are_merged() -> None:
    peers = peers_from_headscale(
        {
            "nodes": [
                {
                    "name": "a",
                    "ipAddresses": ["100.64.0.1"],
                    "forcedTags": ["tag:x"],
                    "validTags": ["tag:x", "tag:y"],
                }
            ]
        }
    )
    assert peers[0].tags == ("tag:x", "tag:y")


@pytest.mark.parametrize(
    ("state", "fix"),
    [
        ("NeedsLogin", "tailscale up"),
        ("Stopped", "tailscale up"),
        ("NeedsMachineAuth", "approve"),
        ("Starting", "retry"),
    ],
)
def test_backend_states_name_the_fix(state: str, fix: str) -> None:
    with pytest.raises(TailscaleError) as info:
        check_backend({"BackendState": state})
    assert state in str(info.value) and fix in str(info.value)


def test_a_status_without_its_state_is_read_for_its_devices() -> None:
    trimmed = {"Peer": {"k": {"HostName": "nuc", "TailscaleIPs": ["100.64.0.3"]}}}
    check_backend(trimmed)  # a trimmed or hand-made file: its devices are what it tells
    with pytest.raises(TailscaleError, match="not `tailscale status --json` output"):
        check_backend({"Version": "1.80.0"})


def _fake_tailscale(tmp_path: Path, body: str) -> Path:
    script = tmp_path / "tailscale"
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return script


def test_cli_missing(tmp_path: Path) -> None:
    with pytest.raises(TailscaleError, match="tailscale CLI not found"):
        read_status(str(tmp_path / "nope"))


def test_daemon_stopped(tmp_path: Path) -> None:
    script = _fake_tailscale(
        tmp_path,
        "echo \"failed to connect to local tailscaled; it doesn't appear to be running "
        '(sudo systemctl start tailscaled ?)" >&2; exit 1',
    )
    with pytest.raises(TailscaleError) as info:
        read_status(str(script))
    assert "tailscaled is not running" in str(info.value)
    assert "systemctl start tailscaled" in str(info.value)


def test_cli_hang_times_out(tmp_path: Path) -> None:
    script = _fake_tailscale(tmp_path, "exec sleep 10")
    with pytest.raises(TailscaleError, match="did not answer"):
        read_status(str(script), timeout=0.5)


def test_cli_garbage(tmp_path: Path) -> None:
    script = _fake_tailscale(tmp_path, "echo not json")
    with pytest.raises(TailscaleError, match="not JSON"):
        read_status(str(script))


def _tailnet() -> list[TailnetDevice]:
    from datetime import UTC, datetime

    return [
        TailnetDevice("mgmt", "100.64.0.1", "fd7a:115c:a1e0::1"),
        TailnetDevice("cp-1", "100.64.0.10", "fd7a:115c:a1e0::10", tags=["tag:k3s"]),
        TailnetDevice("w-1", "100.64.0.20", relay="fra"),
        TailnetDevice(
            "laptop",
            "100.64.0.30",
            os="macOS",
            online=False,
            last_seen=datetime(2025, 3, 1, 7, 15, tzinfo=UTC),
        ),
    ]


def test_cli_and_api_sources_agree(tmp_path: Path, fake_http: FakeHttp) -> None:
    devices = _tailnet()
    script = _fake_tailscale(tmp_path, f"cat {tmp_path / 'status.json'}")
    (tmp_path / "status.json").write_text(json.dumps(render_status(devices, "mgmt")))
    fake_http.routes[("GET", "/api/v2/tailnet/-/devices")] = (200, render_api_devices(devices))

    from_cli = discover(DiscoveryOptions(tailscale_bin=str(script)), {"cp-1"}, {"100.64.0.20"})
    from_api = discover(
        DiscoveryOptions(
            source=PeerSource.API,
            api_url=fake_http.url,
            credentials=ApiCredentials(api_key="tskey-api-test"),
        ),
        {"cp-1"},
        {"100.64.0.20"},
    )
    # Only the local CLI knows which device is this machine and the current path.
    local_only = {"is_self", "relay"}

    def shared(peer: TailscalePeer) -> dict[str, object]:
        return {k: v for k, v in peer.to_json().items() if k not in local_only}

    assert [shared(p) for p in from_cli] == [
        shared(p) for p in sorted(from_api, key=lambda p: p.hostname != "mgmt")
    ]
    assert [p.hostname for p in from_cli if p.in_cluster] == ["cp-1", "w-1"]
    assert [p.relay for p in from_cli] == [None, None, None, "fra"]
    assert fake_http.requests[0][2]["authorization"] == "Bearer tskey-api-test"


def test_oauth_client_credentials(fake_http: FakeHttp) -> None:
    def token(method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, Any]:
        assert b"grant_type=client_credentials" in body and b"client_secret=s3cret" in body
        return 200, fixture_json("tailscale-api-v2-oauth-token.json")

    fake_http.routes[("POST", "/api/v2/oauth/token")] = token
    fake_http.routes[("GET", "/api/v2/tailnet/example.org/devices")] = (
        200,
        fixture_json("tailscale-api-v2-devices.json"),
    )
    peers = fetch_peers(
        DiscoveryOptions(
            source=PeerSource.API,
            api_url=fake_http.url,
            tailnet="example.org",
            credentials=ApiCredentials(client_id="cid", client_secret="s3cret"),
        )
    )
    assert len(peers) == 4
    bearer = fake_http.requests[1][2]["authorization"]
    assert bearer.startswith("Bearer tskey-api-")


@pytest.mark.parametrize("status", [401, 403])
def test_api_auth_errors(fake_http: FakeHttp, status: int) -> None:
    fake_http.routes[("GET", "/api/v2/tailnet/-/devices")] = (
        status,
        fixture_json("tailscale-api-v2-error.json"),
    )
    with pytest.raises(TailscaleError) as info:
        fetch_peers(
            DiscoveryOptions(
                source=PeerSource.API,
                api_url=fake_http.url,
                credentials=ApiCredentials(api_key="tskey-secret-value"),
            )
        )
    message = str(info.value)
    assert f"HTTP {status}: API token invalid" in message and "TAILSCALE_API_KEY" in message
    assert "tskey-secret-value" not in message


def test_api_timeout(fake_http: FakeHttp) -> None:
    fake_http.delay = 2.0
    fake_http.routes[("GET", "/api/v2/tailnet/-/devices")] = (200, {"devices": []})
    with pytest.raises(TailscaleError, match="did not answer"):
        fetch_peers(
            DiscoveryOptions(
                source=PeerSource.API,
                api_url=fake_http.url,
                timeout=0.3,
                credentials=ApiCredentials(api_key="k"),
            )
        )


def test_api_without_credentials() -> None:
    with pytest.raises(TailscaleError, match="TAILSCALE_API_KEY"):
        fetch_peers(
            DiscoveryOptions(
                source=PeerSource.API, api_url="http://127.0.0.1:9", credentials=ApiCredentials()
            )
        )


def test_headscale_over_http(fake_http: FakeHttp) -> None:
    fake_http.routes[("GET", "/api/v1/node")] = (200, fixture_json("headscale-api-v1-nodes.json"))
    peers = fetch_peers(
        DiscoveryOptions(
            source=PeerSource.HEADSCALE, headscale_url=fake_http.url, headscale_api_key="hskey"
        )
    )
    assert [p.hostname for p in peers][:2] == ["k3s-server-1", "k3s-agent-2"]
    fake_http.routes[("GET", "/api/v1/node")] = (401, {"message": "Unauthorized"})
    with pytest.raises(TailscaleError, match="headscale apikeys create"):
        fetch_peers(
            DiscoveryOptions(
                source=PeerSource.HEADSCALE, headscale_url=fake_http.url, headscale_api_key="hskey"
            )
        )


def test_headscale_before_0_23_lists_machines(fake_http: FakeHttp) -> None:
    nodes = fixture_json("headscale-api-v1-nodes.json")["nodes"]
    fake_http.routes[("GET", "/api/v1/machine")] = (200, {"machines": nodes})
    options = DiscoveryOptions(
        source=PeerSource.HEADSCALE, headscale_url=fake_http.url, headscale_api_key="hskey"
    )
    assert [p.hostname for p in fetch_peers(options)][:2] == ["k3s-server-1", "k3s-agent-2"]
    del fake_http.routes[("GET", "/api/v1/machine")]
    with pytest.raises(TailscaleError, match="headscale has no such resource"):
        fetch_peers(options)


def _api_options(fake_http: FakeHttp, **credentials: str) -> DiscoveryOptions:
    return DiscoveryOptions(
        source=PeerSource.API,
        api_url=fake_http.url,
        credentials=ApiCredentials(**(credentials or {"api_key": "k"})),
    )


def test_odd_devices_and_addresses_never_break_the_listing(tmp_path: Path) -> None:
    status = render_status(
        [TailnetDevice("mgmt", "100.64.0.1"), TailnetDevice("cp-1", "100.64.0.10")], "mgmt"
    )
    status["Peer"]["junk"] = "not a device"
    status["Peer"]["odd"] = {"HostName": None, "TailscaleIPs": "100.64.0.77/32", "Tags": "tag:x"}
    peers = peers_from_status(status)
    assert [p.hostname for p in peers] == ["mgmt", "cp-1", ""]
    assert peers[2].ipv4 == "100.64.0.77" and peers[2].tags == ("tag:x",)
    # Peer saved as a list by another tool.
    status["Peer"] = list(status["Peer"].values())
    assert len(peers_from_status(status)) == 4 - 1
    with pytest.raises(TailscaleError, match="Peer is neither an object nor a list"):
        peers_from_status({**status, "Peer": 7})
    devices = render_api_devices([TailnetDevice("nuc", "100.64.0.5")])["devices"]
    devices += [
        {"hostname": "shared", "addresses": ["no-tailscale-IP-found"], "name": "shared.ts.net"},
        "garbage",
    ]
    listed = peers_from_api({"devices": devices})
    assert [(p.hostname, p.ipv4) for p in listed] == [("nuc", "100.64.0.5"), ("shared", None)]
    # Inventory addresses written with a prefix length, and nonsense, still compare.
    marked = discover(
        DiscoveryOptions(status_file=_saved(tmp_path, status)),
        inventory_addresses={"100.64.0.10/32", "not-an-ip"},
    )
    assert [p.hostname for p in marked if p.in_cluster] == ["cp-1"]


def _saved(tmp_path: Path, status: dict[str, Any], encoding: str = "utf-8") -> Path:
    path = tmp_path / f"status-{encoding}.json"
    path.write_bytes(json.dumps(status).encode(encoding))
    return path


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16", "utf-16-le", "utf-32"])
def test_status_files_saved_by_other_tools_are_read(tmp_path: Path, encoding: str) -> None:
    status = render_status([TailnetDevice("mgmt", "100.64.0.1")], "mgmt")
    assert read_status(status_file=_saved(tmp_path, status, encoding))["Self"]["HostName"] == (
        "mgmt"
    )
    broken = tmp_path / "broken.json"
    broken.write_bytes(b"\xff\xfe\x00\xd8")  # a BOM, then half a surrogate pair
    with pytest.raises(TailscaleError, match="not text in UTF-8 or UTF-16"):
        read_status(status_file=broken)


@pytest.mark.parametrize(
    ("reply", "shown"),
    [
        ("API token invalid", "HTTP 403: API token invalid"),  # a JSON string
        (b"<html><head><title>403 Forbidden</title></head><body>nginx</body></html>",
         "HTTP 403: an HTML page (403 Forbidden)"),
        ({"type": "about:blank", "title": "Unauthorized", "detail": "API key expired"},
         "HTTP 403: API key expired"),
    ],
)  # fmt: skip
def test_error_bodies_of_any_shape_are_reported(
    fake_http: FakeHttp, reply: Any, shown: str
) -> None:
    fake_http.routes[("GET", "/api/v2/tailnet/-/devices")] = (403, reply)
    with pytest.raises(TailscaleError) as refused:
        fetch_peers(_api_options(fake_http))
    assert shown in str(refused.value)
    fake_http.routes[("GET", "/api/v1/node")] = (401, reply)
    with pytest.raises(TailscaleError) as headscale:
        fetch_peers(
            DiscoveryOptions(
                source=PeerSource.HEADSCALE, headscale_url=fake_http.url, headscale_api_key="k"
            )
        )
    assert shown.replace("HTTP 403", "HTTP 401") in str(headscale.value)


def test_an_oauth_endpoint_answering_html_is_a_clear_error(fake_http: FakeHttp) -> None:
    fake_http.routes[("POST", "/api/v2/oauth/token")] = (
        200,
        b"<!DOCTYPE html><html><title>Tailscale login</title></html>",
    )
    with pytest.raises(TailscaleError) as refused:
        fetch_peers(_api_options(fake_http, client_id="c", client_secret="s"))
    message = str(refused.value)
    assert "sent no token" in message and "an HTML page (Tailscale login)" in message
    assert "TAILSCALE_BASE_URL" in message


def test_a_refused_fields_all_is_retried_with_default_fields(fake_http: FakeHttp) -> None:
    listing = render_api_devices([TailnetDevice("nuc", "100.64.0.5")])

    def devices(method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, Any]:
        if "fields=all" in path:
            return 400, {"message": "fields=all is not supported for shared devices"}
        return 200, listing

    fake_http.routes[("GET", "/api/v2/tailnet/-/devices")] = devices
    assert [p.hostname for p in fetch_peers(_api_options(fake_http))] == ["nuc"]
    assert [r[1] for r in fake_http.requests] == [
        "/api/v2/tailnet/-/devices?fields=all",
        "/api/v2/tailnet/-/devices",
    ]


def test_status_stand_in_reports_logged_out_nodes() -> None:
    devices = _tailnet()
    devices[0].backend_state = "NeedsLogin"
    status = render_status(devices, "mgmt")
    assert status["BackendState"] == "NeedsLogin" and status["Peer"] is None
    with pytest.raises(TailscaleError, match="tailscale up"):
        check_backend(status)
