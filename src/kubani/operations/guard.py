"""A workstation owner's word to its guard, through the machine's Node: keep the cluster
off it (hold), let the cluster in (release), or leave it to what the guard sees (auto)."""

from __future__ import annotations

from pathlib import Path

from kubani.kube.summary import Held, held_of
from kubani.vocabulary import GUARD_OVERRIDE, GuardOverride


async def set_override(
    kubeconfig: Path | None, node: str, override: GuardOverride | None, timeout: float = 10.0
) -> Held | None:
    """Set (or, with None, clear) the node's override; what the node says afterwards."""
    from kubani.kube.client import Kube

    async with Kube(kubeconfig, timeout=timeout) as kube:
        updated = await kube.annotate_node(
            node, {GUARD_OVERRIDE: override.value if override is not None else None}
        )
    return held_of(updated if isinstance(updated, dict) else {})
