"""A cluster node as the inventory describes it."""

from __future__ import annotations

import ipaddress
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    field_validator,
    model_validator,
)

from kubani.models.addresses import IPAddress, parse_address
from kubani.models.names import dns_label, dns_subdomain, label_key, label_value
from kubani.quantity import cpu_quantity, memory_quantity
from kubani.vocabulary import Role

TaintEffect = Literal["NoSchedule", "PreferNoSchedule", "NoExecute"]
TAINT_EFFECTS: tuple[str, ...] = ("NoSchedule", "PreferNoSchedule", "NoExecute")


def _address_before(value: object) -> object:
    try:
        return parse_address(value)
    except (ValueError, TypeError):
        return value  # pydantic's own validation says why


def _label_text(value: object) -> object:
    # YAML turns `gpu: true` or `zone: 1` into bool/int; Kubernetes wants the text.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


LabelValue = Annotated[str, BeforeValidator(_label_text)]


class NodeTaint(BaseModel):
    """A taint as K3s's ``node-taint`` takes it: ``key[=value]:Effect``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    key: str
    value: str = ""
    effect: TaintEffect

    @field_validator("key")
    @classmethod
    def _key(cls, key: str) -> str:
        return label_key(key)

    @field_validator("value", mode="before")
    @classmethod
    def _value(cls, value: object) -> object:
        value = _label_text(value)
        return label_value(value) if isinstance(value, str) else value

    @classmethod
    def parse(cls, text: str) -> NodeTaint:
        """Parse ``key=value:Effect`` or ``key:Effect``."""
        body, colon, effect = text.strip().rpartition(":")
        if not colon or not body:
            raise ValueError(
                f"taint {text!r} must look like key=value:Effect "
                f"(Effect one of {', '.join(TAINT_EFFECTS)})"
            )
        key, _, value = body.partition("=")
        if effect not in TAINT_EFFECTS:
            raise ValueError(
                f"taint {text!r}: effect {effect!r} must be one of {', '.join(TAINT_EFFECTS)}"
            )
        return cls.model_validate({"key": key, "value": value, "effect": effect})

    def __str__(self) -> str:
        value = f"={self.value}" if self.value else ""
        return f"{self.key}{value}:{self.effect}"


def _host_or_ip(value: str) -> str:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        try:
            dns_subdomain(value.lower())
        except ValueError:
            raise ValueError(f"{value!r} is neither an IP address nor a DNS name") from None
    return value


_QUIET_WINDOW = r"^([01]?\d|2[0-3]):[0-5]\d-([01]?\d|2[0-3]):[0-5]\d$"


class WorkstationGuard(BaseModel):
    """A workstation's guard (the workstation_guard role): when the cluster steps aside."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    idle_after: Annotated[StrictInt, Field(ge=0)] = 600
    poll: Annotated[StrictInt, Field(ge=1)] = 10
    evict_gpu: StrictBool = False
    watch_gpu: StrictBool | None = None
    quiet_hours: list[Annotated[str, Field(pattern=_QUIET_WINDOW)]] = Field(default_factory=list)
    ignore_users: list[str] = Field(default_factory=list)


class Node(BaseModel):
    """One machine of the cluster. Only hostname, tailscale_ip and role are required."""

    model_config = ConfigDict(extra="allow", frozen=True)

    hostname: str
    tailscale_ip: Annotated[IPAddress, BeforeValidator(_address_before)]
    role: Role
    ansible_host: str | None = None
    ansible_user: str | None = None
    ansible_port: Annotated[StrictInt, Field(ge=1, le=65535)] | None = None
    reserved_cpu: str | None = None
    reserved_memory: str | None = None
    gpu: StrictBool = False
    node_labels: dict[str, LabelValue] = Field(default_factory=dict)
    node_taints: list[NodeTaint] = Field(default_factory=list)
    workstation_guard: WorkstationGuard | None = None

    @field_validator("hostname")
    @classmethod
    def _hostname(cls, value: str) -> str:
        return dns_label(value)

    @field_validator("tailscale_ip")
    @classmethod
    def _tailnet_v4(cls, value: IPAddress) -> IPAddress:
        if value.version == 6:
            raise ValueError(
                f"{value} is an IPv6 address; K3s runs on the nodes' tailnet IPv4 addresses "
                "(its pod and service ranges are IPv4), so give the node's 100.x address "
                "(`tailscale ip -4` on it)"
            )
        return value

    @field_validator("ansible_host")
    @classmethod
    def _ansible_host(cls, value: str | None) -> str | None:
        return None if value is None else _host_or_ip(value)

    @field_validator("reserved_cpu", mode="before")
    @classmethod
    def _cpu(cls, value: Any) -> str | None:
        return None if value is None else cpu_quantity(value)

    @field_validator("reserved_memory", mode="before")
    @classmethod
    def _memory(cls, value: Any) -> str | None:
        return None if value is None else memory_quantity(value)

    @field_validator("node_labels")
    @classmethod
    def _labels(cls, labels: dict[str, str]) -> dict[str, str]:
        for key, value in labels.items():
            label_key(key)
            label_value(value)
        return labels

    @field_validator("node_taints", mode="before")
    @classmethod
    def _taints(cls, value: object) -> object:
        if isinstance(value, list):
            return [NodeTaint.parse(item) if isinstance(item, str) else item for item in value]
        return value

    @model_validator(mode="after")
    def _unique_taints(self) -> Node:
        seen: set[tuple[str, str]] = set()
        for taint in self.node_taints:
            if (taint.key, taint.effect) in seen:
                raise ValueError(
                    f"node_taints: {taint.key}:{taint.effect} is given twice "
                    "(Kubernetes keeps one taint per key and effect)"
                )
            seen.add((taint.key, taint.effect))
        return self

    @property
    def connect_host(self) -> str:
        """Where Ansible connects: ``ansible_host`` or else the Tailscale address."""
        return self.ansible_host or str(self.tailscale_ip)

    def host_vars(self) -> dict[str, Any]:
        """The node as inventory host variables (role is the group, not a variable)."""
        out: dict[str, Any] = {"tailscale_ip": str(self.tailscale_ip)}
        if self.ansible_host is not None:
            out["ansible_host"] = self.ansible_host
        for key in ("ansible_user", "ansible_port", "reserved_cpu", "reserved_memory"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        if self.gpu:
            out["gpu"] = True
        if self.node_labels:
            out["node_labels"] = dict(self.node_labels)
        if self.node_taints:
            out["node_taints"] = [str(taint) for taint in self.node_taints]
        if self.workstation_guard is not None:
            out["workstation_guard"] = self.workstation_guard.model_dump(exclude_defaults=True)
        return out
