"""After provisioning with GitOps on: which Flux objects are not Ready, and why."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

from kubani.cluster.gather import served_objects
from kubani.cluster.live import FLUX_KINDS
from kubani.cluster.status import FluxObject, flux_object
from kubani.kube.client import Kube
from kubani.printable import printable


async def flux_not_ready(
    kubeconfig: Path | None, context: str | None = None, alternatives: Sequence[str] = ()
) -> list[FluxObject]:
    """Every Flux object (sources, Kustomizations, HelmReleases) whose Ready condition is
    not True, suspended ones left out. A kind the cluster does not serve has none. Raises
    KubeError when the API cannot be read."""
    async with Kube(kubeconfig, context, timeout=10.0, alternatives=alternatives) as kube:
        listed = await asyncio.gather(*(served_objects(kube, plural) for plural in FLUX_KINDS))
    found = [
        flux_object(kind, obj)
        for kind, objects in zip(FLUX_KINDS.values(), listed, strict=True)
        for obj in objects
    ]
    return [o for o in found if o.ready != "True" and not o.suspended]


def describe(obj: FluxObject) -> str:
    """``Kustomization flux-system/apps: False (DependencyNotReady: ...)``."""
    first_line = obj.message.splitlines()[0] if obj.message else ""
    detail = ": ".join(part for part in (obj.reason, first_line) if part)
    return printable(
        f"{obj.kind} {obj.namespace}/{obj.name}: {obj.ready}" + (f" ({detail})" if detail else "")
    )
