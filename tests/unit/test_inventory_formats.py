"""Inventories as Ansible users write them: Vault values, ``!unsafe``, nested groups, vars
folders, k3s-ansible's layout and INI files. Ansible's own tools are the reference."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest

from kubani.errors import KubaniError
from kubani.inventory.document import InventoryDocument, InventoryFormatError
from kubani.inventory.fastyaml import UnsafeValue, VaultValue
from kubani.inventory.listing import as_inventory
from kubani.inventory.store import edit_inventory
from kubani.inventory.vault import VaultError, decrypt
from tests.conftest import BIN, run_cli

PASSWORD = "correct horse battery staple"


def _vault_password(tmp_path: Path) -> Path:
    path = tmp_path / "vault-pass"
    path.write_text(PASSWORD + "\n")
    return path


def encrypt_string(tmp_path: Path, plain: str, name: str, vault_id: str | None = None) -> str:
    """``ansible-vault encrypt_string``'s output: ``name: !vault |`` and the ciphertext."""
    password = _vault_password(tmp_path)
    source = f"{vault_id}@{password}" if vault_id else str(password)
    option = "--vault-id" if vault_id else "--vault-password-file"
    done = subprocess.run(
        [str(BIN / "ansible-vault"), "encrypt_string", option, source, plain, "--name", name],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return done.stdout.strip()


def _ciphertext(snippet: str) -> str:
    return "\n".join(line.strip() for line in snippet.splitlines()[1:]) + "\n"


@pytest.mark.parametrize("vault_id", [None, "homelab"])
def test_values_from_ansible_vault_open_with_its_password(tmp_path: Path, vault_id: str) -> None:
    snippet = encrypt_string(tmp_path, "s3cret token", "k3s_token", vault_id)
    header = snippet.splitlines()[1].strip()
    assert header.startswith("$ANSIBLE_VAULT;1.2" if vault_id else "$ANSIBLE_VAULT;1.1")
    assert decrypt(_ciphertext(snippet), PASSWORD.encode(), "k3s_token") == "s3cret token"
    with pytest.raises(VaultError, match="does not match"):
        decrypt(_ciphertext(snippet), b"wrong", "k3s_token")
    with pytest.raises(VaultError, match="hex"):
        decrypt("$ANSIBLE_VAULT;1.1;AES256\nzz\n", PASSWORD.encode(), "k3s_token")


def _indented(snippet: str, spaces: int) -> str:
    return "\n".join(" " * spaces + line for line in snippet.splitlines())


def _vaulted_inventory(tmp_path: Path, vault_checked_value: bool) -> Path:
    repo = encrypt_string(tmp_path, "https://git.example/me/homelab.git", "git_repo_url")
    become = encrypt_string(tmp_path, "sudo-password", "ansible_become_password")
    text = (
        "all:\n  vars:\n    cluster_name: home\n"
        + _indented(become, 4)
        + "\n"
        + (_indented(repo, 4) + "\n" if vault_checked_value else "")
        + '    lookup_kept: !unsafe \'{{ lookup("pipe", "id") }}\'\n'
        "  children:\n    control_plane:\n      hosts:\n"
        "        cp-1:\n          tailscale_ip: 100.64.0.1\n"
    )
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(text)
    return inventory


def test_vault_and_unsafe_values_are_read_and_written_back_untouched(tmp_path: Path) -> None:
    inventory = _vaulted_inventory(tmp_path, vault_checked_value=False)
    before = inventory.read_text()
    variables = InventoryDocument(inventory).scope_vars("all")
    assert isinstance(variables["ansible_become_password"], VaultValue)
    assert variables["lookup_kept"] == UnsafeValue('{{ lookup("pipe", "id") }}')
    # A value Kubani does not check stays closed: no password is needed.
    model, problems = InventoryDocument(inventory).validate()
    assert model is not None, problems.items
    with edit_inventory(inventory, "test") as document:
        document.add_host("workers", "w-1", {"tailscale_ip": "100.64.0.2"})
        document.set("reserved_cpu", "250m", "cp-1")
        document.set("lookup_moved", UnsafeValue("{{ not templated }}"))
    with edit_inventory(inventory, "test") as document:
        document.remove_host("w-1")
    after = inventory.read_text()
    # Every line of the original is still there, in order (ruamel's round trip, which
    # config-set goes through, may indent a block scalar differently; its text is the same).
    kept = iter(line.strip() for line in after.splitlines())
    assert all(line.strip() in kept for line in before.splitlines()), after
    assert "lookup_moved: !unsafe '{{ not templated }}'" in after
    assert (
        InventoryDocument(inventory).scope_vars("all")["ansible_become_password"]
        == (variables["ansible_become_password"])
    )


def test_a_checked_value_in_vault_needs_the_password(tmp_path: Path) -> None:
    inventory = _vaulted_inventory(tmp_path, vault_checked_value=True)
    closed = run_cli("-i", inventory, "validate", timeout=60)
    assert closed.code == 1
    assert "all.vars.git_repo_url" in closed.stdout + closed.stderr
    assert "--vault-password-file" in closed.stdout + closed.stderr
    password = _vault_password(tmp_path)
    # The option is global: accepted after the command too.
    opened = run_cli("validate", "-i", inventory, "--vault-password-file", password, timeout=60)
    assert opened.code == 0, opened.stderr
    from_env = run_cli(
        "-i",
        inventory,
        "config-get",
        "cluster_name",
        env={"ANSIBLE_VAULT_PASSWORD_FILE": str(password)},
    )
    assert from_env.code == 0 and from_env.stdout.strip() == "home"
    wrong = tmp_path / "wrong"
    wrong.write_text("nope\n")
    refused = run_cli("-i", inventory, "--vault-password-file", wrong, "validate", timeout=60)
    assert refused.code == 1 and "does not match" in refused.stdout + refused.stderr
    missing = run_cli("-i", inventory, "--vault-password-file", tmp_path / "absent", "validate")
    assert missing.code == 1 and "cannot read the vault password file" in missing.stderr
    assert "internal error" not in missing.stderr
    # A script prints the password, as Ansible runs it.
    script = tmp_path / "vault-pass.sh"
    script.write_text(f"#!/bin/sh\necho '{PASSWORD}'\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    scripted = run_cli("-i", inventory, "--vault-password-file", script, "validate", timeout=60)
    assert scripted.code == 0, scripted.stderr
    model, _ = InventoryDocument(inventory).validate()
    assert model is None
    os.environ["ANSIBLE_VAULT_PASSWORD_FILE"] = str(password)
    try:
        model, _ = InventoryDocument(inventory).validate()
    finally:
        del os.environ["ANSIBLE_VAULT_PASSWORD_FILE"]
    assert model is not None and model.cluster.git_repo_url == "https://git.example/me/homelab.git"


NESTED = """\
all:
  vars:
    reserved_cpu: 100m
    origin: all-inline
  children:
    k3s_cluster:
      vars:
        origin: k3s-inline
        ansible_user: admin
      children:
        control_plane:
          hosts:
            cp-1: {tailscale_ip: 100.64.0.1}
        workers:
          vars:
            reserved_cpu: 400m
          children:
            rack_b:
              vars:
                origin: rack-inline
              hosts:
                w-2: {tailscale_ip: 100.64.0.3}
          hosts:
            w-1: {tailscale_ip: 100.64.0.2}
    gpu_boxes:
      vars:
        gpu: true
        origin: gpu-inline
      hosts:
        w-2:
          ansible_port: 2222
"""


def _ansible_hostvars(inventory: Path) -> dict[str, Any]:
    done = subprocess.run(
        [str(BIN / "ansible-inventory"), "-i", str(inventory), "--list"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
        env={**os.environ, "ANSIBLE_INVENTORY_UNPARSED_WARNING": "false"},
    )
    hostvars: dict[str, Any] = json.loads(done.stdout)["_meta"]["hostvars"]
    return hostvars


def _as_ansible_prints(value: Any) -> Any:
    if isinstance(value, VaultValue):
        return {"__ansible_vault": str(value)}
    if isinstance(value, dict):
        return {k: _as_ansible_prints(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_as_ansible_prints(v) for v in value]
    return str(value) if isinstance(value, UnsafeValue) else value


def _layouts(tmp_path: Path) -> list[Path]:
    nested = tmp_path / "nested"
    (nested / "group_vars" / "k3s_cluster").mkdir(parents=True)
    (nested / "hosts.yml").write_text(NESTED)
    # group_vars/all beats the inline vars of every group, nested ones too.
    (nested / "group_vars" / "all.yml").write_text("origin: all-file\nfrom_all_file: 1\n")
    (nested / "group_vars" / "k3s_cluster" / "10-a.yml").write_text(
        "from_dir: a\nansible_user: x\n"
    )
    (nested / "group_vars" / "k3s_cluster" / "20-b.yaml").write_text("from_dir: b\n")
    (nested / "group_vars" / "k3s_cluster" / "notes.txt").write_text("from_dir: ignored\n")
    (nested / "group_vars" / "workers.yml").write_text("reserved_memory: 1Gi\n")
    (nested / "host_vars").mkdir()
    (nested / "host_vars" / "w-1.yml").write_text("origin: host-file\n")
    flat = tmp_path / "flat"
    (flat / "group_vars").mkdir(parents=True)
    (flat / "hosts.yml").write_text(
        "all:\n  vars: {a: 1, b: 1}\n  children:\n"
        "    control_plane:\n      vars: {b: 2, c: 2}\n      hosts:\n"
        "        cp-1: {tailscale_ip: 100.64.0.1, c: 3}\n"
        "    workers:\n      hosts:\n        w-1: {tailscale_ip: 100.64.0.2}\n"
    )
    (flat / "group_vars" / "all").write_text("b: 9\nd: 9\n")
    (flat / "group_vars" / "control_plane.yaml").write_text("c: 4\n")
    return [nested / "hosts.yml", flat / "hosts.yml"]


def test_every_node_sees_the_variables_ansible_gives_it(tmp_path: Path) -> None:
    for inventory in _layouts(tmp_path):
        expected = _ansible_hostvars(inventory)
        document = InventoryDocument(inventory)
        nodes = [hostname for _, hostname, _ in document.iter_hosts()]
        assert nodes and set(nodes) <= set(expected)
        for hostname in nodes:
            ours = _as_ansible_prints(document.scope_vars(hostname))
            assert ours == expected[hostname], (inventory, hostname)


def test_nested_groups_are_nodes_and_edits_land_where_the_groups_are(tmp_path: Path) -> None:
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(NESTED)
    model, problems = InventoryDocument(inventory).validate()
    assert model is not None, problems.items
    assert [n.hostname for n in model.workers] == ["w-1", "w-2"]
    gpu_node = model.node("w-2")
    assert gpu_node is not None and gpu_node.gpu and gpu_node.ansible_port == 2222
    result = run_cli("-i", inventory, "add-node", "w-3", "100.64.0.4", "--role", "worker")
    assert result.code == 0, result.stderr
    document = InventoryDocument(inventory)
    assert document.tree.host_places["w-3"] == [
        ("all", "children", "k3s_cluster", "children", "workers", "hosts", "w-3")
    ]
    assert document.scope_vars("w-3")["ansible_user"] == "admin"  # from k3s_cluster
    # w-2 is listed in two groups: removing the node takes it out of both.
    removed = run_cli("-i", inventory, "remove-node", "w-2", "--inventory-only", "--yes")
    assert removed.code == 0, removed.stderr
    document = InventoryDocument(inventory)
    assert "w-2" not in document.tree.host_places
    assert "gpu_boxes:" in inventory.read_text()  # the group and its vars stay


def test_a_group_inside_itself_is_refused(tmp_path: Path) -> None:
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(
        "a:\n  children:\n    b:\n      children:\n        a: {}\n"
        "control_plane:\n  hosts:\n    cp-1: {tailscale_ip: 100.64.0.1}\n"
    )
    with pytest.raises(InventoryFormatError, match="loop"):
        InventoryDocument(inventory)


K3S_ANSIBLE = """\
---
k3s_cluster:
  children:
    server:
      hosts:
        192.168.1.10:
        nuc:
          ansible_host: 100.100.7.2
    agent:
      hosts:
        gpu-box:
          ansible_host: 192.168.1.30
          ansible_user: pi
  vars:
    ansible_port: 22
    ansible_user: debian
    k3s_version: v1.31.4+k3s1
{token}
    api_endpoint: "{{{{ hostvars[groups['server'][0]]['ansible_host'] }}}}"
    extra_server_args: "--disable traefik --tls-san 10.0.0.5 --kube-apiserver-arg=a=30"
    extra_agent_args:
      - "--kubelet-arg max-pods=200"
    user_kubectl: true
"""


def test_a_k3s_ansible_inventory_is_named_and_imported(tmp_path: Path) -> None:
    token = encrypt_string(tmp_path, "cluster-secret", "token")
    source = tmp_path / "k3s-ansible.yml"
    source.write_text(K3S_ANSIBLE.format(token=_indented(token, 4)))
    as_is = run_cli("-i", source, "validate", timeout=60)
    assert as_is.code == 1
    assert "k3s-ansible inventory" in as_is.stdout and "inventory import" in as_is.stdout

    target = tmp_path / "kubani" / "hosts.yml"
    missing = run_cli("inventory", "import", source, "-o", target, timeout=60)
    assert missing.code == 1 and "192.168.1.10, gpu-box" in missing.stderr
    assert not target.exists()
    result = run_cli(
        "inventory", "import", source, "-o", target, "--json",
        "--address", "192.168.1.10=100.100.7.1", "--address", "gpu-box=100.100.7.3",
        timeout=60,
    )  # fmt: skip
    assert result.code == 0, result.stderr
    report = result.json()
    assert report["control_planes"] == ["server-1", "nuc"] and report["workers"] == ["gpu-box"]
    assert any("user_kubectl" in note for note in report["notes"])
    assert any("--tls-san=10.0.0.5" in note for note in report["notes"])
    assert stat.S_IMODE(target.stat().st_mode) == 0o600  # it holds the cluster token
    document = InventoryDocument(target)
    settings = document.scope_vars("all")
    assert settings["k3s_token"] == VaultValue(_ciphertext(token))
    assert settings["k3s_version"] == "v1.31.4+k3s1"
    assert "api_endpoint" not in settings  # a template of k3s-ansible's, meaningless here
    assert settings["k3s_control_plane_disable"] == ["traefik"]
    assert settings["k3s_control_plane_extra_config"] == {"kube-apiserver-arg": "a=30"}
    assert settings["k3s_worker_extra_config"] == {"kubelet-arg": "max-pods=200"}
    assert document.scope_vars("server-1")["ansible_host"] == "192.168.1.10"
    assert document.scope_vars("nuc")["tailscale_ip"] == "100.100.7.2"
    assert document.scope_vars("gpu-box")["ansible_user"] == "pi"
    assert InventoryDocument(target).validate()[0] is not None
    again = run_cli("inventory", "import", source, "-o", target, timeout=60)
    assert again.code == 1 and "already there" in again.stderr


def test_an_ini_inventory_is_recognised_and_converted_through_ansible(tmp_path: Path) -> None:
    source = tmp_path / "hosts.ini"
    source.write_text(
        "# k3s-ansible before 2023\n[master]\n100.64.5.1\n\n[node]\n100.64.5.2 ansible_user=pi\n"
        "\n[k3s_cluster:children]\nmaster\nnode\n\n[k3s_cluster:vars]\n"
        "k3s_version=v1.30.2+k3s1\nansible_user=debian\n"
    )
    as_is = run_cli("-i", source, "validate", timeout=60)
    assert as_is.code == 1 and "INI inventory" in as_is.stderr
    assert "internal error" not in as_is.stderr
    target = tmp_path / "out" / "hosts.yml"
    result = run_cli("inventory", "import", source, "-o", target, timeout=120)
    assert result.code == 0, result.stderr
    model, _ = InventoryDocument(target).validate()
    assert model is not None
    assert [str(n.tailscale_ip) for n in model.nodes] == ["100.64.5.1", "100.64.5.2"]
    agent = model.node("agent-1")
    assert agent is not None and agent.ansible_user == "pi"


def test_an_ini_inventory_with_kubani_s_groups_is_imported_with_its_booleans_typed(
    tmp_path: Path,
) -> None:
    source = tmp_path / "hosts.ini"
    source.write_text(
        "[control_plane]\ncp-1 ansible_host=100.64.6.1 gpu=no\n\n[workers]\n"
        "gpu-box ansible_host=100.64.6.2 gpu=true\nnuc ansible_host=100.64.6.3 gpu=Yes\n\n"
        "[all:vars]\nansible_user=admin\ncluster_name=home\n"
    )
    as_is = run_cli("-i", source, "validate", timeout=60)
    assert as_is.code == 1 and "Kubani's own" in as_is.stderr
    target = tmp_path / "hosts.yml"
    result = run_cli("inventory", "import", source, "-o", target, timeout=120)
    assert result.code == 0, result.stderr
    assert "(Kubani)" in target.read_text()
    model, problems = InventoryDocument(target).validate()
    assert model is not None, problems.errors
    assert model.cluster.cluster_name == "home"
    assert {n.hostname: n.gpu for n in model.nodes} == {"cp-1": False, "gpu-box": True, "nuc": True}
    assert [n.ansible_user for n in model.nodes] == ["admin"] * 3


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("[server]\ncp-1 k3s_token=\"unterminated\n",
         "ansible-inventory failed: Failed to parse inventory: Error parsing host definition "
         "'cp-1 k3s_token=\"unterminated': No closing quotation"),
        ("[server]\nnode[a:z:0]\n", "ansible-inventory failed: Failed to parse inventory"),
        ("[server]\nnode[0:99999999]\n",
         "its host ranges expand to more than 10,000 hosts (node[0:99999999])"),
        ("[server]\nrack[0:99]-node[0:99]\n[agent]\nx[1:2]\n",
         "its host ranges expand to more than 10,000 hosts (x[1:2])"),
    ],
    ids=["quote", "bad-range", "huge-range", "ranges-add-up"],
)  # fmt: skip
def test_an_ini_file_ansible_cannot_list_is_refused_with_its_reason(
    tmp_path: Path, text: str, said: str
) -> None:
    """Ansible warns and lists nothing for an INI file it cannot parse (exit 0), and lists
    every host of a range, however many: neither reaches the import as an empty or endless
    inventory."""
    source = tmp_path / "hosts.ini"
    source.write_text(text)
    target = tmp_path / "out.yml"
    result = run_cli("inventory", "import", source, "-o", target, timeout=60)
    assert result.code == 1, result.stderr
    assert said in result.stderr
    assert "no group of control planes" not in result.stderr
    assert not target.exists()


def test_a_range_of_hosts_within_bounds_is_imported(tmp_path: Path) -> None:
    source = tmp_path / "hosts.ini"
    source.write_text("[server]\ncp-1 ansible_host=100.64.9.1\n[agent]\nnode-[01:03]\n")
    addresses = [f"--address=node-0{i}=100.64.9.1{i}" for i in (1, 2, 3)]
    result = run_cli("inventory", "import", source, "-o", tmp_path / "o.yml", *addresses)
    assert result.code == 0, result.stderr
    model, _ = InventoryDocument(tmp_path / "o.yml").validate()
    assert model is not None
    assert [n.hostname for n in model.nodes] == ["cp-1", "node-01", "node-02", "node-03"]


def test_an_inventory_plugin_s_configuration_is_named_with_the_way_to_its_hosts(
    tmp_path: Path,
) -> None:
    source = tmp_path / "aws_ec2.yml"
    source.write_text("plugin: amazon.aws.aws_ec2\nregions: [eu-west-1]\n")
    for args in (("inventory", "import", source, "-o", tmp_path / "o.yml"), ("-i", source,
                 "validate")):  # fmt: skip
        result = run_cli(*args, timeout=60)
        assert result.code == 1
        assert "it configures the inventory plugin amazon.aws.aws_ec2" in result.stderr
        assert f"ansible-inventory -i {source} --list > hosts.json" in result.stderr


def test_an_inventory_of_no_known_tool_is_not_imported(tmp_path: Path) -> None:
    source = tmp_path / "hosts.yml"
    source.write_text("all:\n  hosts:\n    web-1: {}\n")
    result = run_cli("inventory", "import", source, "-o", tmp_path / "out.yml", timeout=60)
    assert result.code == 1 and "it has no group of control planes" in result.stderr
    assert "(k3s-ansible)" in result.stderr and "(Kubespray)" in result.stderr
    assert "`control_plane` (Kubani)" in result.stderr


def test_unreadable_files_and_folders_are_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inventory = tmp_path / "hosts.yml"
    inventory.write_text("all:\n  children:\n    workers:\n      hosts:\n        w-1: {}\n")
    (tmp_path / "group_vars").mkdir()
    (tmp_path / "group_vars" / "workers.yml").write_text("a: 1\n")
    original = Path.read_bytes

    def denied(path: Path) -> bytes:
        if path.name == "workers.yml":
            raise PermissionError(13, "Permission denied", str(path))
        return original(path)

    monkeypatch.setattr(Path, "read_bytes", denied)
    with pytest.raises(InventoryFormatError, match=r"workers\.yml: Permission denied"):
        InventoryDocument(inventory).validate()
    monkeypatch.undo()

    def read_only(*_: Any, **__: Any) -> int:
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(os, "open", read_only)
    with pytest.raises(KubaniError, match="Read-only file system"), edit_inventory(inventory, "t"):
        pass


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("all:\n  children:\n    workers:\n      hosts: [w-1]\n", "all.children.workers.hosts"),
        ("all:\n  children:\n    a:\n      children:\n        b: 3\n", "all.children.a.children.b"),
        ("all:\n  children:\n    workers:\n      hosts:\n        w-1: 7\n", "hosts.w-1"),
        ("all:\n  vars: !vault [1]\n", "!vault must tag a string"),
    ],
)
def test_entries_that_are_not_mappings_are_named(tmp_path: Path, text: str, fragment: str) -> None:
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(text)
    result = run_cli("-i", inventory, "validate", timeout=60)
    assert result.code == 1
    assert fragment in result.stderr and "internal error" not in result.stderr


def test_an_address_for_a_host_the_source_lacks_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "k3s.yml"
    source.write_text(
        "k3s_cluster:\n  children:\n    server:\n      hosts:\n"
        "        cp: {ansible_host: 10.0.0.1}\n"
    )
    target = tmp_path / "out" / "hosts.yml"
    typo = run_cli("inventory", "import", source, "-o", target, "--address", "cpp=100.64.0.1")
    assert typo.code == 1 and "--address names cpp" in typo.stderr
    assert not target.exists()
    done = run_cli("inventory", "import", source, "-o", target, "--address", "cp=100.64.0.1")
    assert done.code == 0, done.stderr


@pytest.mark.parametrize(
    "text",
    [
        "[master]\n100.64.5.1\n\n[node]\n100.64.5.2\n\n[k3s_cluster:children]\nmaster\nnode\n",
        "k3s_cluster:\n  children:\n    server:\n      hosts:\n        100.64.5.1:\n"
        "    agent:\n      hosts:\n        100.64.5.2:\n",
    ],
    ids=["ini", "yaml"],
)
def test_an_inventory_is_imported_from_a_pipe(tmp_path: Path, text: str) -> None:
    # `cluster-mgr inventory import <(ssh box cat hosts.ini)`: a pipe that reads only once.
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    writer = threading.Thread(target=pipe.write_text, args=(text,))
    writer.start()
    target = tmp_path / "out" / "hosts.yml"
    result = run_cli("inventory", "import", pipe, "-o", target, timeout=120)
    writer.join(timeout=5)
    assert result.code == 0, result.stderr
    model, _ = InventoryDocument(target).validate()
    assert model is not None
    assert [str(n.tailscale_ip) for n in model.nodes] == ["100.64.5.1", "100.64.5.2"]
    folder = run_cli("inventory", "import", tmp_path, "-o", tmp_path / "x.yml", timeout=60)
    assert folder.code == 1 and "it is a folder" in folder.stderr


def test_an_inventory_written_on_windows_is_imported(tmp_path: Path) -> None:
    # Notepad's way: a byte-order mark first, CRLF line ends.
    source = tmp_path / "hosts.ini"
    text = "[server]\n100.64.5.1\n\n[agent]\n100.64.5.2\n\n[k3s_cluster:children]\nserver\nagent\n"
    source.write_bytes(b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode())
    target = tmp_path / "out" / "hosts.yml"
    result = run_cli("inventory", "import", source, "-o", target, timeout=120)
    assert result.code == 0, result.stderr
    model, _ = InventoryDocument(target).validate()
    assert model is not None
    assert [str(n.tailscale_ip) for n in model.nodes] == ["100.64.5.1", "100.64.5.2"]


def test_edits_keep_a_windows_file_s_line_ends_and_mark(tmp_path: Path) -> None:
    inventory = tmp_path / "hosts.yml"
    lines = [
        "all:",
        "  children:",
        "    control_plane:",
        "      hosts:",
        "        cp-1:  # the desk",
        "          tailscale_ip: 100.64.0.1",
    ]
    inventory.write_bytes(b"\xef\xbb\xbf" + "".join(f"{line}\r\n" for line in lines).encode())
    assert run_cli("-i", inventory, "add-node", "w-1", "100.64.0.2").code == 0
    assert run_cli("-i", inventory, "config-set", "reserved_cpu", "1", "--scope", "cp-1").code == 0
    written = inventory.read_bytes()
    assert written.startswith(b"\xef\xbb\xbfall:\r\n")
    assert b"\n" not in written.replace(b"\r\n", b"")  # every line ends as before
    assert b"        cp-1:  # the desk\r\n" in written
    model, _ = InventoryDocument(inventory).validate()
    assert model is not None and [n.hostname for n in model.nodes] == ["cp-1", "w-1"]


KUBESPRAY_YAML = """all:
  hosts:
    node1: {ansible_host: 192.168.1.10, ip: 100.64.7.1, access_ip: 100.64.7.1}
    node2: {ansible_host: 192.168.1.11, ip: 100.64.7.2, etcd_member_name: etcd2}
    node3: {ansible_host: 100.64.7.3, ansible_user: pi}
  children:
    kube_control_plane:
      hosts: {node1: }
    kube_node:
      hosts: {node1: , node2: , node3: }
    etcd:
      hosts: {node1: }
    k8s_cluster:
      vars: {kube_network_plugin: calico}
      children: {kube_control_plane: , kube_node: }
"""
KUBESPRAY_INI = (
    "[all]\nnode1 ansible_host=95.54.0.12 ip=100.64.8.1 etcd_member_name=etcd1\n"
    "node2 ansible_host=95.54.0.13 ip=100.64.8.2\n\n[kube-master]\nnode1\n\n[etcd]\nnode1\n\n"
    "[kube-node]\nnode1\nnode2\n\n[k8s-cluster:children]\nkube-master\nkube-node\n"
    "\n[k8s-cluster:vars]\nansible_user=deploy\n"
)


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        (
            "hosts.yaml",
            KUBESPRAY_YAML,
            {"node1": "100.64.7.1", "node2": "100.64.7.2", "node3": "100.64.7.3"},
        ),
        ("inventory.ini", KUBESPRAY_INI, {"node1": "100.64.8.1", "node2": "100.64.8.2"}),
    ],
    ids=["yaml", "ini-before-2.16"],
)
def test_a_kubespray_inventory_is_named_and_imported(
    tmp_path: Path, name: str, text: str, expected: dict[str, str]
) -> None:
    source = tmp_path / name
    source.write_text(text)
    if name.endswith(".yaml"):
        as_is = run_cli("-i", source, "validate", timeout=60)
        assert as_is.code == 1 and "this is a Kubespray inventory" in as_is.stdout
    target = tmp_path / "out" / "hosts.yml"
    result = run_cli("inventory", "import", source, "-o", target, timeout=120)
    assert result.code == 0, result.stderr
    assert f"converted from {name} (Kubespray)" in target.read_text()
    model, _ = InventoryDocument(target).validate()
    assert model is not None
    assert {n.hostname: str(n.tailscale_ip) for n in model.nodes} == expected
    assert [n.hostname for n in model.control_planes] == ["node1"]  # not a worker as well
    hosts = target.read_text()
    for kubeadm_only in ("kube_network_plugin", "etcd_member_name", "access_ip", " ip:"):
        assert kubeadm_only not in hosts
    if name.endswith(".ini"):  # how Ansible logs in stays
        assert InventoryDocument(target).scope_vars("all")["ansible_user"] == "deploy"


RKE2_LABLABS = (
    "[masters]\nmaster-01 ansible_host=100.64.9.1 rke2_type=server\n\n[workers]\n"
    "worker-01 ansible_host=100.64.9.2 rke2_type=agent\n\n[k8s_cluster:children]\nmasters\n"
    "workers\n\n[k8s_cluster:vars]\nansible_user=ubuntu\nrke2_token=abc\n"
    "rke2_version=v1.29.0+rke2r1\n"
)
RKE2_ANSIBLE = """all:
  children:
    rke2_cluster:
      vars: {ansible_user: admin, ansible_port: 2222, rke2_config: {profile: cis}}
      children:
        rke2_servers:
          hosts:
            master-01: {ansible_host: 100.64.9.1, rke2_role: server}
        rke2_agents:
          hosts:
            worker-01: {ansible_host: 100.64.9.2}
"""


@pytest.mark.parametrize(
    ("name", "text", "tool", "user", "settings"),
    [
        ("hosts.ini", RKE2_LABLABS, "lablabs.rke2", "ubuntu", ("rke2_token", "rke2_version")),
        ("hosts.yml", RKE2_ANSIBLE, "rke2-ansible", "admin", ("rke2_config",)),
    ],
)
def test_an_rke2_inventory_is_named_and_imported_with_its_ssh_settings(
    tmp_path: Path, name: str, text: str, tool: str, user: str, settings: tuple[str, ...]
) -> None:
    source = tmp_path / name
    source.write_text(text)
    if name.endswith(".yml"):
        as_is = run_cli("-i", source, "validate", timeout=60)
        assert as_is.code == 1 and f"this is a {tool} inventory" in as_is.stdout
    target = tmp_path / "out" / "hosts.yml"
    result = run_cli("inventory", "import", source, "-o", target, timeout=120)
    assert result.code == 0, result.stderr
    assert f"{', '.join(settings)}: {tool} settings for RKE2; left out" in result.stderr
    written = target.read_text()
    assert f"converted from {name} ({tool})" in written and "rke2_" not in written
    model, problems = InventoryDocument(target).validate()
    assert model is not None, problems.errors
    assert [(n.hostname, n.role.group, n.ansible_user) for n in model.nodes] == [
        ("master-01", "control_plane", user),
        ("worker-01", "workers", user),
    ]


def test_kubani_s_own_workers_group_alone_is_not_taken_for_rke2(tmp_path: Path) -> None:
    source = tmp_path / "hosts.yml"
    source.write_text("all:\n  children:\n    workers:\n      hosts: {}\n")
    result = run_cli("-i", source, "validate", timeout=60)
    assert result.code == 1 and "rke2" not in (result.stdout + result.stderr)


K0SCTL = """apiVersion: k0sctl.k0sproject.io/v1beta1
kind: Cluster
metadata: {name: home}
spec:
  hosts:
  - role: controller+worker
    ssh: {address: 100.64.9.1, user: root, port: 2222, keyPath: ~/.ssh/id_ed25519}
  - role: worker
    hostname: nuc
    ssh: {address: nuc.tail1234.ts.net, user: admin}
  - role: worker
    ssh: {address: 192.168.1.30}
  - role: worker
    winRM: {address: 192.168.1.40}
  k0s: {version: v1.30.1+k0s.0}
"""


def test_a_k0sctl_cluster_file_is_named_and_imported(tmp_path: Path) -> None:
    source = tmp_path / "k0sctl.yaml"
    source.write_text(K0SCTL)
    as_is = run_cli("-i", source, "validate", timeout=60)
    assert as_is.code == 1 and "it is a k0sctl cluster file" in as_is.stderr
    assert "cluster-mgr inventory import" in as_is.stderr
    target = tmp_path / "out" / "hosts.yml"
    without = run_cli("inventory", "import", source, "-o", target, timeout=60)
    assert without.code == 1 and "no Tailscale address is known for nuc, 192.168.1.30" in (
        without.stderr
    )
    assert not target.exists()
    result = run_cli(
        "inventory", "import", source, "-o", target,
        "--address", "nuc=100.64.9.2", "--address", "192.168.1.30=100.64.9.3",
        timeout=60,
    )  # fmt: skip
    assert result.code == 0, result.stderr
    assert "Windows machine (winRM); left out" in result.stderr
    assert "spec.k0s: k0s settings; left out" in result.stderr
    model, _ = InventoryDocument(target).validate()
    assert model is not None
    nodes = {n.hostname: n for n in model.nodes}
    assert [n.hostname for n in model.control_planes] == ["server-1"]
    first = nodes["server-1"]
    assert (first.ansible_user, first.ansible_port, str(first.tailscale_ip)) == (
        "root",
        2222,
        "100.64.9.1",
    )
    assert nodes["nuc"].ansible_host == "nuc.tail1234.ts.net"
    assert str(nodes["agent-2"].tailscale_ip) == "100.64.9.3"


@pytest.mark.parametrize(
    ("hosts", "said"),
    [
        ("  hosts: []\n", "lists no machine"),
        ("  hosts:\n  - role: etcd\n    ssh: {address: 100.64.9.1}\n", "has role 'etcd'"),
        ("  hosts:\n  - role: worker\n    ssh: {address: 100.64.9.1}\n", "no machine has the role"),
        ("  hosts:\n  - just-a-string\n", "spec.hosts[0] is not a mapping"),
        ("  hosts:\n  - role: [controller]\n", "has role ['controller']"),
    ],
)
def test_a_k0sctl_file_kubani_cannot_use_is_refused(tmp_path: Path, hosts: str, said: str) -> None:
    source = tmp_path / "k0sctl.yaml"
    source.write_text("apiVersion: k0sctl.k0sproject.io/v1beta1\nkind: Cluster\nspec:\n" + hosts)
    result = run_cli("inventory", "import", source, "-o", tmp_path / "out.yml", timeout=60)
    assert result.code == 1 and said in result.stderr, result.stderr
    assert "internal error" not in result.stderr


K3S_ANSIBLE_INI = (
    "[server]\n100.64.5.1\n\n[agent]\n100.64.5.2 ansible_user=pi\n100.64.5.3\n\n"
    "[k3s_cluster:children]\nserver\nagent\n\n[k3s_cluster:vars]\n"
    "k3s_version=v1.30.2+k3s1\nansible_user=debian\ntoken=s3cret\n"
)


@pytest.mark.parametrize("export", [False, True], ids=["merged", "exported"])
def test_ansible_inventory_list_output_is_named_and_imported(tmp_path: Path, export: bool) -> None:
    ini = tmp_path / "hosts.ini"
    ini.write_text(K3S_ANSIBLE_INI)
    command = [str(BIN / "ansible-inventory"), "-i", str(ini), "--list"]
    listing = tmp_path / "listing.json"
    listing.write_text(
        subprocess.run(
            command + (["--export"] if export else []), capture_output=True, text=True, check=True
        ).stdout
    )
    as_is = run_cli("-i", listing, "validate", timeout=60)
    assert as_is.code == 1 and "ansible-inventory --list" in as_is.stderr
    assert "inventory import" in as_is.stderr
    target = tmp_path / "hosts.yml"
    result = run_cli("inventory", "import", listing, "-o", target, timeout=60)
    assert result.code == 0, result.stderr
    model, problems = InventoryDocument(target).validate()
    assert model is not None, problems.errors
    assert model.cluster.k3s_version == "v1.30.2+k3s1"
    assert InventoryDocument(target).scope_vars("all")["k3s_token"] == "s3cret"
    assert [(n.hostname, str(n.tailscale_ip), n.ansible_user) for n in model.nodes] == [
        ("server-1", "100.64.5.1", "debian"),
        ("agent-1", "100.64.5.2", "pi"),
        ("agent-2", "100.64.5.3", "debian"),
    ]


def test_a_listing_s_shared_values_become_the_inventory_s_but_addresses_stay() -> None:
    listing = {
        "_meta": {
            "hostvars": {
                "a": {"ansible_host": "100.64.0.1", "x": 1, "y": [1]},
                "b": {"ansible_host": "100.64.0.1", "x": 1, "y": [2]},
            }
        },
        "all": {"children": ["ungrouped", "workers"]},
        "workers": {"hosts": ["a", "b"]},
        "ungrouped": {},
    }
    data = as_inventory(listing, "l.json")
    assert data["all"]["vars"] == {"x": 1}
    hosts = data["all"]["children"]["workers"]["hosts"]
    assert hosts == {
        "a": {"ansible_host": "100.64.0.1", "y": [1]},
        "b": {"ansible_host": "100.64.0.1", "y": [2]},
    }


def test_a_host_in_two_groups_keeps_its_variables_in_one_place() -> None:
    listing = {
        "_meta": {"hostvars": {"a": {"v": 1}, "lone": {"w": 2}}},
        "all": {"children": ["g", "h"], "vars": {"z": 0}},
        "g": {"hosts": ["a", "a"], "vars": {"k": 1}},
        "h": {"hosts": ["a"], "children": ["g"]},
    }
    data = as_inventory(listing, "l.json")
    assert data == {
        "all": {
            "vars": {"z": 0},
            "hosts": {"lone": {"w": 2}},
            "children": {
                "g": {"vars": {"k": 1}, "hosts": {"a": {"v": 1}}},
                "h": {"hosts": {"a": None}, "children": {"g": None}},
            },
        }
    }


@pytest.mark.parametrize(
    ("listing", "said"),
    [
        ({"_meta": {"hostvars": []}}, "_meta.hostvars must be a mapping"),
        ({"_meta": {"hostvars": {"a": "x"}}}, "_meta.hostvars.a must be a mapping"),
        ({"_meta": {"hostvars": {}}, "g": "hosts"}, "g must be a mapping"),
        ({"_meta": {"hostvars": {}}, "g": {"hosts": {"a": None}}}, "g.hosts must be a list"),
        ({"_meta": {"hostvars": {}}, "g": {"children": [["x"]]}}, "g.children must be a list"),
        ({"_meta": {"hostvars": {}}, "g": {"vars": [1]}}, "g.vars must be a mapping"),
    ],
)
def test_a_malformed_listing_is_named(listing: dict[str, Any], said: str) -> None:
    with pytest.raises(KubaniError) as caught:
        as_inventory(listing, "l.json")
    assert said in str(caught.value)
