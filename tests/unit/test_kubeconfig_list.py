"""$KUBECONFIG as kubectl reads it: a list of files, merged (lightkube reads one file)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kubani.errors import KubaniError
from kubani.kube.client import Kube
from kubani.kube.kubeconfig import kubeconfig_env_paths, merged


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("apiVersion: v1\nkind: Config\n" + text)
    return path


@pytest.fixture
def two_files(tmp_path: Path) -> list[Path]:
    work = _write(
        tmp_path / "work" / "config",
        "clusters: [{name: shared, cluster: {server: 'https://work:6443',"
        " certificate-authority: ca.crt}}]\n"
        "users: [{name: me, user: {exec: {command: ./bin/login, apiVersion: x}}}]\n"
        "contexts: [{name: work, context: {cluster: shared, user: me}}]\n",
    )
    home = _write(
        tmp_path / "home" / "config",
        "clusters: [{name: shared, cluster: {server: 'https://home:6443'}},"
        " {name: lab, cluster: {server: 'https://127.0.0.1:1'}}]\n"
        "users: [{name: me, user: {token: t}}, {name: admin, user: {token: t}}]\n"
        "contexts: [{name: lab, context: {cluster: lab, user: admin}}]\n"
        "current-context: lab\n",
    )
    return [tmp_path / "missing", work, home]


def test_the_first_file_wins_each_name_and_the_first_current_context(
    two_files: list[Path],
) -> None:
    config = merged(two_files)
    clusters = {c["name"]: c["cluster"] for c in config["clusters"]}
    assert clusters["shared"]["server"] == "https://work:6443"
    assert clusters["shared"]["certificate-authority"] == str(two_files[1].parent / "ca.crt")
    assert clusters["lab"]["server"] == "https://127.0.0.1:1"
    users = {u["name"]: u["user"] for u in config["users"]}
    assert users["me"]["exec"]["command"] == str(two_files[1].parent / "bin/login")
    assert config["current-context"] == "lab"


def test_the_client_reads_a_kubeconfig_list(
    two_files: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBECONFIG", os.pathsep.join(map(str, [*two_files, two_files[1]])))
    assert kubeconfig_env_paths() == two_files  # repeats dropped
    assert Kube().server == "https://127.0.0.1:1"


def test_a_list_of_files_that_do_not_exist_is_named(tmp_path: Path) -> None:
    with pytest.raises(KubaniError, match=r"none of .* exists"):
        merged([tmp_path / "a", tmp_path / "b"])
