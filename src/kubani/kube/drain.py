"""Draining a node through the eviction API, as ``kubectl drain`` does.

DaemonSet pods and mirror (static) pods stay; every other pod is evicted, and evictions
refused by a PodDisruptionBudget (HTTP 429) are retried until the timeout.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

MIRROR = "kubernetes.io/config.mirror"


class Drainable(Protocol):
    """The part of ``kubani.kube.client.Kube`` a drain uses."""

    async def cordon(self, name: str) -> None: ...

    async def pods(
        self, namespace: str | None = None, node: str | None = None
    ) -> list[dict[str, Any]]: ...

    async def evict(self, namespace: str, name: str) -> bool: ...


@dataclass
class DrainResult:
    node: str
    evicted: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)  # refused by a PDB until the timeout
    kept: list[str] = field(default_factory=list)  # DaemonSet and mirror pods

    @property
    def complete(self) -> bool:
        return not self.blocked


def _name(pod: dict[str, Any]) -> str:
    meta = pod.get("metadata") or {}
    return f"{meta.get('namespace')}/{meta.get('name')}"


def must_stay(pod: dict[str, Any]) -> bool:
    meta = pod.get("metadata") or {}
    if MIRROR in (meta.get("annotations") or {}):
        return True
    if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
        return True
    return any(ref.get("kind") == "DaemonSet" for ref in meta.get("ownerReferences") or [])


async def drain(
    kube: Drainable,
    node: str,
    timeout: float = 120.0,
    say: Callable[[str], None] = lambda _m: None,
    poll: float = 2.0,
) -> DrainResult:
    result = DrainResult(node)
    await kube.cordon(node)
    say(f"{node}: cordoned")
    deadline = time.monotonic() + timeout
    pending: list[dict[str, Any]] = []
    for pod in await kube.pods(node=node):
        if must_stay(pod):
            result.kept.append(_name(pod))
        else:
            pending.append(pod)
    while pending:
        refused = []
        for pod in pending:
            meta = pod["metadata"]
            if await kube.evict(meta["namespace"], meta["name"]):
                result.evicted.append(_name(pod))
                say(f"{node}: evicted {_name(pod)}")
            else:
                refused.append(pod)
        pending = refused
        if pending and time.monotonic() >= deadline:
            result.blocked = [_name(p) for p in pending]
            break
        if pending:
            say(f"{node}: {len(pending)} pod(s) held by a PodDisruptionBudget; retrying")
            await asyncio.sleep(poll)
    await _wait_gone(kube, node, result, deadline, poll)
    return result


async def _wait_gone(
    kube: Drainable, node: str, result: DrainResult, deadline: float, poll: float
) -> None:
    """Evicted pods terminate; wait (within the timeout) until none is left on the node."""
    evicted = set(result.evicted)
    while evicted and time.monotonic() < deadline:
        remaining = {_name(p) for p in await kube.pods(node=node)} & evicted
        if not remaining:
            return
        await asyncio.sleep(poll)
