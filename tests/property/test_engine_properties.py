"""Random sequences of inventory edits keep comments and match a simple model."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from kubani.inventory.document import InventoryDocument
from kubani.inventory.store import InventoryInvalid, edit_inventory
from tests.conftest import FIXTURES
from tests.property.strategies import dns_labels, node_vars


def _comment_lines(text: str) -> list[str]:
    return sorted(line.strip() for line in text.splitlines() if line.strip().startswith("#"))


operations = st.lists(
    st.one_of(
        st.tuples(
            st.just("add"), dns_labels, st.sampled_from(["control_plane", "workers"]), node_vars()
        ),
        st.tuples(
            st.just("remove"),
            st.sampled_from(["cp-2", "w-1", "gpu-1", "new"]),
            st.none(),
            st.none(),
        ),
    ),
    max_size=6,
)


@given(operations)
@settings(max_examples=40, deadline=None)
def test_edit_sequences(ops: list[tuple[str, str, str | None, dict[str, object] | None]]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "inventory" / "hosts.yml"
        shutil.copytree(FIXTURES / "inventory", path.parent)
        original_comments = _comment_lines(path.read_text())
        expected = {h: g for g, h, _ in InventoryDocument(path).iter_hosts()}
        for op, name, group, data in ops:
            before = path.read_bytes()
            try:
                with edit_inventory(path, op) as doc:
                    if op == "add":
                        assert group is not None and data is not None
                        if name in expected:
                            continue
                        doc.add_host(group, name, data)
                    elif name in expected:
                        doc.remove_host(name)
                    else:
                        continue
            except InventoryInvalid:
                assert path.read_bytes() == before
                continue
            if op == "add":
                expected[name] = group
            else:
                expected.pop(name)
        text = path.read_text()
        YAML(typ="safe").load(text)
        assert {h: g for g, h, _ in InventoryDocument(path).iter_hosts()} == expected
        # Comments only go away with the host line that carried them (end-of-line ones).
        removed_own = {"# its tailnet address"} if "cp-1" not in expected else set()
        assert set(original_comments) - removed_own <= set(_comment_lines(text))
