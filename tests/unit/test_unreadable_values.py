"""Values PyYAML's safe constructors cannot convert (``!!int x``, a date that does not
exist): every reader says which file and line, none lets a Python error out."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from kubani.ansible.extravars import parse_extra_vars
from kubani.errors import KubaniError
from kubani.gitops.scaffold import overlay_entries
from kubani.kube.kubeconfig import parse as parse_kubeconfig
from kubani.tailscale.local import check_backend
from kubani.tailscale.parse import TailscaleError
from kubani.yamlsafe import UnreadableValueError, safe_load, safe_load_all
from tests.conftest import run_cli, snapshot

UNREADABLE = [
    ("!!int x", "!!int"),
    ("!!float y", "!!float"),
    ("!!float ''", "!!float"),
    ("!!bool maybe", "!!bool"),
    ("!!timestamp soon", "!!timestamp"),
    ("2001-02-30", "day is out of range for month"),  # no tag: YAML 1.1 reads a date
    ("2001-01-01 99:00:00", "hour must be in 0..23"),
]


@pytest.mark.parametrize(("value", "said"), UNREADABLE)
def test_an_unreadable_value_is_a_yaml_error_with_its_line(value: str, said: str) -> None:
    text = f"a: 1\nb:\n  - c: {value}\n"
    for load in (safe_load, safe_load_all):
        with pytest.raises(UnreadableValueError) as caught:
            load(text)
        assert caught.value.problem_mark is not None
        assert caught.value.problem_mark.line == 2
        assert said in str(caught.value)
        assert "quote it to keep it as text" in str(caught.value)


def test_values_that_convert_still_read_as_before() -> None:
    text = "a: !!int '7'\nb: 2001-02-28\nc: '2001-02-30'\nd: !!bool yes\ne: 1e3\n"
    assert safe_load(text) == yaml.safe_load(text)


@pytest.mark.parametrize(("value", "said"), UNREADABLE[:2] + UNREADABLE[5:6])
def test_an_inventory_with_one_is_refused_with_the_line_and_left_alone(
    tmp_path: Path, value: str, said: str
) -> None:
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(
        "all:\n  vars:\n    cluster_name: lab\n"
        f"    installed_on: {value}\n"
        "  children:\n    control_plane:\n      hosts:\n"
        "        cp-1: {tailscale_ip: 100.64.0.2}\n"
    )
    before = snapshot(tmp_path)
    for args in (("validate",), ("add-node", "w-1", "100.64.0.3"), ("config-get", "cluster_name")):
        result = run_cli("-i", inventory, *args, timeout=30)
        assert result.code == 1, result.stderr
        assert "internal error" not in result.stderr
        assert "not valid YAML at line 4" in result.stderr
        assert said in result.stderr
    assert snapshot(tmp_path) == before


def test_a_kubeconfig_with_one_is_refused() -> None:
    with pytest.raises(KubaniError, match="not valid YAML") as caught:
        parse_kubeconfig("kind: Config\nclusters: []\npreferences: {since: 2020-02-31}\n", "cfg")
    assert "day is out of range" in caught.value.line()


def test_extra_variables_with_one_are_refused(tmp_path: Path) -> None:
    variables = tmp_path / "vars.yml"
    variables.write_text("flag: !!bool perhaps\n")
    with pytest.raises(KubaniError, match="is not YAML or JSON"):
        parse_extra_vars([f"@{variables}"])
    with pytest.raises(KubaniError, match="not a JSON or YAML object"):
        parse_extra_vars(["{a: !!int x}"])


@pytest.mark.parametrize(
    "text",
    ["resources: [", "- a\n- b\n", "resources: 5\n", "resources: [!!int x]\n"],
)
def test_an_apps_overlay_that_is_not_a_kustomization_is_refused(text: str) -> None:
    with pytest.raises(KubaniError, match=r"cannot read apps/overlays/default/kustomization\.yaml"):
        overlay_entries(text)


def test_an_empty_apps_overlay_lists_nothing() -> None:
    assert overlay_entries("") == []
    assert overlay_entries("resources:\n") == []


@pytest.mark.parametrize("state", [["Running"], {"a": 1}, 3, None])
def test_a_backend_state_that_is_not_text_is_an_unknown_state(state: object) -> None:
    with pytest.raises(TailscaleError, match="its state is unknown"):
        check_backend({"BackendState": state})


def test_adding_to_an_inventory_with_only_comments_keeps_them(tmp_path: Path) -> None:
    inventory = tmp_path / "hosts.yml"
    inventory.write_text("---\n# the cluster in the cupboard\n")
    result = run_cli(
        "-i", inventory, "add-node", "cp-1", "100.64.0.2", "--role", "control-plane", timeout=30
    )
    assert result.code == 0, result.stderr
    text = inventory.read_text()
    assert text.startswith("---\n# the cluster in the cupboard\n")
    assert yaml.safe_load(text) == {
        "all": {"children": {"control_plane": {"hosts": {"cp-1": {"tailscale_ip": "100.64.0.2"}}}}}
    }
