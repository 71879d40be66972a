"""Tailnet discovery from the local CLI, the Tailscale API v2 or headscale."""

from kubani.tailscale.discover import DiscoveryOptions, discover, fetch_peers
from kubani.tailscale.parse import TailscaleError

__all__ = ["DiscoveryOptions", "TailscaleError", "discover", "fetch_peers"]
