"""Tailnet inventories over HTTP: the Tailscale API v2 and a headscale server."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kubani.tailscale.parse import TailscaleError

if TYPE_CHECKING:
    import httpx

DEFAULT_API_URL = "https://api.tailscale.com"


@dataclass(frozen=True)
class ApiCredentials:
    """An API key, or an OAuth client (id + secret) traded for a token. Never printed."""

    api_key: str | None = None
    client_id: str | None = None
    client_secret: str | None = None

    @classmethod
    def from_env(cls) -> ApiCredentials:
        return cls(
            api_key=os.environ.get("TAILSCALE_API_KEY"),
            client_id=os.environ.get("TAILSCALE_OAUTH_CLIENT_ID"),
            client_secret=os.environ.get("TAILSCALE_OAUTH_CLIENT_SECRET"),
        )

    def __repr__(self) -> str:
        return "ApiCredentials(<redacted>)"


def _fail(what: str, response: httpx.Response, fix: str | None) -> TailscaleError:
    try:
        body = response.json()
        message = body.get("message") or body.get("error") or ""
    except ValueError:
        message = response.text[:200]
    detail = f"HTTP {response.status_code}" + (f": {message}" if message else "")
    return TailscaleError(what, detail, fix)


def _get_json(client: httpx.Client, url: str, token: str, service: str, auth_fix: str) -> Any:
    import httpx

    try:
        response = client.get(url, headers={"Authorization": f"Bearer {token}"})
    except httpx.TimeoutException:
        raise TailscaleError(
            f"{service} did not answer",
            f"no reply from {url.split('?', maxsplit=1)[0]} within {client.timeout.read} s",
            "check the network, or raise --timeout",
        ) from None
    except httpx.HTTPError as exc:
        raise TailscaleError(
            f"cannot reach {service}", f"{type(exc).__name__}: {exc}", "check the URL and network"
        ) from None
    if response.status_code in (401, 403):
        raise _fail(f"{service} refused the credentials", response, auth_fix)
    if response.status_code == 404:
        raise _fail(f"{service} has no such resource", response, "check --tailnet / the URL")
    if response.status_code >= 400:
        raise _fail(f"{service} request failed", response, "retry later")
    try:
        return response.json()
    except ValueError:
        raise TailscaleError(f"{service} sent a reply that is not JSON", url, None) from None


def _oauth_token(client: httpx.Client, base: str, credentials: ApiCredentials) -> str:
    import httpx

    url = f"{base}/api/v2/oauth/token"
    try:
        response = client.post(
            url,
            data={
                "client_id": credentials.client_id or "",
                "client_secret": credentials.client_secret or "",
                "grant_type": "client_credentials",
            },
        )
    except httpx.TimeoutException:
        raise TailscaleError(
            "the Tailscale OAuth endpoint did not answer", f"no reply from {url}", None
        ) from None
    except httpx.HTTPError as exc:
        raise TailscaleError("cannot reach the Tailscale API", str(exc), None) from None
    if response.status_code >= 400:
        raise _fail(
            "Tailscale refused the OAuth client",
            response,
            "check TAILSCALE_OAUTH_CLIENT_ID/SECRET; the client needs the devices:core:read scope",
        )
    token = response.json().get("access_token")
    if not token:
        raise TailscaleError("Tailscale OAuth reply has no access_token", url, None)
    return str(token)


def fetch_api_devices(
    credentials: ApiCredentials,
    tailnet: str = "-",
    base_url: str | None = None,
    timeout: float = 10.0,
) -> Any:
    import httpx

    base = (base_url or os.environ.get("TAILSCALE_BASE_URL") or DEFAULT_API_URL).rstrip("/")
    with httpx.Client(timeout=timeout) as client:
        if credentials.api_key:
            token = credentials.api_key
        elif credentials.client_id and credentials.client_secret:
            token = _oauth_token(client, base, credentials)
        else:
            raise TailscaleError(
                "no Tailscale API credentials",
                "neither an API key nor an OAuth client is set",
                "set TAILSCALE_API_KEY, or TAILSCALE_OAUTH_CLIENT_ID and "
                "TAILSCALE_OAUTH_CLIENT_SECRET",
            )
        url = f"{base}/api/v2/tailnet/{tailnet}/devices?fields=all"
        return _get_json(
            client,
            url,
            token,
            "the Tailscale API",
            "create an API key (Settings > Keys) and set TAILSCALE_API_KEY",
        )


def fetch_headscale_nodes(
    url: str | None = None, api_key: str | None = None, timeout: float = 10.0
) -> Any:
    import httpx

    base = url or os.environ.get("HEADSCALE_URL")
    key = api_key or os.environ.get("HEADSCALE_API_KEY")
    if not base or not key:
        raise TailscaleError(
            "headscale is not configured",
            "HEADSCALE_URL and HEADSCALE_API_KEY are both needed",
            "create a key with `headscale apikeys create` and export both variables",
        )
    with httpx.Client(timeout=timeout) as client:
        return _get_json(
            client,
            f"{base.rstrip('/')}/api/v1/node",
            key,
            "headscale",
            "create a new key with `headscale apikeys create`",
        )
