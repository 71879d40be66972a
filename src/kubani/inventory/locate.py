"""Where the inventory is: a flag, $KUBANI_INVENTORY, or ansible/inventory/hosts.yml upward."""

from __future__ import annotations

import os
from pathlib import Path

from kubani.errors import KubaniError

DEFAULT_RELATIVE = Path("ansible/inventory/hosts.yml")
ENV_VAR = "KUBANI_INVENTORY"


def find_inventory(explicit: Path | None = None, start: Path | None = None) -> Path:
    if explicit is not None:
        return _existing(explicit, "--inventory")
    from_env = os.environ.get(ENV_VAR)
    if from_env:
        return _existing(Path(from_env), f"${ENV_VAR}")
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / DEFAULT_RELATIVE
        if candidate.is_file():
            return candidate
    raise KubaniError(
        "no inventory found",
        f"no {DEFAULT_RELATIVE} in {here} or any folder above it",
        f"pass --inventory PATH, set ${ENV_VAR}, or run `cluster-mgr init`",
    )


def _existing(path: Path, origin: str) -> Path:
    path = path.expanduser()
    if path.is_dir():
        if not (path / "hosts.yml").is_file():
            raise KubaniError(
                f"inventory {path} not found",
                f"{origin} names a folder, and it holds no hosts.yml",
                f"pass the inventory file itself, or put hosts.yml in {path}",
            )
        path = path / "hosts.yml"
    if path.exists() and not path.is_file():
        raise KubaniError(
            f"cannot read inventory {path}",
            f"{origin} names something that is not a regular file (a device, FIFO or socket?)",
            "pass the inventory's YAML file",
        )
    if not path.is_file():
        raise KubaniError(
            f"inventory {path} not found",
            f"{origin} names a file that does not exist",
            "check the path",
        )
    return path
