"""The cluster at a glance, from the live view's cache: nodes Ready, pods Running, Flux
objects Ready, and the warnings of the last minutes."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from kubani.cluster.cache import ClusterCache
from kubani.cluster.times import NEVER

# Warnings counted in the overview are those of the last WARNING_WINDOW.
WARNING_WINDOW = timedelta(minutes=10)


@dataclass(frozen=True, slots=True)
class ClusterOverview:
    nodes_ready: int
    nodes_total: int
    pods_running: int
    pods_total: int
    flux_ready: int
    flux_total: int
    warnings_recent: int
    window_minutes: int


def _ready(obj: dict[str, Any]) -> bool:
    conditions = (obj.get("status") or {}).get("conditions") or []
    return any(
        isinstance(c, dict) and c.get("type") == "Ready" and c.get("status") == "True"
        for c in conditions
    )


def overview(
    cache: ClusterCache,
    flux_plurals: Iterable[str],
    now: datetime,
    window: timedelta = WARNING_WINDOW,
) -> ClusterOverview:
    nodes = cache.of("nodes").values()
    flux = [obj for plural in flux_plurals for obj in cache.of(plural).values()]
    since = now - window
    moments = cache.event_moments
    warnings = sum(moments.get(key, NEVER) >= since for key in cache.warnings)
    return ClusterOverview(
        nodes_ready=sum(_ready(node) for node in nodes),
        nodes_total=len(nodes),
        pods_running=cache.pods_running,
        pods_total=len(cache.of("pods")),
        flux_ready=sum(_ready(obj) for obj in flux),
        flux_total=len(flux),
        warnings_recent=warnings,
        window_minutes=int(window.total_seconds() // 60),
    )
