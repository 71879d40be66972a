"""Every tailnet device gets a node name Kubernetes and Ansible accept, whatever it calls
itself (desktops, Windows machines, fresh installs still called localhost)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kubani.errors import KubaniError
from kubani.inventory.initial import Choice, build_nodes
from kubani.models.names import is_dns_label, label_from
from kubani.models.peer import TailscalePeer
from kubani.operations.init import Selection, choose
from kubani.vocabulary import Role


def peer(hostname: str, dns_name: str = "", ip: str = "100.64.0.2") -> TailscalePeer:
    return TailscalePeer(hostname, dns_name, (ip,), ip, "linux", True, None)


@pytest.mark.parametrize(
    ("hostname", "dns_name", "name"),
    [
        ("nuc", "nuc.tail1.ts.net.", "nuc"),
        ("GPU-Box", "", "gpu-box"),
        ("Bob's MacBook Pro", "bobs-macbook-pro.tail1.ts.net.", "bobs-macbook-pro"),
        ("DESKTOP-ÜBER_1", "", "desktop-ber-1"),
        ("localhost", "localhost-2.tail1.ts.net.", "localhost-2"),
        ("localhost", "", "localhost"),
        ("x" * 70, "", "x" * 63),
        ("ÜÜÜ", "", None),
    ],
)
def test_a_device_s_node_name(hostname: str, dns_name: str, name: str | None) -> None:
    assert peer(hostname, dns_name).node_name == name


@given(st.text(max_size=80))
def test_label_from_gives_a_label_or_nothing(text: str) -> None:
    label = label_from(text)
    assert label is None or is_dns_label(label)


def test_init_takes_any_of_a_device_s_names_and_writes_a_valid_one() -> None:
    peers = [
        peer("Bob's MacBook Pro", "bobs-macbook-pro.tail1.ts.net.", "100.64.0.2"),
        peer("DESKTOP-ÜBER_1", "", "100.64.0.3"),
    ]
    for name in ("Bob's MacBook Pro", "bobs-macbook-pro"):
        selection = Selection([name], ["desktop-ber-1"], gpus=["DESKTOP-ÜBER_1"])
        chosen = choose(peers, selection)
        assert [c.gpu for c in chosen] == [False, True]
        nodes = build_nodes(chosen, None)
        assert [(n.hostname, str(n.tailscale_ip)) for n in nodes] == [
            ("bobs-macbook-pro", "100.64.0.2"),
            ("desktop-ber-1", "100.64.0.3"),
        ]


def test_a_device_with_no_usable_name_is_refused_with_the_fix(tmp_path: Path) -> None:
    with pytest.raises(KubaniError, match="tailscale set --hostname"):
        build_nodes([Choice(peer("ÜÜÜ"), Role.CONTROL_PLANE)], None)
