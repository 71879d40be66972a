"""The live view's cache keeps its running counts equal to a count of what it holds, through
any sequence of lists and watch events."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from kubani.cluster.cache import RUNNING, ClusterCache
from kubani.cluster.times import event_moment

PHASES = st.sampled_from(["Pending", RUNNING, "Succeeded", "Failed"])
NAMES = st.sampled_from([f"p{i}" for i in range(6)])


def _pod(name: str, phase: str, node: str, owner: str | None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": "ns", "resourceVersion": "1",
                            "managedFields": [{"manager": "kubelet"}]}  # fmt: skip
    if owner:
        meta["ownerReferences"] = [
            {"kind": "ReplicaSet", "name": f"{owner}-abc", "controller": True}
        ]
    return {"metadata": meta, "spec": {"nodeName": node}, "status": {"phase": phase}}


pods = st.builds(
    _pod, NAMES, PHASES, st.sampled_from(["n1", "n2"]), st.sampled_from([None, "web", "db"])
)


def histories(objects: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[list[Any]]:
    """What a live view receives: watch events and whole lists, in any order."""
    return st.lists(
        st.one_of(
            st.tuples(st.sampled_from(["ADDED", "MODIFIED", "DELETED"]), objects),
            st.tuples(st.just("LIST"), st.lists(objects, max_size=6)),
        ),
        max_size=30,
    )


def replayed(kind: str, history: list[tuple[str, Any]]) -> Iterator[tuple[ClusterCache, Any]]:
    """The cache, and the objects of ``kind`` it holds, after each step of ``history``."""
    cache = ClusterCache()
    for step, payload in history:
        if step == "LIST":
            cache.replace(kind, payload, "1")
        else:
            cache.apply(kind, step, payload)
        yield cache, cache.of(kind)


@given(histories(pods))
def test_running_pods_and_node_index_match_a_recount(sequence: list[tuple[str, Any]]) -> None:
    for cache, held in replayed("pods", sequence):
        assert cache.pods_running == sum(p["status"]["phase"] == RUNNING for p in held.values())
        for node in ("n1", "n2"):
            expected = sorted(k for k, p in held.items() if p["spec"]["nodeName"] == node)
            assert [f"ns/{p['metadata']['name']}" for p in cache.pods_on(node)] == expected
        assert all("managedFields" not in p["metadata"] for p in held.values())
        assert sum(len(c.pods) for c in cache.workloads.values()) == len(held)


KINDS = st.sampled_from(["Normal", "Warning"])
STAMPS = st.sampled_from([None, "2026-11-26T11:50:00Z", "2026-11-26T11:59:00Z", "not a time"])


def _event(name: str, kind: str, last: str | None, event_time: str | None) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "ns"}, "type": kind,
            "lastTimestamp": last, "eventTime": event_time}  # fmt: skip


events = st.builds(_event, NAMES, KINDS, STAMPS, STAMPS)


@given(histories(events))
def test_event_times_and_warnings_match_the_events_held(sequence: list[tuple[str, Any]]) -> None:
    for cache, held in replayed("events", sequence):
        assert cache.event_moments == {key: event_moment(e) for key, e in held.items()}
        assert cache.warnings == {key for key, e in held.items() if e["type"] == "Warning"}
