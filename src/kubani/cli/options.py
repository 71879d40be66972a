"""Options several commands share, each defined once (Typer annotations), and what they
turn into for the layers below."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from kubani.vocabulary import PeerSource

if TYPE_CHECKING:
    from kubani.tailscale.discover import DiscoveryOptions

SourceOption = Annotated[
    PeerSource,
    typer.Option(
        "--source",
        "-s",
        help="cli: local `tailscale status --json`; api: Tailscale API v2 (TAILSCALE_API_KEY or "
        "TAILSCALE_OAUTH_CLIENT_ID/SECRET); headscale: HEADSCALE_URL + HEADSCALE_API_KEY.",
    ),
]
TailscaleBinOption = Annotated[
    str | None,
    typer.Option(
        "--tailscale-bin",
        help="Path of the tailscale CLI (default: $KUBANI_TAILSCALE_BIN or PATH).",
    ),
]
StatusFileOption = Annotated[
    Path | None,
    typer.Option("--status-file", help="Read a saved `tailscale status --json` instead."),
]
TailnetOption = Annotated[
    str, typer.Option("--tailnet", help="Tailnet name for the API ('-' = the key's own).")
]
ApiUrlOption = Annotated[
    str | None,
    typer.Option(
        "--api-url", help="Tailscale API base URL (default: $TAILSCALE_BASE_URL or SaaS)."
    ),
]
HeadscaleUrlOption = Annotated[
    str | None, typer.Option("--headscale-url", help="headscale URL (default: $HEADSCALE_URL).")
]
TimeoutOption = Annotated[float, typer.Option("--timeout", help="Seconds to wait for a reply.")]


def discovery_options(
    source: PeerSource,
    tailscale_bin: str | None = None,
    status_file: Path | None = None,
    tailnet: str = "-",
    api_url: str | None = None,
    headscale_url: str | None = None,
    timeout: float = 10.0,
) -> DiscoveryOptions:
    """What the tailnet options given on the command line ask for (the others: defaults)."""
    from kubani.tailscale.discover import DiscoveryOptions

    return DiscoveryOptions(
        source=source,
        tailscale_bin=tailscale_bin,
        status_file=status_file,
        tailnet=tailnet,
        api_url=api_url,
        headscale_url=headscale_url,
        timeout=timeout,
    )


TreeOption = Annotated[
    Path | None,
    typer.Option("--path", help="The tree (default: the project's gitops/).", show_default=False),
]
