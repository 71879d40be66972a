"""Inputs nested deeper than Python's parsers can recurse (``[[[[...]]]]`` thousands of
levels, from a hostile file or a broken reply): each gets a clear error, never a
RecursionError, and nothing changes on disk."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from kubani import jsonsafe
from kubani.yamlsafe import NestedTooDeeplyError, safe_load, safe_load_all
from tests.conftest import run_cli, snapshot

ROOT = Path(__file__).resolve().parents[2]


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def test_json_too_deep_is_a_decode_error_at_its_deepest_point() -> None:
    text = '{"a": "[[[ in a string", "b": ' + nested(100_000) + "}"
    with pytest.raises(json.JSONDecodeError) as caught:
        jsonsafe.loads(text)
    assert isinstance(caught.value, jsonsafe.NestedTooDeeplyError)
    assert "100,001 levels" in caught.value.msg  # the outer object is one
    # The strings' brackets do not count: the deepest bracket is the last opening one.
    assert caught.value.pos == text.index("]") - 1
    assert jsonsafe.loads(b'{"a": [[1]]}') == {"a": [[1]]}


def test_yaml_too_deep_is_a_yaml_error_with_its_place() -> None:
    text = "a: 1\nb: " + nested(5_000) + "\n"
    for load in (safe_load, safe_load_all):
        with pytest.raises(NestedTooDeeplyError) as caught:
            load(text)
        assert caught.value.problem_mark is not None
        assert caught.value.problem_mark.line == 1
    assert safe_load("a: " + nested(50)) == {"a": json.loads(nested(50))}


def test_a_saved_tailnet_status_nested_too_deeply_is_refused(tmp_path: Path) -> None:
    status = tmp_path / "status.json"
    status.write_text('{"Peer": ' + '{"a": ' * 100_000 + "1" + "}" * 100_001)
    result = run_cli("discover", "--status-file", status, "--json")
    assert result.code == 1
    assert "internal error" not in result.stderr
    assert "nested too deeply" in result.stderr and result.stdout == ""


INVENTORY = (
    "all:\n  vars:\n    deep: {deep}\n  children:\n    control_plane:\n      hosts:\n"
    "        cp-1: {{tailscale_ip: 100.64.0.2}}\n"
)


@pytest.mark.parametrize(
    ("held", "args", "said"),
    [
        # Values PyYAML's C reader takes but the comment-keeping editor cannot follow.
        (300, ("config-set", "reserved_cpu", "1", "--scope", "cp-1"), "nested too deeply"),
        (300, ("add-node", "w-1", "100.64.0.3"), "nested too deeply"),
        # A value too deep to write back.
        (1, ("config-set", "x", nested(400), "--type", "json"), "nested too deeply"),
        # A value too deep for the JSON reader.
        (1, ("config-set", "x", nested(5_000), "--type", "json"), "not JSON: nested too deeply"),
    ],
)
def test_inventory_edits_too_deep_are_refused_and_change_nothing(
    tmp_path: Path, held: int, args: tuple[str, ...], said: str
) -> None:
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(INVENTORY.format(deep=nested(held)))
    before = snapshot(tmp_path)
    result = run_cli("-i", inventory, *args)
    assert result.code == 1, result.stderr
    assert "internal error" not in result.stderr
    assert said in result.stderr
    assert snapshot(tmp_path) == before


def test_a_manifest_nested_too_deeply_is_a_finding(tmp_path: Path) -> None:
    tree = tmp_path / "repo" / "gitops"
    shutil.copytree(ROOT / "gitops", tree)
    app = tree / "apps/base/nginx"
    (app / "deep.yaml").write_text(
        f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: deep\ndata:\n  a: {nested(2_000)}\n"
    )
    kustomization = app / "kustomization.yaml"
    kustomization.write_text(
        kustomization.read_text().replace("resources:\n", "resources:\n  - deep.yaml\n")
    )
    result = run_cli("gitops", "validate", "--path", tree, "--json")
    assert result.code == 1, result.stderr
    assert "internal error" not in result.stderr
    problems = result.json()["problems"]
    mine = [p for p in problems if p["file"] == "gitops/apps/base/nginx/deep.yaml"]
    assert mine and "nested too deeply" in mine[0]["message"]


def test_a_schema_error_quotes_a_long_value_shortened(tmp_path: Path) -> None:
    tree = tmp_path / "repo" / "gitops"
    shutil.copytree(ROOT / "gitops", tree)
    app = tree / "apps/base/nginx"
    (app / "long.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: long\n"
        f"data:\n  a: [{', '.join(['x'] * 2_000)}]\n"
    )
    kustomization = app / "kustomization.yaml"
    kustomization.write_text(
        kustomization.read_text().replace("resources:\n", "resources:\n  - long.yaml\n")
    )
    result = run_cli("gitops", "validate", "--path", tree, "--json")
    [problem] = result.json()["problems"]
    assert problem["message"].startswith("data.a: ['x', 'x'")
    assert problem["message"].endswith("is not of type 'string', 'null'")
    assert len(problem["message"]) <= 300


def test_a_kubeconfig_nested_too_deeply_is_named_as_such(tmp_path: Path) -> None:
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(INVENTORY.format(deep=1))
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text(f"apiVersion: v1\nkind: Config\nclusters: {nested(2_000)}\n")
    result = run_cli("-i", inventory, "status", "--kubeconfig", kubeconfig, "--json")
    assert "internal error" not in result.stderr
    assert "nested too deeply" in result.json()["api_error"]
