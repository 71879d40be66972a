"""Cluster-wide settings: the inventory's ``all`` variables."""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictInt, field_validator

from kubani.models.names import dns_label, is_dns_name
from kubani.vocabulary import DEFAULT_CLUSTER_NAME, TAILNET_V4, TAILNET_V6

DEFAULT_TAILNET_V4 = ipaddress.IPv4Network(TAILNET_V4)
DEFAULT_TAILNET_V6 = ipaddress.IPv6Network(TAILNET_V6)
DEFAULT_K3S_VERSION = "v1.35.4+k3s1"
# Where K3s serves the Kubernetes API (its supervisor port) on every control plane.
K3S_API_PORT = 6443

# A K3s release tag, v1.35.4+k3s1 (ASCII digits: \d would take any script's).
K3S_RELEASE = re.compile(r"^v[0-9]+\.[0-9]+\.[0-9]+\+k3s[0-9]+$")
_SCP_LIKE = re.compile(r"^(?P<user>[\w.-]+)@(?P<host>[\w.-]+):(?P<path>[^/].*)$")


class ClusterConfig(BaseModel):
    """Settings shared by every node. Unknown keys are kept (they are the user's)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    cluster_name: str = DEFAULT_CLUSTER_NAME
    k3s_version: str = DEFAULT_K3S_VERSION
    tailscale_network: ipaddress.IPv4Network = DEFAULT_TAILNET_V4
    tailscale_network_v6: ipaddress.IPv6Network = DEFAULT_TAILNET_V6
    api_endpoint: str | None = None
    git_repo_url: str | None = None
    git_branch: str = "main"
    git_path: str = "gitops/flux-system"
    flux_namespace: str = "flux-system"
    gpu_time_slicing_replicas: Annotated[StrictInt, Field(ge=1, le=64)] = 4

    @field_validator("cluster_name", "flux_namespace")
    @classmethod
    def _dns_label(cls, value: str) -> str:
        return dns_label(value)

    @field_validator("k3s_version")
    @classmethod
    def _k3s_version(cls, value: str) -> str:
        if not K3S_RELEASE.match(value):
            raise ValueError(f"{value!r} is not a K3s release tag such as {DEFAULT_K3S_VERSION}")
        return value

    @field_validator("api_endpoint")
    @classmethod
    def _api_endpoint(cls, value: str | None) -> str | None:
        """A name or address the playbooks and kubeconfigs put in https://...:6443 (and in
        the API server's certificate)."""
        if not value or is_dns_name(value.lower()):  # empty: not set, as the playbooks read it
            return value
        try:
            address = ipaddress.ip_address(value)
        except ValueError:
            raise ValueError(
                f"{value!r} is not a DNS name or an IP address; write the name alone, without "
                f"a scheme, port or path (Kubani reaches the API at https://NAME:{K3S_API_PORT})"
            ) from None
        if address.version == 6:
            raise ValueError(
                f"{value} is an IPv6 address; the API server listens on the tailnet's IPv4 "
                "addresses: give an IPv4 address or a DNS name"
            )
        return value

    @field_validator("git_repo_url")
    @classmethod
    def _git_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        scp = _SCP_LIKE.match(value)
        if scp:
            raise ValueError(
                f"{value!r} is scp-like, which Flux does not accept; "
                f"write ssh://{scp['user']}@{scp['host']}/{scp['path']}"
            )
        if not value.startswith(("https://", "http://", "ssh://")):
            raise ValueError(f"{value!r} must start with https://, http:// or ssh://")
        return value

    @field_validator("git_branch")
    @classmethod
    def _branch(cls, value: str) -> str:
        if not value or value.startswith("-") or " " in value or ".." in value:
            raise ValueError(f"{value!r} is not a valid git branch name")
        return value
