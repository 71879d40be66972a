"""The rules of taking a node out (operations.removal), without a cluster."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubani.errors import KubaniError
from kubani.inventory.document import InventoryDocument
from kubani.models.problems import Problems
from kubani.operations.removal import (
    RemovalPlan,
    check_inventory_after,
    check_quorum,
    plan_removal,
)
from kubani.vocabulary import ProblemCode


def _inventory(tmp_path: Path, control_planes: int, workers: int = 1) -> InventoryDocument:
    lines = ["all:", "  children:", "    control_plane:", "      hosts:"]
    lines += [
        f"        cp-{i}: {{tailscale_ip: 100.64.0.{i}}}" for i in range(1, control_planes + 1)
    ]
    lines += ["    workers:", "      hosts:"]
    lines += [f"        w-{i}: {{tailscale_ip: 100.64.1.{i}}}" for i in range(1, workers + 1)]
    path = tmp_path / "hosts.yml"
    path.write_text("\n".join(lines) + "\n")
    return InventoryDocument(path)


def test_the_last_control_plane_is_kept_unless_forced(tmp_path: Path) -> None:
    document = _inventory(tmp_path, control_planes=1)
    with pytest.raises(KubaniError, match="last control plane"):
        plan_removal(document, "cp-1", force=False)
    assert plan_removal(document, "cp-1", force=True).removing_control_plane
    with pytest.raises(KubaniError, match="not in the inventory"):
        plan_removal(document, "cp-9", force=False)
    assert not plan_removal(document, "w-1", force=False).removing_control_plane


@pytest.mark.parametrize(
    ("members", "ready", "refused"),
    [
        (3, {"cp-2", "cp-3"}, False),  # 2 left, both Ready: quorum of 2 holds
        (3, {"cp-2"}, True),  # 2 left, 1 Ready: below 2
        (5, {"cp-2", "cp-3", "cp-4"}, False),  # 4 left, 3 Ready: quorum of 3
        (5, {"cp-2", "cp-3"}, True),  # 4 left, 2 Ready: below 3
        (2, set(), True),  # 1 left and it is down
    ],
)
def test_etcd_quorum_after_the_removal(
    tmp_path: Path, members: int, ready: set[str], refused: bool
) -> None:
    plan = plan_removal(_inventory(tmp_path, control_planes=members), "cp-1", force=False)
    if refused:
        with pytest.raises(KubaniError, match="below the quorum"):
            check_quorum(plan, ready)
    else:
        check_quorum(plan, ready)
    check_quorum(RemovalPlan(plan.hostname, True, plan.control_planes, force=True), ready)


def test_a_worker_never_touches_quorum(tmp_path: Path) -> None:
    plan = plan_removal(_inventory(tmp_path, control_planes=3), "w-1", force=False)
    check_quorum(plan, set())


def test_the_inventory_left_behind_is_judged_by_the_problem_code(tmp_path: Path) -> None:
    plan = plan_removal(_inventory(tmp_path, control_planes=3), "cp-1", force=False)
    even = Problems()
    even.warning(
        "all.children.control_plane.hosts", "any words at all", ProblemCode.EVEN_CONTROL_PLANES
    )
    with pytest.raises(KubaniError, match="any words at all"):
        check_inventory_after(plan, even)
    worded = Problems()
    worded.warning("all.children.control_plane.hosts", "2 control planes: etcd needs a majority")
    check_inventory_after(plan, worded)  # the words alone decide nothing
    _, found = _inventory(tmp_path, control_planes=2).validate()
    assert [p.code for p in found.warnings] == [ProblemCode.EVEN_CONTROL_PLANES]
