"""-e/--extra-vars read as ansible-playbook reads them."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubani.ansible.extravars import parse_extra_vars
from kubani.errors import KubaniError


def test_pairs_objects_and_files_merge_later_wins(tmp_path: Path) -> None:
    extra = tmp_path / "vars.yml"
    extra.write_text("gitops_wait_timeout: 90\nnested: {a: 1}\n")
    parsed = parse_extra_vars(
        [
            "k3s_version=v1.32.1+k3s1 note='two words'",
            '{"gitops_wait_timeout": 30, "flag": true}',
            f"@{extra}",
            "{retries: 3}",  # YAML flow mapping, as Ansible accepts
        ]
    )
    assert parsed == {
        "k3s_version": "v1.32.1+k3s1",
        "note": "two words",
        "gitops_wait_timeout": 90,
        "flag": True,
        "nested": {"a": 1},
        "retries": 3,
    }


@pytest.mark.parametrize(
    ("given", "said"),
    [
        ("novalue", "'novalue' is not key=value"),
        ("{not: [closed", "not a JSON or YAML object"),
        ("@/no/such/file.yml", "No such file"),
        ("key='unterminated", "No closing quotation"),
        ("9key=1", "'9key=1' is not key=value"),
    ],
)
def test_bad_extra_vars_are_clear_errors(given: str, said: str) -> None:
    with pytest.raises(KubaniError) as refused:
        parse_extra_vars([given])
    assert said in str(refused.value)
    assert "use key=value, a JSON object" in str(refused.value)


def test_a_file_that_is_not_a_mapping_is_refused(tmp_path: Path) -> None:
    listed = tmp_path / "list.yml"
    listed.write_text("- a\n- b\n")
    with pytest.raises(KubaniError, match="does not hold a mapping"):
        parse_extra_vars([f"@{listed}"])
