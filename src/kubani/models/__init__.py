"""Pydantic models of the inventory, the cluster settings and tailnet peers."""

from kubani.models.cluster import ClusterConfig
from kubani.models.inventory import HostEntry, Inventory, build_inventory
from kubani.models.node import Node, NodeTaint
from kubani.models.peer import TailscalePeer
from kubani.models.problems import Problem, Problems, Severity

__all__ = [
    "ClusterConfig",
    "HostEntry",
    "Inventory",
    "Node",
    "NodeTaint",
    "Problem",
    "Problems",
    "Severity",
    "TailscalePeer",
    "build_inventory",
]
