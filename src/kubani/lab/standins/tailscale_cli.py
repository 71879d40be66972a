"""``tailscale`` stand-in: the real CLI's surface, answered from the lab's tailnet file.

The lab host keeps ``tailnet.json`` (every device: addresses, online, relay, backend state)
in a folder bound read-only into each node at ``/run/kubani-tailnet``. A node's own
``tailscale up``/``down`` is kept in ``/var/lib/tailscale/lab-backend-state``.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kubani.lab.tailnet import CLIENT_VERSION, TailnetDevice, render_status

TAILNET_FILE = Path(os.environ.get("KUBANI_TAILNET_DIR", "/run/kubani-tailnet")) / "tailnet.json"
LOCAL_STATE = Path(os.environ.get("KUBANI_TAILSCALE_STATE", "/var/lib/tailscale/lab-backend-state"))
SOCKET_HINT = "/var/run/tailscale/tailscaled.sock"


def _self_name() -> str:
    return os.environ.get("KUBANI_TAILSCALE_SELF") or socket.gethostname()


def load_devices() -> tuple[list[TailnetDevice], str]:
    try:
        raw = json.loads(TAILNET_FILE.read_text())
    except (OSError, ValueError):
        sys.stderr.write(
            "failed to connect to local tailscaled; it doesn't appear to be running "
            "(sudo systemctl start tailscaled ?)\n"
        )
        raise SystemExit(1) from None
    devices = []
    for item in raw["devices"]:
        seen = item.get("last_seen")
        devices.append(
            TailnetDevice(
                hostname=item["hostname"],
                ipv4=item["ipv4"],
                ipv6=item.get("ipv6"),
                os=item.get("os", "linux"),
                online=item.get("online", True),
                relay=item.get("relay"),
                tags=item.get("tags", []),
                backend_state=item.get("backend_state", "Running"),
                last_seen=datetime.fromisoformat(seen) if seen else None,
                endpoint=item.get("endpoint"),
            )
        )
    me = _self_name()
    local = LOCAL_STATE.read_text().strip() if LOCAL_STATE.exists() else ""
    for device in devices:
        if device.hostname == me and local:
            device.backend_state = local
        if device.backend_state != "Running":
            device.online = False
    if not any(d.hostname == me for d in devices):
        sys.stderr.write(f"this machine ({me}) is not on the lab tailnet\n")
        raise SystemExit(1)
    return devices, me


def _status(args: argparse.Namespace) -> int:
    devices, me = load_devices()
    status = render_status(devices, me)
    if args.json:
        print(json.dumps(status, indent=2))
        return 0
    if status["BackendState"] == "NeedsLogin":
        print("Logged out.\nLog in at: https://login.tailscale.com/a/kubani-lab")
        return 1
    if status["BackendState"] == "Stopped":
        print("Tailscale is stopped.")
        return 1
    rows = [status["Self"], *(status["Peer"] or {}).values()]
    for node in rows:
        if node is status["Self"]:
            state = "-"
        elif not node["Online"]:
            state = "offline"
        elif node["CurAddr"]:
            state = f"active; direct {node['CurAddr']}, tx 0 rx 0"
        else:
            state = f'active; relay "{node["Relay"]}", tx 0 rx 0'
        print(
            f"{node['TailscaleIPs'][0]:<16}{node['HostName']:<24}lab@         "
            f"{node['OS']:<8}{state}"
        )
    return 0


def _find(devices: list[TailnetDevice], target: str) -> TailnetDevice | None:
    for device in devices:
        names = {device.hostname, device.ipv4, device.ipv6, f"{device.hostname}.tail0lab.ts.net"}
        if target in names:
            return device
    return None


def _ip(args: argparse.Namespace) -> int:
    devices, me = load_devices()
    target = _find(devices, args.peer) if args.peer else _find(devices, me)
    if target is None:
        sys.stderr.write(f"unknown peer {args.peer!r}\n")
        return 1
    mine = _find(devices, me)
    if mine is not None and mine.backend_state != "Running":
        sys.stderr.write(f"no current Tailscale IPs; state: {mine.backend_state}\n")
        return 1
    if not args.six:
        print(target.ipv4)
    if not args.four and target.ipv6:
        print(target.ipv6)
    return 0


def _ping(args: argparse.Namespace) -> int:
    devices, me = load_devices()
    mine = _find(devices, me)
    if mine is not None and mine.backend_state != "Running":
        sys.stderr.write(f"Tailscale is not running; state: {mine.backend_state}\n")
        return 1
    peer = _find(devices, args.target)
    if peer is None:
        sys.stderr.write(f"error looking up IP of {args.target!r}: no such peer\n")
        return 1
    for _ in range(max(args.c, 1)):
        started = time.monotonic()
        answered = (
            peer.online
            and subprocess.run(
                ["ping", "-c", "1", "-W", "1", peer.ipv4], capture_output=True, check=False
            ).returncode
            == 0
        )
        if answered:
            elapsed = max(int((time.monotonic() - started) * 1000), 1)
            via = f"DERP({peer.relay})" if peer.relay else f"{peer.ipv4}:41641"
            print(f"pong from {peer.hostname} ({peer.ipv4}) via {via} in {elapsed}ms")
            return 0
        print("ping timed out")
    print(f"no reply from {peer.hostname} ({peer.ipv4})")
    return 1


def _set_state(state: str) -> int:
    LOCAL_STATE.parent.mkdir(parents=True, exist_ok=True)
    LOCAL_STATE.write_text(state + "\n")
    return 0


def _version(_: argparse.Namespace) -> int:
    print(CLIENT_VERSION.split("-")[0])
    print(f"  tailscale commit: {CLIENT_VERSION.split('-')[1]}")
    print("  other commit: kubani-lab stand-in")
    print("  go version: go1.24.0")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tailscale")
    sub = parser.add_subparsers(dest="command", required=True)
    status = sub.add_parser("status")
    status.add_argument("--json", action="store_true")
    status.add_argument("--peers", action="store_true", default=True)
    status.set_defaults(run=_status)
    ip = sub.add_parser("ip")
    ip.add_argument("-4", dest="four", action="store_true")
    ip.add_argument("-6", dest="six", action="store_true")
    ip.add_argument("peer", nargs="?")
    ip.set_defaults(run=_ip)
    ping = sub.add_parser("ping")
    ping.add_argument("-c", type=int, default=10)
    ping.add_argument("--timeout", default="5s")
    ping.add_argument("target")
    ping.set_defaults(run=_ping)
    sub.add_parser("version").set_defaults(run=_version)
    for name, state in (
        ("up", "Running"),
        ("login", "Running"),
        ("down", "Stopped"),
        ("logout", "NeedsLogin"),
    ):
        command = sub.add_parser(name)
        command.add_argument("rest", nargs=argparse.REMAINDER)
        command.set_defaults(run=lambda _a, s=state: _set_state(s))
    args = parser.parse_args(argv)
    result: int = args.run(args)
    return result


def serialise(devices: list[TailnetDevice]) -> dict[str, Any]:
    """The tailnet file the lab host writes."""
    return {
        "generated": datetime.now(UTC).isoformat(),
        "devices": [
            {
                "hostname": d.hostname,
                "ipv4": d.ipv4,
                "ipv6": d.ipv6,
                "os": d.os,
                "online": d.online,
                "relay": d.relay,
                "tags": d.tags,
                "backend_state": d.backend_state,
                "endpoint": d.endpoint,
                "last_seen": d.last_seen.isoformat() if d.last_seen else None,
            }
            for d in devices
        ],
    }


if __name__ == "__main__":
    raise SystemExit(main())
