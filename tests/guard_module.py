"""The workstation guard's node-side program, loaded from the role that installs it."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

GUARD_FILE = (
    Path(__file__).resolve().parents[1]
    / "ansible" / "roles" / "workstation_guard" / "files" / "kubani_guard.py"
)  # fmt: skip


def load_guard() -> ModuleType:
    if "kubani_guard" in sys.modules:
        return sys.modules["kubani_guard"]
    spec = importlib.util.spec_from_file_location("kubani_guard", GUARD_FILE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["kubani_guard"] = module
    spec.loader.exec_module(module)
    return module
