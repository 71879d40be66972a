"""Name rules shared by Kubernetes and Tailscale: DNS labels, label keys and values."""

from __future__ import annotations

import re

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
# A host name in DNS: RFC 1123 labels of at most 63 characters, 253 in all.
_DNS_NAME = re.compile(
    r"^(?=.{1,253}$)[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*$"
)
_DNS_1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")
_LABEL_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")


def dns_label(value: str) -> str:
    """An RFC 1123 label: a node hostname, a namespace, a cluster name."""
    if not _DNS_LABEL.match(value):
        raise ValueError(
            f"{value!r} is not an RFC 1123 label (lowercase letters, digits and '-', "
            "1-63 characters, starting and ending with a letter or digit)"
        )
    return value


def is_dns_label(value: str) -> bool:
    return bool(_DNS_LABEL.match(value))


_NOT_IN_LABEL = re.compile(r"[^a-z0-9]+")


def label_from(text: str) -> str | None:
    """A machine's name as it calls itself ("DESKTOP-X_1", "Bob's MacBook") made an RFC 1123
    label: lowercase, each run of other characters one '-', at most 63 characters; None
    when no letter or digit is left."""
    label = _NOT_IN_LABEL.sub("-", text.lower()).strip("-")[:63].rstrip("-")
    return label if is_dns_label(label) else None


def is_dns_name(value: str) -> bool:
    return bool(_DNS_NAME.match(value))


def is_dns_subdomain(value: str) -> bool:
    return len(value) <= 253 and bool(_DNS_SUBDOMAIN.match(value))


def is_dns_1035_label(value: str) -> bool:
    """An RFC 1035 label: an RFC 1123 label that starts with a letter (a Service's name)."""
    return bool(_DNS_1035_LABEL.match(value))


def is_path_segment_name(value: str) -> bool:
    """A name that can stand in a URL path on its own (RBAC objects' names)."""
    return value not in ("", ".", "..") and "/" not in value and "%" not in value


def dns_subdomain(value: str) -> str:
    if not is_dns_subdomain(value):
        raise ValueError(f"{value!r} is not a DNS subdomain (RFC 1123, at most 253 characters)")
    return value


def label_key(key: str) -> str:
    """A Kubernetes label (or taint) key: ``[prefix/]name``."""
    prefix, slash, name = key.rpartition("/")
    if slash:
        if not prefix:
            raise ValueError(f"label key {key!r} has an empty prefix before '/'")
        try:
            dns_subdomain(prefix)
        except ValueError:
            raise ValueError(
                f"label key {key!r}: prefix {prefix!r} must be a DNS subdomain"
            ) from None
    if not _LABEL_NAME.match(name):
        raise ValueError(
            f"label key {key!r}: name {name!r} must be 1-63 characters of letters, digits, "
            "'-', '_' or '.', starting and ending with a letter or digit"
        )
    return key


def label_value(value: str) -> str:
    if not _LABEL_VALUE.match(value):
        raise ValueError(
            f"label value {value!r} must be at most 63 characters of letters, digits, "
            "'-', '_' or '.', starting and ending with a letter or digit (or be empty)"
        )
    return value
