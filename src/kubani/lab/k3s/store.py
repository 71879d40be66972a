"""A versioned object store with watches: the stand-in's datastore.

Each change bumps one cluster-wide resourceVersion, as etcd's revision does. Watchers get
ADDED/MODIFIED/DELETED events and can resume from a resourceVersion while it is in the
recent history; older ones get a 410 Gone, as from a real API server.
"""

from __future__ import annotations

import copy
import json
import queue
import threading
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

Key = tuple[str, str, str, str]  # (api group, plural, namespace, name)
HISTORY = 2000


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Conflict(Exception):
    """resourceVersion mismatch or an object that already exists."""


class Gone(Exception):
    """A watch asked for a resourceVersion older than the kept history."""


@dataclass
class Event:
    revision: int
    kind: str  # ADDED | MODIFIED | DELETED
    key: Key
    obj: dict[str, Any]


class Store:
    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self.lock = threading.RLock()
        self.objects: dict[Key, dict[str, Any]] = {}
        self.revision = 1
        self.history: deque[Event] = deque(maxlen=HISTORY)
        self.watchers: list[tuple[Callable[[Event], bool], queue.Queue[Event | None]]] = []
        if path is not None and path.exists():
            self._load(path)

    # ---- persistence -----------------------------------------------------------

    def _load(self, path: Path) -> None:
        raw = json.loads(path.read_text())
        self.revision = int(raw["revision"])
        for item in raw["objects"]:
            group, plural, namespace, name = item["key"]
            key = (group, plural, namespace, name)
            self.objects[key] = item["object"]

    def dump(self) -> dict[str, Any]:
        with self.lock:
            return {
                "revision": self.revision,
                "objects": [{"key": list(k), "object": v} for k, v in self.objects.items()],
            }

    def save(self) -> None:
        if self.path is None:
            return
        data = json.dumps(self.dump())
        partial = self.path.with_suffix(".partial")
        partial.write_text(data)
        partial.chmod(0o600)
        partial.replace(self.path)

    # ---- reads -----------------------------------------------------------------

    def get(self, key: Key) -> dict[str, Any] | None:
        with self.lock:
            found = self.objects.get(key)
            return copy.deepcopy(found) if found is not None else None

    def list(
        self, group: str, plural: str, namespace: str | None = None
    ) -> tuple[list[dict[str, Any]], int]:
        with self.lock:
            items = [
                copy.deepcopy(obj)
                for (g, p, ns, _), obj in self.objects.items()
                if g == group and p == plural and (namespace is None or ns == namespace)
            ]
            items.sort(key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"]))
            return items, self.revision

    # ---- writes ----------------------------------------------------------------

    def _emit(self, kind: str, key: Key, obj: dict[str, Any]) -> None:
        event = Event(self.revision, kind, key, copy.deepcopy(obj))
        self.history.append(event)
        for accepts, sink in list(self.watchers):
            if accepts(event):
                sink.put(event)

    def create(self, key: Key, obj: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            if key in self.objects:
                raise Conflict(f"{key[1]} {key[3]!r} already exists")
            self.revision += 1
            meta = obj.setdefault("metadata", {})
            meta["uid"] = meta.get("uid") or str(uuid.uuid4())
            meta["creationTimestamp"] = meta.get("creationTimestamp") or now()
            meta["resourceVersion"] = str(self.revision)
            meta["generation"] = 1
            self.objects[key] = copy.deepcopy(obj)
            self._emit("ADDED", key, obj)
            return copy.deepcopy(obj)

    def update(
        self,
        key: Key,
        obj: dict[str, Any],
        check_version: bool = True,
        bump_generation: bool = True,
    ) -> dict[str, Any]:
        with self.lock:
            current = self.objects.get(key)
            if current is None:
                raise KeyError(key)
            meta = obj.setdefault("metadata", {})
            given = meta.get("resourceVersion")
            if check_version and given and given != current["metadata"]["resourceVersion"]:
                raise Conflict(
                    "the object has been modified; please apply your changes to the latest "
                    "version and try again"
                )
            for kept in ("uid", "creationTimestamp", "namespace", "name"):
                if kept in current["metadata"]:
                    meta[kept] = current["metadata"][kept]
            generation = current["metadata"].get("generation", 1)
            if bump_generation and obj.get("spec") != current.get("spec"):
                generation += 1
            if obj == current:
                return copy.deepcopy(current)
            meta["generation"] = generation
            self.revision += 1
            meta["resourceVersion"] = str(self.revision)
            self.objects[key] = copy.deepcopy(obj)
            self._emit("MODIFIED", key, obj)
            return copy.deepcopy(obj)

    def delete(self, key: Key) -> dict[str, Any] | None:
        with self.lock:
            obj = self.objects.pop(key, None)
            if obj is None:
                return None
            self.revision += 1
            obj["metadata"]["resourceVersion"] = str(self.revision)
            self._emit("DELETED", key, obj)
            return obj

    def replace_all(self, data: dict[str, Any]) -> None:
        """Take a snapshot's content (restore), telling watchers about every change."""
        with self.lock:
            incoming: dict[Key, dict[str, Any]] = {}
            for item in data["objects"]:
                group, plural, namespace, name = item["key"]
                incoming[(group, plural, namespace, name)] = item["object"]
            for key in list(self.objects):
                if key not in incoming:
                    self.delete(key)
            for key, obj in incoming.items():
                self.revision += 1
                obj["metadata"]["resourceVersion"] = str(self.revision)
                kind = "MODIFIED" if key in self.objects else "ADDED"
                self.objects[key] = copy.deepcopy(obj)
                self._emit(kind, key, obj)

    # ---- watches ---------------------------------------------------------------

    def watch(
        self, accepts: Callable[[Event], bool], since: int | None
    ) -> tuple[queue.Queue[Event | None], Callable[[], None]]:
        """A queue of events after ``since`` (None: from now), and a function to stop."""
        sink: queue.Queue[Event | None] = queue.Queue()
        with self.lock:
            if since is not None and since < self.revision:
                oldest = self.history[0].revision if self.history else self.revision + 1
                if since + 1 < oldest:
                    raise Gone(f"too old resource version: {since} ({self.revision})")
                for event in self.history:
                    if event.revision > since and accepts(event):
                        sink.put(event)
            entry = (accepts, sink)
            self.watchers.append(entry)

        def stop() -> None:
            with self.lock:
                if entry in self.watchers:
                    self.watchers.remove(entry)
            sink.put(None)

        return sink, stop

    def iter_keys(self) -> Iterator[Key]:
        with self.lock:
            yield from list(self.objects)
