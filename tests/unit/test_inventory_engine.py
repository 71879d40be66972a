from __future__ import annotations

import copy
import stat
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from kubani.errors import KubaniError
from kubani.inventory.document import InventoryDocument, InventoryFormatError
from kubani.inventory.paths import parse_key_path
from kubani.inventory.store import InventoryInvalid, atomic_write, edit_inventory
from tests.conftest import snapshot


def _comments(text: str) -> list[str]:
    return [line.split("#", 1)[1].strip() for line in text.splitlines() if "#" in line]


def _parsed(path: Path) -> Any:
    return YAML(typ="safe").load(path.read_text())


def test_precedence_follows_ansible(inventory: Path) -> None:
    doc = InventoryDocument(inventory)
    assert doc.get("reserved_cpu", "cp-1") == "250m"  # children.control_plane.vars
    assert doc.get("reserved_cpu", "w-1") == "500m"  # group_vars/workers.yml
    assert doc.get("reserved_cpu", "workers") == "500m"
    assert doc.get("git_repo_url") == "https://github.com/example/homelab.git"
    assert doc.get("unrelated_setting.nested") == [1, 2, 3]
    assert doc.get("node_labels[kubani.io/tier]", "cp-1") == "core"
    with pytest.raises(KubaniError, match="not set"):
        doc.get("reserved_memory", "cp-1")
    with pytest.raises(KubaniError, match="unknown scope"):
        doc.get("cluster_name", "nope")


def test_effective_model(inventory: Path) -> None:
    model, problems = InventoryDocument(inventory).validate()
    assert model is not None and not problems.errors
    assert [n.hostname for n in model.control_planes] == ["cp-1", "cp-2", "cp-3"]
    gpu = model.node("gpu-1")
    assert gpu is not None and gpu.gpu and gpu.reserved_cpu == "500m"
    assert model.cluster.cluster_name == "testlab"
    assert model.cluster.git_repo_url == "https://github.com/example/homelab.git"
    assert "grafana-box" not in model.hostnames()


@pytest.mark.parametrize("group", ["control_plane", "workers"])
def test_add_then_remove_restores_the_file(inventory: Path, group: str) -> None:
    before = inventory.read_bytes()
    with edit_inventory(inventory, "add") as doc:
        doc.add_host(group, "new-1", {"tailscale_ip": "100.64.0.99", "node_labels": {"a": "b"}})
    middle = inventory.read_text()
    assert "new-1:" in middle
    assert _comments(middle) == _comments(before.decode())
    with edit_inventory(inventory, "remove") as doc:
        doc.remove_host("new-1")
    assert inventory.read_bytes() == before


@pytest.mark.parametrize("hostname", ["cp-1", "cp-3", "w-1", "gpu-1"])
def test_removing_any_host_keeps_every_comment(inventory: Path, hostname: str) -> None:
    before = inventory.read_text()
    with edit_inventory(inventory, "remove") as doc:
        doc.remove_host(hostname)
    after = inventory.read_text()
    own_eol = {"its tailnet address"} if hostname == "cp-1" else set()
    assert sorted(set(_comments(before)) - own_eol) == sorted(set(_comments(after)))
    assert f"{hostname}:" not in after
    expected = _parsed(Path(inventory.with_suffix(".yml.bak")))
    assert expected is not None


def test_emptying_a_group_writes_valid_yaml_and_adding_back_works(inventory: Path) -> None:
    with edit_inventory(inventory, "remove") as doc:
        doc.remove_host("w-1")
    with edit_inventory(inventory, "remove") as doc:
        doc.remove_host("gpu-1")
    data = _parsed(inventory)
    assert isinstance(data, dict)
    assert data["all"]["children"]["workers"]["hosts"] is None
    assert "# a gpu box" in inventory.read_text()
    with edit_inventory(inventory, "add") as doc:
        doc.add_host("workers", "w-9", {"tailscale_ip": "100.64.0.29"})
    assert _parsed(inventory)["all"]["children"]["workers"]["hosts"] == {
        "w-9": {"tailscale_ip": "100.64.0.29"}
    }
    assert inventory.read_text().index("w-9:") < inventory.read_text().index("# an unrelated")


def test_add_creates_missing_groups(tmp_path: Path) -> None:
    path = tmp_path / "hosts.yml"
    path.write_text(
        "all:\n  children:\n    control_plane:\n      hosts:\n        cp:\n"
        "          tailscale_ip: 100.64.0.1\n"
    )
    with edit_inventory(path, "add") as doc:
        doc.add_host("workers", "w", {"tailscale_ip": "100.64.0.2"})
    assert _parsed(path)["all"]["children"]["workers"]["hosts"]["w"]


def test_invalid_result_writes_nothing(inventory: Path) -> None:
    before = snapshot(inventory.parent)
    with (
        pytest.raises(InventoryInvalid, match="already the address"),
        edit_inventory(inventory, "add") as doc,
    ):
        doc.add_host("workers", "dup", {"tailscale_ip": "100.64.0.20"})
    with (
        pytest.raises(InventoryInvalid, match="no control plane"),
        edit_inventory(inventory, "rm") as doc,
    ):
        for name in ("cp-1", "cp-2", "cp-3"):
            doc.remove_host(name)
    assert snapshot(inventory.parent) == before


def test_edits_leave_the_data_they_were_made_from_as_it_was(inventory: Path) -> None:
    # Edits copy only the mappings on their path; what they read before stays intact (a
    # caller holding it, or a refused edit, must not see half a change).
    doc = InventoryDocument(inventory)
    for edit in (
        lambda: doc.add_host("workers", "w-9", {"tailscale_ip": "100.64.0.99"}),
        lambda: doc.remove_host("w-1"),
        lambda: doc.set("node_labels[zone]", "attic", "w-9"),
        lambda: doc.set("flux.interval", "5m"),
    ):
        before = doc.hosts.data
        kept = copy.deepcopy(before)
        edit()
        assert before == kept
        assert doc.hosts.data != kept


def test_set_writes_where_the_scope_defines_the_key(inventory: Path) -> None:
    with edit_inventory(inventory, "set") as doc:
        assert doc.set("git_branch", "prod").name == "all.yml"
        assert doc.set("k3s_version", "v1.32.1+k3s1").name == "hosts.yml"
        assert doc.set("reserved_cpu", "1", "workers").name == "workers.yml"
        assert (
            doc.set("node_labels[topology.kubernetes.io/zone]", "attic", "w-1").name == "hosts.yml"
        )
        assert doc.set("flux.interval", "5m").name == "hosts.yml"
    doc = InventoryDocument(inventory)
    assert doc.get("git_branch") == "prod"
    assert doc.get("reserved_cpu", "gpu-1") == "1"
    assert doc.get("node_labels", "w-1") == {"topology.kubernetes.io/zone": "attic"}
    assert doc.get("flux.interval") == "5m"
    text = (inventory.parent / "group_vars/all.yml").read_text()
    assert "# the GitOps repo" in text


def test_set_refuses_structural_and_non_mapping_paths(inventory: Path) -> None:
    with (
        pytest.raises(KubaniError, match="place in the inventory"),
        edit_inventory(inventory, "set") as doc,
    ):
        doc.set("role", "worker", "cp-1")
    with pytest.raises(KubaniError, match="not a mapping"), edit_inventory(inventory, "set") as doc:
        doc.set("cluster_name.x", "y")


def test_overrides_are_reported(inventory: Path) -> None:
    with edit_inventory(inventory, "set") as doc:
        doc.set("reserved_cpu", "2", "all")
        assert sorted(doc.overridden_below("reserved_cpu", "all", "2")) == [
            "cp-1",
            "cp-2",
            "cp-3",
            "gpu-1",
            "w-1",
        ]


def test_key_paths() -> None:
    assert parse_key_path("a.b.c") == ["a", "b", "c"]
    assert parse_key_path("node_labels[kubernetes.io/arch]") == [
        "node_labels",
        "kubernetes.io/arch",
    ]
    assert parse_key_path("a[b.c].d") == ["a", "b.c", "d"]
    for bad in ("", "a..b", "a[", "a.]"):
        with pytest.raises(KubaniError):
            parse_key_path(bad)


def test_atomic_write_keeps_mode_and_backup(tmp_path: Path) -> None:
    path = tmp_path / "hosts.yml"
    atomic_write(path, b"one\n")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    path.chmod(0o640)
    atomic_write(path, b"two\n")
    assert path.read_bytes() == b"two\n"
    assert (tmp_path / "hosts.yml.bak").read_bytes() == b"one\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hosts.yml", "hosts.yml.bak"]


def test_writes_go_through_symlinks_and_keep_them(tmp_path: Path) -> None:
    dotfiles = tmp_path / "dotfiles"
    dotfiles.mkdir()
    real = dotfiles / "hosts.yml"
    real.write_bytes(b"one\n")
    work = tmp_path / "work"
    work.mkdir()
    link = work / "hosts.yml"
    link.symlink_to(real)
    atomic_write(link, b"two\n")
    assert link.is_symlink() and link.resolve() == real
    assert real.read_bytes() == b"two\n"
    backup = dotfiles / "hosts.yml.bak"
    assert backup.read_bytes() == b"one\n" and not backup.is_symlink()
    assert sorted(p.name for p in work.iterdir()) == ["hosts.yml"]
    # A chain of links, and a link whose file does not exist yet: the file is made there.
    chained = work / "chained.yml"
    chained.symlink_to(link)
    atomic_write(chained, b"three\n")
    assert real.read_bytes() == b"three\n" and chained.is_symlink()
    dangling = work / "new.yml"
    dangling.symlink_to(dotfiles / "new.yml")
    atomic_write(dangling, b"new\n")
    assert (dotfiles / "new.yml").read_bytes() == b"new\n" and dangling.is_symlink()


def test_a_read_only_file_is_refused_not_replaced(tmp_path: Path) -> None:
    path = tmp_path / "hosts.yml"
    path.write_bytes(b"keep\n")
    path.chmod(0o444)
    with pytest.raises(KubaniError) as refused:
        atomic_write(path, b"new\n")
    assert "read-only (mode 0444)" in str(refused.value)
    assert "chmod u+w" in str(refused.value)
    assert path.read_bytes() == b"keep\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hosts.yml"]
    with pytest.raises(KubaniError, match="it is a folder"):
        atomic_write(tmp_path, b"x")


def test_config_set_edits_the_linked_inventory(inventory: Path, tmp_path: Path) -> None:
    from tests.conftest import run_cli

    private = tmp_path / "private"
    private.mkdir()
    real = private / "hosts.yml"
    real.write_bytes(inventory.read_bytes())
    inventory.unlink()
    inventory.symlink_to(real)
    result = run_cli("-i", inventory, "config-set", "cluster_name", "linked")
    assert result.code == 0, result.stderr
    assert inventory.is_symlink()
    assert "cluster_name: linked" in real.read_text()
    real.chmod(0o444)
    refused = run_cli("-i", inventory, "config-set", "cluster_name", "again")
    assert refused.code == 1
    assert "read-only" in refused.stderr and "Traceback" not in refused.stderr
    assert "cluster_name: linked" in real.read_text()


def test_stale_temp_files_are_cleaned_under_the_lock(inventory: Path) -> None:
    stale = inventory.parent / ".hosts.yml.abc123.tmp"
    stale.write_text("half a file")
    with edit_inventory(inventory, "set") as doc:
        doc.set("git_branch", "x")
    assert not stale.exists()


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("all: [1, 2\n", "not valid YAML at line"),
        ("- a\n- b\n", "not a mapping"),
        ("all:\n  children:\n    workers:\n      hosts: [a]\n", "must be a mapping"),
        ("all: {}\n---\nother: {}\n", "more than one YAML document .another starts at line 2"),
    ],
)
def test_malformed_files_are_reported(tmp_path: Path, content: str, fragment: str) -> None:
    path = tmp_path / "hosts.yml"
    path.write_text(content)
    with pytest.raises(InventoryFormatError, match=fragment):
        InventoryDocument(path)


@pytest.mark.parametrize(
    "text",
    [
        "all:\n    children:\n        control_plane:\n            hosts:\n                cp:\n"
        "                    tailscale_ip: 100.64.0.1\n                    node_taints:\n"
        "                        - a=b:NoSchedule\n",
        "# no document start\nall:\n  children:\n    control_plane:\n      hosts:\n        cp:\n"
        "          tailscale_ip: 100.64.0.1\n          node_taints:\n          - a=b:NoSchedule\n",
    ],
)
def test_file_style_survives_an_edit(tmp_path: Path, text: str) -> None:
    path = tmp_path / "hosts.yml"
    path.write_text(text)
    with edit_inventory(path, "add") as doc:
        doc.add_host("workers", "w", {"tailscale_ip": "100.64.0.2"})
    with edit_inventory(path, "rm") as doc:
        doc.remove_host("w")
    assert path.read_text().startswith(text)


def test_splice_is_used_for_ordinary_edits(
    inventory: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kubani.inventory import yamlio

    def no_round_trip(text: str) -> object:
        raise AssertionError("the round-trip editor should not be needed here")

    monkeypatch.setattr(yamlio, "load_round_trip", no_round_trip)
    before = inventory.read_bytes()
    with edit_inventory(inventory, "add") as doc:
        doc.add_host(
            "workers", "n-1", {"tailscale_ip": "100.64.0.77", "node_taints": ["a:NoExecute"]}
        )
    with edit_inventory(inventory, "rm") as doc:
        doc.remove_host("n-1")
    assert inventory.read_bytes() == before


def test_flow_style_falls_back_to_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "hosts.yml"
    path.write_text(
        "all:\n  children:\n    control_plane:\n      hosts: {cp: {tailscale_ip: 100.64.0.1}}\n"
    )
    with edit_inventory(path, "add") as doc:
        doc.add_host("control_plane", "cp-2", {"tailscale_ip": "100.64.0.2"})
    data = _parsed(path)
    assert data["all"]["children"]["control_plane"]["hosts"]["cp-2"] == {
        "tailscale_ip": "100.64.0.2"
    }


def test_strings_that_yaml_11_would_misread_are_quoted(inventory: Path) -> None:
    with edit_inventory(inventory, "set") as doc:
        doc.set("flux_prune", "yes")
        doc.set("k3s_channel", "1.30")
    doc = InventoryDocument(inventory)
    assert doc.get("flux_prune") == "yes"
    assert doc.get("k3s_channel") == "1.30"
    text = inventory.read_text()
    assert 'flux_prune: "yes"' in text or "flux_prune: 'yes'" in text


def test_duplicate_keys_are_an_error(tmp_path: Path) -> None:
    path = tmp_path / "hosts.yml"
    path.write_text(
        "all:\n  children:\n    workers:\n      hosts:\n"
        "        w:\n          tailscale_ip: 100.64.0.1\n"
        "        w:\n          tailscale_ip: 100.64.0.2\n"
    )
    with pytest.raises(InventoryFormatError, match=r"'w' appears twice.*line 7"):
        InventoryDocument(path)


def test_host_vars_files_take_precedence(inventory: Path) -> None:
    folder = inventory.parent / "host_vars"
    folder.mkdir()
    (folder / "w-1.yml").write_text("reserved_memory: 3Gi\n")
    doc = InventoryDocument(inventory)
    assert doc.get("reserved_memory", "w-1") == "3Gi"
    with edit_inventory(inventory, "set") as doc:
        assert doc.set("reserved_memory", "4Gi", "w-1") == folder / "w-1.yml"
    assert "4Gi" in (folder / "w-1.yml").read_text()


def test_removing_a_host_with_nested_and_block_values(tmp_path: Path) -> None:
    path = tmp_path / "hosts.yml"
    path.write_text(
        "all:\n  children:\n    control_plane:\n      hosts:\n        cp:\n"
        "          tailscale_ip: 100.64.0.1\n    workers:\n      hosts:\n"
        "        a:\n          tailscale_ip: 100.64.0.2\n          notes: |\n            line one\n"
        "            line two\n\n          node_labels: {x: y}\n  # about b\n"
        "        b:\n          tailscale_ip: 100.64.0.3\n"
    )
    with edit_inventory(path, "rm") as doc:
        doc.remove_host("a")
    text = path.read_text()
    assert "line one" not in text and "# about b" in text
    assert _parsed(path)["all"]["children"]["workers"]["hosts"] == {
        "b": {"tailscale_ip": "100.64.0.3"}
    }
