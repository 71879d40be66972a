"""What the live view knows: the watched objects, the polled figures, and what the user
chose to see. The app owns one; panes and detail screens read it (not the app)."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from kubani.cluster.cache import ClusterCache
from kubani.cluster.live import ClusterSource
from kubani.cluster.rows import TableRow
from kubani.cluster.status import InventoryNode
from kubani.kube.summary import internal_ip, summarise
from kubani.models.peer import TailscalePeer

# CPU samples kept per node for its trend (one per metrics poll).
CPU_SAMPLES = 12
# Nodes pinged per tailnet poll; a bigger cluster is pinged a batch at a time, in turn.
PING_BATCH = 16


@dataclass
class LiveState:
    source: ClusterSource
    refresh_s: float
    clock: Callable[[], datetime]
    inventory: list[InventoryNode] = field(default_factory=list)
    cache: ClusterCache = field(default_factory=ClusterCache)
    metrics: dict[str, dict[str, str]] | None = None
    metrics_available: bool = False
    stats: dict[str, dict[str, Any]] = field(default_factory=dict)
    peers: list[TailscalePeer] | None = None
    filter_text: str = ""
    namespace: str | None = None
    cpu_history: dict[str, deque[float]] = field(default_factory=dict)
    rtt_ms: dict[str, float] = field(default_factory=dict)  # tailnet address -> last ping
    ping_cursor: int = 0

    def passes(self, row: TableRow) -> bool:
        """The row is shown under the chosen namespace and filter."""
        if self.namespace and row.namespace is not None and row.namespace != self.namespace:
            return False
        return not self.filter_text or self.filter_text.lower() in " ".join(row.cells).lower()

    def ping_batch(self) -> list[str]:
        """The next nodes to ping: the cluster's nodes that are online on the tailnet."""
        online = {ip for peer in self.peers or [] if peer.online for ip in peer.tailscale_ips}
        nodes = self.cache.of("nodes")
        addresses = sorted({a for n in nodes.values() if (a := internal_ip(n)) in online})
        if self.ping_cursor >= len(addresses):
            self.ping_cursor = 0
        batch = addresses[self.ping_cursor : self.ping_cursor + PING_BATCH]
        self.ping_cursor += PING_BATCH
        return batch

    def nodes_at(self, addresses: list[str]) -> set[str]:
        """The names of the nodes at these tailnet addresses."""
        wanted = set(addresses)
        nodes = self.cache.of("nodes")
        return {name for name, node in nodes.items() if internal_ip(node) in wanted}

    def take_round_trips(self, pinged: list[str], answered: dict[str, float]) -> None:
        """A batch's answers; a node that did not answer shows no time (none is stale)."""
        for address in pinged:
            if address in answered:
                self.rtt_ms[address] = answered[address]
            else:
                self.rtt_ms.pop(address, None)

    def take_metrics(self, metrics: dict[str, dict[str, str]] | None) -> None:
        """A metrics poll's answer; each node's CPU fraction joins its trend."""
        self.metrics = metrics
        self.metrics_available = metrics is not None
        if metrics is None:
            return
        nodes = self.cache.of("nodes")
        for name, usage in metrics.items():
            node = nodes.get(name)
            if node is None:
                continue
            percent = summarise(node, usage).cpu_percent
            if percent is not None:
                samples = self.cpu_history.setdefault(name, deque(maxlen=CPU_SAMPLES))
                samples.append(percent / 100.0)
        for name in [n for n in self.cpu_history if n not in nodes]:
            del self.cpu_history[name]
