"""Lab fixtures: real nspawn nodes, brought up once per session and always torn down."""

from __future__ import annotations

import os
import platform
import shutil
from collections.abc import Iterator

import pytest

from kubani_lab.lab import Lab
from tests.lab.lifecycle import lab_in_use


def _lab_possible() -> str | None:
    if platform.system() != "Linux":
        return "the lab needs Linux"
    if os.geteuid() != 0:
        return "the lab needs root"
    missing = [t for t in ("debootstrap", "systemd-nspawn", "ip", "ssh") if not shutil.which(t)]
    if missing:
        return f"missing tools: {', '.join(missing)}"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = _lab_possible()
    if reason is None:
        return
    for item in items:
        # The components' build cache is the lab's (/var/lib/kubani-lab), root's as well.
        if "lab" in item.keywords or "components" in item.keywords:
            if os.environ.get("KUBANI_REQUIRE_LAB"):
                # CI must run the lab tests: not being able to is a failure, not a skip.
                raise pytest.UsageError(f"KUBANI_REQUIRE_LAB is set but {reason}")
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session")
def lab(request: pytest.FixtureRequest) -> Iterator[Lab]:
    """A 3-node lab (1 control plane, 2 workers) for the whole session."""
    with lab_in_use(Lab("pytest"), request) as instance:
        instance.up(nodes=3, control_planes=1)
        yield instance
