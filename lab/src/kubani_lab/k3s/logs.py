"""Log lines in K3s's own format (``time="..." level=... msg="..."``), as the journal of
its unit shows them."""

from __future__ import annotations

import sys
import time
from typing import TextIO


def log(level: str, message: str, stream: TextIO | None = None) -> None:
    """One line on ``stream`` (standard output unless given)."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    print(f'time="{stamp}" level={level} msg="{message}"', file=stream or sys.stdout, flush=True)
