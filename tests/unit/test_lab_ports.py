"""Lab listening ports come from outside the range the kernel gives outgoing connections."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from kubani_lab.k3s import ports


def test_a_port_is_below_the_ephemeral_range_and_binds() -> None:
    start = int(ports.EPHEMERAL_RANGE.read_text().split()[0])
    seen = {ports.unused_port() for _ in range(50)}
    assert len(seen) == 50  # never handed out twice
    for port in seen:
        assert ports.LOWEST <= port < start
    with socket.socket() as server:
        server.bind(("127.0.0.1", seen.pop()))


def test_a_port_in_use_is_never_handed_out(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as taken:
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 0)
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        choices = iter([busy, busy, busy + 1 if busy < 65535 else busy - 1])
        monkeypatch.setattr(ports.random, "randint", lambda low, high: next(choices))
        monkeypatch.setattr(ports, "_ephemeral_start", lambda: 65535)
        assert ports.unused_port() != busy


def test_an_unreadable_range_falls_back_to_the_kernel_default(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(ports, "EPHEMERAL_RANGE", tmp_path / "missing")
    assert ports._ephemeral_start() == ports.FALLBACK_EPHEMERAL_START
    (tmp_path / "garbled").write_text("not numbers\n")
    monkeypatch.setattr(ports, "EPHEMERAL_RANGE", tmp_path / "garbled")
    assert ports._ephemeral_start() == ports.FALLBACK_EPHEMERAL_START


def test_no_free_port_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ports, "_binds", lambda address, port: False)
    with pytest.raises(OSError, match=r"no unused port on 127\.0\.0\.1"):
        ports.unused_port()
