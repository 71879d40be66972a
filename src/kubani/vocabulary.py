"""Kubani's terms, each spelled once: node roles and where the inventory keeps them, and the
sources a tailnet's devices are read from. Standard library only, so that command-line
options, models and the TUI can all use it without importing anything heavy."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    CONTROL_PLANE = "control-plane"
    WORKER = "worker"

    @property
    def group(self) -> str:
        """The inventory group that holds nodes of this role."""
        return "control_plane" if self is Role.CONTROL_PLANE else "workers"

    @classmethod
    def from_group(cls, group: str) -> Role:
        return cls.CONTROL_PLANE if group == "control_plane" else cls.WORKER


class PeerSource(StrEnum):
    """Where a tailnet's device list comes from."""

    CLI = "cli"  # this machine's `tailscale status --json`
    API = "api"  # the Tailscale API v2
    HEADSCALE = "headscale"  # a headscale server's API
