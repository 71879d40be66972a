"""Which kind of value each setting declares (models, then the roles' argument specs)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubani.ansible.project import ansible_dir
from kubani.ansible.specs import role_variable_kinds
from kubani.errors import KubaniError
from kubani.models.declared import declared_kind
from kubani.operations.settings import read_value
from kubani.vocabulary import ValueKind


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        (["gpu_time_slicing_replicas"], ValueKind.INT),
        (["gpu"], ValueKind.BOOL),
        (["ansible_port"], ValueKind.INT),  # Optional[Annotated[StrictInt, ...]]
        (["tailscale_ip"], ValueKind.STRING),  # an address: text on the line
        (["role"], ValueKind.STRING),
        (["cluster_name"], ValueKind.STRING),
        (["tailscale_network"], ValueKind.STRING),
        (["node_labels"], ValueKind.JSON),
        (["node_labels", "topology.kubernetes.io/zone"], ValueKind.STRING),
        (["node_taints"], ValueKind.JSON),
        (["workstation_guard"], ValueKind.JSON),
        (["workstation_guard", "idle_after"], ValueKind.INT),
        (["workstation_guard", "evict_gpu"], ValueKind.BOOL),
        (["workstation_guard", "quiet_hours"], ValueKind.JSON),
    ],
)
def test_models_declare_kinds(path: list[str], kind: ValueKind) -> None:
    assert declared_kind(path) is kind


@pytest.mark.parametrize(
    "path", [["my_own"], ["workstation_guard", "nothing"], ["gpu", "below"], ["role", "x"]]
)
def test_unknown_paths_declare_nothing(path: list[str]) -> None:
    assert declared_kind(path) is None


def test_every_role_spec_type_is_read() -> None:
    kinds = role_variable_kinds(ansible_dir())
    assert kinds["prerequisites_firewall"] is ValueKind.BOOL
    assert kinds["prerequisites_connect_timeout"] is ValueKind.INT
    assert kinds["prerequisites_node_ports"] is ValueKind.JSON
    assert kinds["prerequisites_tailscale_bin"] is ValueKind.STRING
    assert set(kinds.values()) == set(ValueKind)


def _role(folder: Path, name: str, text: str) -> None:
    meta = folder / "roles" / name / "meta"
    meta.mkdir(parents=True)
    (meta / "argument_specs.yml").write_text(text)


def test_a_variable_two_roles_disagree_on_is_left_out(tmp_path: Path) -> None:
    _role(
        tmp_path,
        "a",
        "argument_specs:\n  main:\n    options:\n      shared: {type: int}\n"
        "      only_a: {type: bool}\n",
    )
    _role(
        tmp_path,
        "b",
        "argument_specs:\n  main:\n    options:\n      shared: {type: str}\n"
        "  other:\n    options:\n      only_b: {}\n",
    )
    _role(tmp_path, "c", "argument_specs: [not, a, mapping]\n")
    assert role_variable_kinds(tmp_path) == {
        "only_a": ValueKind.BOOL,
        "only_b": ValueKind.STRING,
    }


def test_an_unreadable_spec_names_its_file(tmp_path: Path) -> None:
    _role(tmp_path, "broken", "argument_specs: {main: [\n")
    with pytest.raises(KubaniError) as caught:
        role_variable_kinds(tmp_path)
    assert "broken/meta/argument_specs.yml" in caught.value.what
    assert caught.value.fix and "--type" in caught.value.fix


def test_a_spec_that_is_a_device_is_refused_not_read(tmp_path: Path) -> None:
    meta = tmp_path / "roles" / "odd" / "meta"
    meta.mkdir(parents=True)
    (meta / "argument_specs.yml").symlink_to("/dev/zero")
    with pytest.raises(KubaniError) as caught:
        role_variable_kinds(tmp_path)
    assert "odd/meta/argument_specs.yml" in caught.value.what


@pytest.mark.parametrize(
    ("raw", "kind", "expected"),
    [
        ("8", ValueKind.INT, 8),
        (" 8 ", ValueKind.INT, 8),
        ("Yes", ValueKind.BOOL, True),
        ("off", ValueKind.BOOL, False),
        ("T", ValueKind.BOOL, True),  # as Ansible's bool filter reads it
        ("n", ValueKind.BOOL, False),
        ("08", ValueKind.STRING, "08"),
        ('{"a": 1}', ValueKind.JSON, {"a": 1}),
    ],
)
def test_read_value_as_told(raw: str, kind: ValueKind, expected: object) -> None:
    assert read_value(raw, kind, "k") == expected


def test_read_value_as_declared_says_so_when_it_cannot(tmp_path: Path) -> None:
    assert read_value("8", None, "gpu_time_slicing_replicas", near=tmp_path) == 8
    assert read_value("8", None, "no_one_declares_me", near=tmp_path) == "8"
    with pytest.raises(KubaniError) as caught:
        read_value("many", None, "gpu_time_slicing_replicas", near=tmp_path)
    assert "declared int" in caught.value.why
    assert caught.value.fix and "--type" in caught.value.fix
    with pytest.raises(KubaniError) as told:
        read_value("many", ValueKind.INT, "gpu_time_slicing_replicas")
    assert "declared" not in told.value.why
