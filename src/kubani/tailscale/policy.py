"""The tailnet policy a K3s cluster needs: the rules to add, and which needed paths a live
policy blocks.

K3s over Tailscale needs, between the cluster's tagged nodes: the kubelet (TCP 10250) and
flannel's VXLAN (UDP 8472) everywhere, the API server and supervisor (TCP 6443) on control
planes, and etcd (TCP 2379-2380) between control planes; the management machine needs SSH
(TCP 22) to every node and the API (TCP 6443). Everything else can stay closed.

Policies are HuJSON (JSON with comments and trailing commas), in either Tailscale's older
``acls`` form or its ``grants`` form; headscale reads the same files.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from kubani import jsonsafe
from kubani.errors import KubaniError
from kubani.vocabulary import DEFAULT_NODE_TAGS, TAILNET_V4

DEFAULT_TAG = DEFAULT_NODE_TAGS[0]
DEFAULT_ADMIN = "autogroup:admin"
_TAILNET_V4 = ipaddress.IPv4Network(TAILNET_V4)


@dataclass(frozen=True)
class NeededPath:
    what: str
    src: str
    dst: str
    proto: str  # tcp | udp
    first_port: int
    last_port: int

    @property
    def ports(self) -> str:
        if self.first_port == self.last_port:
            return str(self.first_port)
        return f"{self.first_port}-{self.last_port}"


def needed_paths(tag: str = DEFAULT_TAG, admin: str = DEFAULT_ADMIN) -> list[NeededPath]:
    return [
        NeededPath("kubelet, between nodes", tag, tag, "tcp", 10250, 10250),
        NeededPath("flannel VXLAN, between nodes", tag, tag, "udp", 8472, 8472),
        NeededPath(
            "API server and K3s supervisor, nodes to control planes", tag, tag, "tcp", 6443, 6443
        ),
        NeededPath("etcd, between control planes", tag, tag, "tcp", 2379, 2380),
        NeededPath("SSH, management machine to nodes", admin, tag, "tcp", 22, 22),
        NeededPath("Kubernetes API, management machine", admin, tag, "tcp", 6443, 6443),
    ]


def _grouped(paths: Iterable[NeededPath]) -> dict[tuple[str, str], list[NeededPath]]:
    grouped: dict[tuple[str, str], list[NeededPath]] = {}
    for path in paths:
        grouped.setdefault((path.src, path.dst), []).append(path)
    return grouped


def policy_snippet(paths: list[NeededPath], style: str) -> dict[str, Any]:
    """The rules (``grants`` or ``acls``) and the tag's owner, to merge into a policy."""
    tags = sorted({p.dst for p in paths if p.dst.startswith("tag:")})
    snippet: dict[str, Any] = {"tagOwners": {tag: [DEFAULT_ADMIN] for tag in tags}}
    if style == "grants":
        snippet["grants"] = [
            {"src": [src], "dst": [dst], "ip": [f"{p.proto}:{p.ports}" for p in group]}
            for (src, dst), group in _grouped(paths).items()
        ]
        return snippet
    rules = []
    for (src, dst), group in _grouped(paths).items():
        for proto in ("tcp", "udp"):
            ports = [p.ports for p in group if p.proto == proto]
            if ports:
                rules.append(
                    {
                        "action": "accept",
                        "src": [src],
                        "proto": proto,
                        "dst": [f"{dst}:{','.join(ports)}"],
                    }
                )
    snippet["acls"] = rules
    return snippet


def as_hujson(snippet: dict[str, Any], paths: list[NeededPath]) -> str:
    """The snippet as HuJSON, each rule preceded by the paths it opens."""
    lines = [
        "// Kubani: what a K3s cluster on this tailnet needs (`cluster-mgr tailnet policy`).",
        "// Merge these entries into your tailnet policy file.",
        "{",
    ]
    for key, value in snippet.items():
        if isinstance(value, dict):
            lines.append(f"  {json.dumps(key)}: {{")
            lines += [f"    {json.dumps(k)}: {json.dumps(v)}," for k, v in value.items()]
            lines.append("  },")
            continue
        allows = _grant_allows if key == "grants" else _acl_allows
        lines.append(f"  {json.dumps(key)}: [")
        for rule in value:
            opened = [p.what for p in paths if allows(rule, p, {}, [])]
            lines.append(f"    // {'; '.join(opened)}")
            lines.append(f"    {json.dumps(rule)},")
        lines.append("  ],")
    lines.append("}")
    return "\n".join(lines) + "\n"


# ---- reading a policy --------------------------------------------------------------------


class PolicyError(KubaniError):
    """A policy file that cannot be read."""


def parse_hujson(text: str) -> Any:
    """HuJSON as Tailscale defines it: JSON plus // and /* */ comments and trailing commas."""
    out: list[str] = []
    index, length = 0, len(text)
    pending_comma: int | None = None  # index in out of a comma that may be trailing
    while index < length:
        char = text[index]
        if char == '"':
            end = index + 1
            while end < length and text[end] != '"':
                end += 2 if text[end] == "\\" else 1
            out.append(text[index : end + 1])
            pending_comma = None
            index = end + 1
        elif text.startswith("//", index):
            newline = text.find("\n", index)
            index = length if newline < 0 else newline
        elif text.startswith("/*", index):
            close = text.find("*/", index + 2)
            if close < 0:
                raise PolicyError("cannot read the policy", "a /* comment is never closed", None)
            index = close + 2
        elif char == ",":
            pending_comma = len(out)
            out.append(char)
            index += 1
        elif char in "]}":
            if pending_comma is not None:
                out[pending_comma] = ""
            pending_comma = None
            out.append(char)
            index += 1
        else:
            if not char.isspace():
                pending_comma = None
            out.append(char)
            index += 1
    try:
        return jsonsafe.loads("".join(out))
    except json.JSONDecodeError as exc:
        raise PolicyError(
            "cannot read the policy", f"not valid HuJSON: {exc.msg} at line {exc.lineno}", None
        ) from exc


@dataclass(frozen=True)
class PathVerdict:
    path: NeededPath
    allowed: bool


def _ports_cover(spec: str, path: NeededPath) -> bool:
    """Whether a port list (``*``, ``22``, ``80,443``, ``2379-2380``) covers the path's."""
    if spec == "*":
        return True
    for part in spec.split(","):
        low, _, high = part.strip().partition("-")
        if not all(p.isascii() and p.strip().isdigit() for p in (low, high or low)):
            continue  # int() would take other scripts' digits; Tailscale does not
        first, last = int(low), int(high or low)
        if first <= path.first_port and path.last_port <= last:
            return True
    return False


def _selector_matches(
    selector: str, wanted: str, hosts: dict[str, str], addresses: list[str]
) -> bool:
    if selector in ("*", wanted):
        return True
    if wanted.startswith("tag:") and selector == "autogroup:tagged":
        return True
    network_text = hosts.get(selector, selector)
    try:
        network = ipaddress.ip_network(network_text, strict=False)
    except ValueError:
        return False
    # An address range opens the path for the nodes it holds: all of them, or it is no help.
    if addresses:
        return all(ipaddress.ip_address(a) in network for a in addresses)
    # Their addresses unknown, a range holding every IPv4 address Tailscale hands out holds
    # theirs (K3s runs on the nodes' IPv4 addresses).
    return isinstance(network, ipaddress.IPv4Network) and _TAILNET_V4.subnet_of(network)


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _listed(rule: dict[str, Any], key: str) -> list[Any]:
    """A rule's list field (its shape checked by ``_check_shape``)."""
    value = rule.get(key)
    return value if isinstance(value, list) else []


# The list fields of each kind of rule, as Tailscale's policy parser has them.
_LIST_FIELDS = {"acls": ("src", "dst"), "grants": ("src", "dst", "ip")}


def _check_shape(policy: dict[str, Any]) -> None:
    """Refuse what Tailscale itself would refuse to load: a rule that is not an object, or a
    list field given as anything but a list of strings (``"src": "*"``)."""
    for key, wanted in (("acls", list), ("grants", list), ("hosts", dict)):
        if key in policy and not isinstance(policy[key], wanted):
            raise PolicyError(
                "cannot check the policy",
                f"{key} is {json.dumps(policy[key])[:80]}, not "
                + ("a list" if wanted is list else "an object"),
                f"Tailscale would refuse this policy file too: mend {key}",
            )
    for key, fields in _LIST_FIELDS.items():
        for index, rule in enumerate(_rules(policy, key)):
            where = f"{key}[{index}]"
            if not isinstance(rule, dict):
                raise PolicyError(
                    "cannot check the policy",
                    f"{where} is {type(rule).__name__}, not an object",
                    "Tailscale would refuse this policy file too: mend the rule",
                )
            for field in fields:
                value = rule.get(field)
                if value is None or (
                    isinstance(value, list) and all(isinstance(v, str) for v in value)
                ):
                    continue
                suggestion = (
                    f"write {json.dumps(field)}: {json.dumps([value])}"
                    if isinstance(value, str)
                    else f"make {field} a list of strings"
                )
                raise PolicyError(
                    "cannot check the policy",
                    f"{where}.{field} is {json.dumps(value)}, not a list of strings",
                    f"Tailscale would refuse this policy file too: {suggestion}",
                )


def _rules(policy: dict[str, Any], key: str) -> list[Any]:
    rules = policy.get(key)
    return rules if isinstance(rules, list) else []


def _proto_matches(proto: Any, wanted: str) -> bool:
    if proto in (None, "", "*"):
        return True
    numbers = {"tcp": "6", "udp": "17"}
    return str(proto).lower() in (wanted, numbers[wanted])


def _acl_allows(rule: Any, path: NeededPath, hosts: dict[str, str], addresses: list[str]) -> bool:
    if not isinstance(rule, dict) or rule.get("action", "accept") != "accept":
        return False
    if not _proto_matches(rule.get("proto"), path.proto):
        return False
    if not any(_selector_matches(str(s), path.src, hosts, addresses) for s in _listed(rule, "src")):
        return False
    for dst in _listed(rule, "dst"):
        selector, _, ports = str(dst).rpartition(":")
        if (
            selector
            and _selector_matches(selector, path.dst, hosts, addresses)
            and _ports_cover(ports, path)
        ):
            return True
    return False


def _grant_allows(rule: Any, path: NeededPath, hosts: dict[str, str], addresses: list[str]) -> bool:
    if not isinstance(rule, dict):
        return False
    if not any(_selector_matches(str(s), path.src, hosts, addresses) for s in _listed(rule, "src")):
        return False
    if not any(_selector_matches(str(d), path.dst, hosts, addresses) for d in _listed(rule, "dst")):
        return False
    for capability in _listed(rule, "ip"):
        text = str(capability)
        if text == "*":
            return True
        proto, colon, ports = text.rpartition(":")
        if not colon:
            proto, ports = "", text  # a bare port list: TCP, UDP and ICMP
        if _proto_matches(proto, path.proto) and _ports_cover(ports, path):
            return True
    return False


def check_policy(
    policy: Any, paths: list[NeededPath], addresses: list[str] | None = None
) -> list[PathVerdict]:
    """Which needed paths the policy lets through. ``addresses``: the nodes' tailnet
    addresses, for rules written with IP ranges instead of tags."""
    if not isinstance(policy, dict):
        raise PolicyError("cannot check the policy", "it is not a JSON object", None)
    if "acls" not in policy and "grants" not in policy:
        # A policy without rules is Tailscale's default: everyone reaches everything.
        return [PathVerdict(path, True) for path in paths]
    _check_shape(policy)
    aliases = policy.get("hosts")
    hosts = {str(k): str(v) for k, v in aliases.items()} if isinstance(aliases, dict) else {}
    known = [a for a in addresses or [] if _is_address(a)]
    verdicts = []
    for path in paths:
        allowed = any(
            _acl_allows(rule, path, hosts, known) for rule in _rules(policy, "acls")
        ) or any(_grant_allows(rule, path, hosts, known) for rule in _rules(policy, "grants"))
        verdicts.append(PathVerdict(path, allowed))
    return verdicts
