"""K3s configuration: ``/etc/rancher/k3s/config.yaml`` plus ``config.yaml.d/*.yaml`` and flags.

Keys are the long flag names. Drop-ins are read in name order after the main file; a key
ending in ``+`` appends to a list instead of replacing it. Flags given on the command line
win over the files, as in K3s.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

CONFIG = Path("/etc/rancher/k3s/config.yaml")
LISTS = frozenset(
    {
        "node-label",
        "node-taint",
        "kubelet-arg",
        "tls-san",
        "disable",
        "kube-apiserver-arg",
        "kube-controller-manager-arg",
        "kube-scheduler-arg",
        "kube-proxy-arg",
        "node-ip",
        "node-external-ip",
        "etcd-arg",
    }
)


class ConfigError(ValueError):
    pass


def _merge(target: dict[str, Any], source: dict[str, Any], origin: str) -> None:
    for raw_key, value in source.items():
        key = str(raw_key)
        append = key.endswith("+")
        key = key.rstrip("+")
        if key in LISTS:
            items = value if isinstance(value, list) else [value]
            if key in ("node-ip", "node-external-ip"):
                items = [part for item in items for part in str(item).split(",")]
            target[key] = [*(target.get(key) or []), *items] if append else list(items)
        elif append:
            raise ConfigError(f"{origin}: {key}+ is only allowed on list options")
        else:
            target[key] = value


def read_config(path: Path = CONFIG, flags: list[str] | None = None) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    files = [path] if path.exists() else []
    drop_ins = path.with_name(path.name + ".d")
    if drop_ins.is_dir():
        files += sorted(p for p in drop_ins.iterdir() if p.suffix in (".yaml", ".yml"))
    for file in files:
        try:
            data = yaml.safe_load(file.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{file}: {exc}") from exc
        if not isinstance(data, dict):
            raise ConfigError(f"{file}: the top level must be a mapping")
        _merge(merged, data, str(file))
    _merge(merged, parse_flags(flags or []), "command line")
    return merged


def parse_flags(flags: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    index = 0
    while index < len(flags):
        flag = flags[index]
        if not flag.startswith("--"):
            raise ConfigError(f"unexpected argument {flag!r}")
        name, equals, value = flag[2:].partition("=")
        if not equals:
            following = flags[index + 1] if index + 1 < len(flags) else None
            if following is not None and not following.startswith("--"):
                value, index = following, index + 1
            else:
                value = "true"
        parsed: Any = {"true": True, "false": False}.get(value, value)
        if name in LISTS:
            out.setdefault(name, []).append(parsed)
        else:
            out[name] = parsed
        index += 1
    return out


def arg_pairs(items: Iterable[object]) -> dict[str, str]:
    """A K3s ``*-arg`` list as a mapping: ``a=b=c`` (or ``--a=b=c``) -> {a: b=c}."""
    out = {}
    for item in items:
        key, _, value = str(item).lstrip("-").partition("=")
        out[key] = value
    return out


def kubelet_args(config: dict[str, Any]) -> dict[str, str]:
    return arg_pairs(config.get("kubelet-arg") or [])


def controller_args(config: dict[str, Any]) -> dict[str, str]:
    return arg_pairs(config.get("kube-controller-manager-arg") or [])


def duration_seconds(text: str | None, default: float) -> float:
    """A Go duration (``10s``, ``1m0s``, ``500ms``) in seconds; ``default`` when unset or
    not a duration."""
    if not text:
        return default
    total, number = 0.0, ""
    units = {"h": 3600.0, "m": 60.0, "s": 1.0}
    index = 0
    while index < len(text):
        char = text[index]
        if char.isdigit() or char == ".":
            number += char
        elif text.startswith("ms", index):
            total += float(number or 0) / 1000
            number, index = "", index + 1
        elif char in units:
            total += float(number or 0) * units[char]
            number = ""
        else:
            return default
        index += 1
    return total or default
