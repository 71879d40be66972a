from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from kubani.models.entries import HostEntry
from kubani.models.inventory import build_inventory
from kubani.models.node import Node
from tests.property.strategies import bad_fields, dns_labels, node_vars, outside_v4


@given(dns_labels, node_vars(), st.sampled_from(["control-plane", "worker"]))
def test_valid_nodes_validate_and_round_trip(
    hostname: str, data: dict[str, object], role: str
) -> None:
    node = Node.model_validate({"hostname": hostname, "role": role, **data})
    again = Node.model_validate({"hostname": hostname, "role": role, **node.host_vars()})
    assert again == node


@given(dns_labels, node_vars(), bad_fields)
def test_each_bad_field_is_rejected_and_named(
    hostname: str, data: dict[str, object], bad: tuple[str, object]
) -> None:
    field, value = bad
    payload = {"hostname": hostname, "role": "worker", **data, field: value}
    with pytest.raises(ValidationError) as info:
        Node.model_validate(payload)
    assert field in {str(err["loc"][0]) for err in info.value.errors()}


@st.composite
def inventories(draw: st.DrawFn) -> list[HostEntry]:
    names = draw(st.lists(dns_labels, min_size=1, max_size=12, unique=True))
    addresses = draw(
        st.lists(st.integers(1, 2**22 - 2), min_size=len(names), max_size=len(names), unique=True)
    )
    control_planes = draw(st.integers(1, len(names)))
    entries = []
    for index, (name, number) in enumerate(zip(names, addresses, strict=True)):
        group = "control_plane" if index < control_planes else "workers"
        data = draw(node_vars())
        data["tailscale_ip"] = f"100.{64 + (number >> 16)}.{(number >> 8) & 255}.{number & 255}"
        entries.append(HostEntry(group, name, data, f"all.children.{group}.hosts.{name}"))
    return entries


@given(inventories())
@settings(max_examples=60)
def test_valid_inventories_build(entries: list[HostEntry]) -> None:
    model, problems = build_inventory({}, entries)
    assert model is not None and not problems.errors
    count = len(model.control_planes)
    assert bool(problems.warnings) == (count >= 2 and count % 2 == 0)


@given(inventories(), st.data())
@settings(max_examples=60)
def test_broken_inventories_are_caught(entries: list[HostEntry], data: st.DataObject) -> None:
    breakage = data.draw(st.sampled_from(["dup-ip", "outside", "no-cp", "dup-name"]))
    victim = entries[-1]
    if breakage == "dup-ip" and len(entries) > 1:
        variables = {**victim.variables, "tailscale_ip": entries[0].variables["tailscale_ip"]}
        entries[-1] = HostEntry(victim.group, victim.hostname, variables, victim.where)
        expected = "already the address"
    elif breakage == "dup-name":
        entries.append(
            HostEntry("workers", victim.hostname, {"tailscale_ip": "100.127.255.254"}, "x")
        )
        expected = "listed twice"
    elif breakage == "no-cp":
        entries = [HostEntry("workers", e.hostname, e.variables, e.where) for e in entries]
        expected = "no control plane"
    else:
        variables = {**victim.variables, "tailscale_ip": data.draw(outside_v4)}
        entries[-1] = HostEntry(victim.group, victim.hostname, variables, victim.where)
        expected = "outside the tailnet"
    model, problems = build_inventory({}, entries)
    assert model is None
    assert any(expected in p.message for p in problems.errors)
