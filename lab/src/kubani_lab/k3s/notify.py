"""sd_notify: tell systemd (Type=notify units) that the service is ready."""

from __future__ import annotations

import os
import socket


def notify(message: str = "READY=1") -> None:
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return
    if address.startswith("@"):
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.connect(address)
        sock.sendall(message.encode())
