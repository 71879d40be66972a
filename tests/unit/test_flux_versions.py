"""Clusters running an older Flux: its kinds are listed at the API versions it serves."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from kubani.cluster.gather import served_objects
from kubani.cluster.live import WATCHED, collection_paths, list_served
from kubani.kube.client import KubeError


class ServedAt:
    """A Kube that serves collections at the given paths only (404 elsewhere)."""

    def __init__(self, served: dict[str, list[dict[str, Any]]]) -> None:
        self.served = served
        self.asked: list[str] = []

    async def list_path(self, path: str, shape: Any = None) -> tuple[list[dict[str, Any]], str]:
        self.asked.append(path)
        if path not in self.served:
            raise KubeError(f"cannot list {path}", "HTTP 404", None, status=404)
        return self.served[path], "7"


RELEASE = {"metadata": {"name": "podinfo", "namespace": "apps"}}


def test_helm_releases_of_flux_2_2_are_found_at_v2beta2() -> None:
    older = "/apis/helm.toolkit.fluxcd.io/v2beta2/helmreleases"
    kube = ServedAt({older: [RELEASE]})
    assert asyncio.run(list_served(kube, "helmreleases")) == ([RELEASE], "7", older)
    assert kube.asked == [WATCHED["helmreleases"], older]


def test_the_newest_version_is_asked_first_and_kept_when_served() -> None:
    kube = ServedAt({WATCHED["kustomizations"]: []})
    assert asyncio.run(list_served(kube, "kustomizations"))[2] == WATCHED["kustomizations"]
    assert kube.asked == [WATCHED["kustomizations"]]


def test_flux_not_installed_is_still_a_404_and_status_lists_nothing() -> None:
    kube = ServedAt({})
    with pytest.raises(KubeError) as caught:
        asyncio.run(list_served(kube, "helmreleases"))
    assert caught.value.status == 404
    assert kube.asked == list(collection_paths("helmreleases"))
    assert asyncio.run(served_objects(kube, "helmreleases")) == []


def test_other_failures_are_not_taken_for_an_older_flux() -> None:
    class Refusing(ServedAt):
        async def list_path(self, path: str, shape: Any = None) -> tuple[list[Any], str]:
            self.asked.append(path)
            raise KubeError(f"cannot list {path}", "HTTP 403", None, status=403)

    kube = Refusing({})
    with pytest.raises(KubeError, match="403"):
        asyncio.run(list_served(kube, "helmreleases"))
    assert kube.asked == [WATCHED["helmreleases"]]


def test_kinds_outside_flux_have_one_path() -> None:
    assert collection_paths("nodes") == ("/api/v1/nodes",)
