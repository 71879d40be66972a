"""Validation errors read as the user wrote the inventory, never as pydantic names them."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import run_cli

BAD = """\
all:
  vars:
    k3s_version: 5
  children:
    control_plane:
      hosts:
        cp-1:
          tailscale_ip: 100.64.0.1
    workers:
      hosts:
        w-1:
          tailscale_ip: [1, 2]
          gpu: maybe
          node_labels: 5
          node_taints: {x: 1}
"""


@pytest.fixture
def problems(tmp_path: Path) -> list[str]:
    path = tmp_path / "hosts.yml"
    path.write_text(BAD)
    result = run_cli("-i", path, "validate")
    assert result.code == 1
    return [line for line in result.stdout.splitlines() if line.startswith("error: ")]


def test_no_pydantic_internals_reach_the_user(problems: list[str]) -> None:
    text = "\n".join(problems)
    for internal in ("lax-or-strict", "function-after", "json-or-python", "is-instance",
                     "Input should be", "Value error,", "[type="):  # fmt: skip
        assert internal not in text


def test_each_field_is_one_line_saying_what_was_expected_and_given(problems: list[str]) -> None:
    hosts = "all.children.workers.hosts.w-1"
    assert problems == [
        "error: all.vars.k3s_version: expected text, got 5",
        f"error: {hosts}.tailscale_ip: expected an IPv4 address or an IPv6 address, got [1, 2]",
        f"error: {hosts}.gpu: expected true or false, got 'maybe'",
        f"error: {hosts}.node_labels: expected a mapping (key: value), got 5",
        f"error: {hosts}.node_taints: expected a list, got {{'x': 1}}",
    ]
