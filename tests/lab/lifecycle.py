"""A lab's life in a test: from a clean start to ``down``, with what explains a failure kept."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

import pytest

from kubani_lab.lab import Lab


@contextlib.contextmanager
def lab_in_use(lab: Lab, request: pytest.FixtureRequest | None = None) -> Iterator[Lab]:
    """``lab`` with the leftovers of a killed run removed first, and taken down however the
    block ends. When it ends in failure (an exception, or with ``request``: a test that failed
    while the lab was up), the lab's diagnostics are kept first (``Lab.save_diagnostics``)."""
    lab.down()
    failed_before = request.session.testsfailed if request is not None else 0
    try:
        yield lab
    except BaseException:
        _keep_diagnostics(lab)
        raise
    else:
        if request is not None and request.session.testsfailed > failed_before:
            _keep_diagnostics(lab)
    finally:
        lab.down()


def _keep_diagnostics(lab: Lab) -> None:
    try:
        folder = lab.save_diagnostics()
    except Exception as exc:  # the failure being explained matters more than its diagnostics
        print(f"lab {lab.name}: could not keep its diagnostics: {exc!r}", file=sys.stderr)
        return
    if folder is not None:
        print(f"lab {lab.name}: diagnostics kept in {folder}", file=sys.stderr)
