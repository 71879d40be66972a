"""Entry point of ``cluster-tui``."""

from __future__ import annotations

import sys


def run() -> None:
    sys.stderr.write(
        "cluster-tui: the live view is not part of this release yet; "
        "use `cluster-mgr discover` and `cluster-mgr validate` meanwhile\n"
    )
    sys.exit(1)
