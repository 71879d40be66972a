"""Documents generated from the sources stay current."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_troubleshooting_guide_has_every_fix_the_sources_give() -> None:
    checked = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "troubleshooting.py"), "--check"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stderr
    guide = (ROOT / "docs" / "TROUBLESHOOTING.md").read_text()
    # One of each kind, to show the generator reads both sources.
    assert "run `sudo tailscale up` on <host>" in guide
    assert "pass --yes to confirm in a script" in guide
