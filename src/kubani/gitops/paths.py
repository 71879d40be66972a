"""Where the project's GitOps tree is."""

from __future__ import annotations

import os
from pathlib import Path

from kubani.errors import KubaniError


def find_tree(explicit: Path | None = None) -> Path:
    """--path, else $KUBANI_GITOPS, else ``gitops/`` in this folder or one above."""
    if explicit is not None:
        return explicit
    if os.environ.get("KUBANI_GITOPS"):
        return Path(os.environ["KUBANI_GITOPS"])
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / "gitops" / "flux-system").is_dir():
            return folder / "gitops"
    raise KubaniError(
        "cannot find the GitOps tree",
        f"no gitops/flux-system folder in {here} or above",
        "run in your Kubani project, or pass --path / set KUBANI_GITOPS",
    )
