"""Options given before the command name, shared by every command."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass
class GlobalOptions:
    inventory: Path | None = None
    debug: bool = bool(os.environ.get("KUBANI_DEBUG"))


options = GlobalOptions()
