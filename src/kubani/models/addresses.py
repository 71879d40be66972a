"""IP addresses as the inventory and the tailnet sources write them (standard library only,
so that reading a tailnet does not import pydantic)."""

from __future__ import annotations

import ipaddress
import socket

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_address(value: object) -> IPAddress:
    """``ipaddress.ip_address``, with dotted quads parsed by the C library: ipaddress reads
    them octet by octet in Python, which a 10,000-node inventory notices. inet_pton accepts
    exactly the strict form ipaddress does (no leading zeros, no shorthand)."""
    if isinstance(value, str) and value.count(".") == 3:
        try:
            return ipaddress.IPv4Address(socket.inet_pton(socket.AF_INET, value))
        except OSError:
            pass
    if not isinstance(value, str | int | bytes):
        raise ValueError(f"{value!r} is not an IP address")
    return ipaddress.ip_address(value)


def address_text(value: object) -> str | None:
    """The address in ``100.64.0.1`` or ``100.64.0.1/32`` (an interface, as the API and
    headscale write them) in its canonical text; None when it is no address at all (the API
    writes ``no-tailscale-IP-found`` for some devices)."""
    text = str(value).strip()
    address, _, prefix = text.partition("/")
    if prefix and not (prefix.isascii() and prefix.isdigit()):  # isdigit alone takes "²"
        try:  # a netmask, not a prefix length: ipaddress reads those
            return str(ipaddress.ip_interface(text).ip)
        except ValueError:
            return None
    try:
        parsed = parse_address(address)
    except ValueError:
        return None
    if prefix and int(prefix) > parsed.max_prefixlen:
        return None
    return str(parsed)
