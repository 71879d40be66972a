"""Tailnet inventories over HTTP: the Tailscale API v2 and a headscale server."""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from kubani import jsonsafe
from kubani.tailscale.parse import TailscaleError
from kubani.vocabulary import HEADSCALE_API_KEY_VARIABLE, HEADSCALE_URL_VARIABLE

if TYPE_CHECKING:
    import httpx

DEFAULT_API_URL = "https://api.tailscale.com"
# A minted join key is single-use and lives this long: long enough for one provisioning run.
AUTH_KEY_LIFETIME = timedelta(minutes=30)
# The headscale user that owns the nodes Kubani joins (tagged keys need one before 0.27).
HEADSCALE_USER = "kubani"
# A rate-limited call is tried again this many times, waiting what the server asks (at most
# RATE_LIMIT_WAIT_MAX_S seconds each time).
RATE_LIMIT_RETRIES = 2
RATE_LIMIT_WAIT_MAX_S = 30.0


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


class FieldsRefused(TailscaleError):
    """The API will not give every field of the devices (then the default ones will do)."""


class NoSuchResource(TailscaleError):
    """HTTP 404: the server has no such path (an older release may have another)."""


def error_text(response: httpx.Response) -> str:
    """What an error reply says, whatever its shape: a JSON object (Tailscale's ``message``,
    gRPC-gateway's ``message``/``error``, problem+json's ``detail``/``title``), a JSON string,
    an HTML page (a proxy's, a login page), or plain text; one line, at most 200 characters."""
    try:
        body: Any = jsonsafe.loads(response.content)
    except ValueError:
        body = None
    if isinstance(body, dict):
        found = next((body[k] for k in ("message", "detail", "error", "title") if body.get(k)), "")
        text = found if isinstance(found, str) else str(found)
    elif isinstance(body, str):
        text = body
    else:
        raw = response.text
        if "<html" in raw[:500].lower() or "<!doctype" in raw[:500].lower():
            title = re.search(r"<title[^>]*>(.*?)</title>", raw, re.I | re.S)
            text = "an HTML page" + (f" ({title.group(1).strip()})" if title else "")
        else:
            text = raw
    return " ".join(text.split())[:200]


def _fail(what: str, response: httpx.Response, fix: str | None) -> TailscaleError:
    message = error_text(response)
    detail = f"HTTP {response.status_code}" + (f": {message}" if message else "")
    return TailscaleError(what, detail, fix)


def _get_json(client: httpx.Client, url: str, token: str, service: str, auth_fix: str) -> Any:
    return _request(client, "GET", url, token, service, auth_fix)


def _retry_after(response: httpx.Response) -> float:
    """Seconds a 429 asks to wait (Retry-After in seconds; 1 when it does not say)."""
    try:
        return max(0.0, float(response.headers.get("Retry-After", "1")))
    except ValueError:
        return 1.0


def _request(
    client: httpx.Client,
    method: str,
    url: str,
    token: str,
    service: str,
    auth_fix: str,
    body: Any = None,
    rate_limit_retries: int = 0,
) -> Any:
    import httpx

    try:
        for attempt in range(rate_limit_retries + 1):
            response = client.request(
                method, url, headers={"Authorization": f"Bearer {token}"}, json=body
            )
            wait = _retry_after(response)
            if (
                response.status_code != 429
                or attempt == rate_limit_retries
                or wait > RATE_LIMIT_WAIT_MAX_S
            ):
                break
            time.sleep(wait)
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
    if (
        response.status_code in (400, 403)
        and "fields=all" in url
        and "field" in (error_text(response).lower())
    ):
        raise FieldsRefused(f"{service} refused fields=all", error_text(response), None)
    if response.status_code in (401, 403):
        raise _fail(f"{service} refused the credentials", response, auth_fix)
    if response.status_code == 404:
        failed = _fail(f"{service} has no such resource", response, "check --tailnet / the URL")
        raise NoSuchResource(failed.what, failed.why, failed.fix)
    if response.status_code >= 400:
        raise _fail(f"{service} request failed", response, "retry later")
    if method != "GET" and not response.content:
        return None
    try:
        return jsonsafe.loads(response.content)
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
    try:
        reply: Any = jsonsafe.loads(response.content)
    except ValueError:
        reply = None
    token = reply.get("access_token") if isinstance(reply, dict) else None
    if not token or not isinstance(token, str):
        raise TailscaleError(
            "the Tailscale OAuth endpoint sent no token",
            f"{url} answered HTTP {response.status_code} with {error_text(response) or 'nothing'}",
            "check TAILSCALE_BASE_URL (it must be the API, not the admin console)",
        )
    return token


def fetch_api_devices(
    credentials: ApiCredentials,
    tailnet: str = "-",
    base_url: str | None = None,
    timeout: float = 10.0,
) -> Any:
    import httpx

    base = _api_base(base_url)
    with httpx.Client(timeout=timeout) as client:
        token = _api_token(client, base, credentials)
        url = f"{base}/api/v2/tailnet/{tailnet}/devices"
        try:
            return _get_json(client, f"{url}?fields=all", token, "the Tailscale API", _AUTH_FIX)
        except FieldsRefused:
            # Some tailnets (devices shared in from another one) refuse fields=all: the
            # default fields still list every device. A real refusal fails here again.
            return _get_json(client, url, token, "the Tailscale API", _AUTH_FIX)


_AUTH_FIX = "create an API key (Settings > Keys) and set TAILSCALE_API_KEY"


def _api_base(base_url: str | None) -> str:
    return (base_url or os.environ.get("TAILSCALE_BASE_URL") or DEFAULT_API_URL).rstrip("/")


def _api_token(client: httpx.Client, base: str, credentials: ApiCredentials) -> str:
    if credentials.api_key:
        return credentials.api_key
    if credentials.client_id and credentials.client_secret:
        return _oauth_token(client, base, credentials)
    raise TailscaleError(
        "no Tailscale API credentials",
        "neither an API key nor an OAuth client is set",
        "set TAILSCALE_API_KEY, or TAILSCALE_OAUTH_CLIENT_ID and TAILSCALE_OAUTH_CLIENT_SECRET",
    )


def fetch_api_policy(
    credentials: ApiCredentials,
    tailnet: str = "-",
    base_url: str | None = None,
    timeout: float = 10.0,
) -> Any:
    """The tailnet's policy file, as JSON (the API drops the comments)."""
    import httpx

    base = _api_base(base_url)
    with httpx.Client(timeout=timeout, headers={"Accept": "application/json"}) as client:
        token = _api_token(client, base, credentials)
        url = f"{base}/api/v2/tailnet/{tailnet}/acl"
        return _get_json(client, url, token, "the Tailscale API", _AUTH_FIX)


def fetch_headscale_policy(
    url: str | None = None, api_key: str | None = None, timeout: float = 10.0
) -> str:
    """headscale's policy file, as its HuJSON text ("" when it has none)."""
    import httpx

    base, key = _headscale_settings(url, api_key)
    with httpx.Client(timeout=timeout) as client:
        reply = _get_json(
            client,
            f"{base}/api/v1/policy",
            key,
            "headscale",
            "create a new key with `headscale apikeys create`",
        )
    policy = reply.get("policy") if isinstance(reply, dict) else None
    if policy is not None and not isinstance(policy, str):
        raise TailscaleError("headscale sent a policy that is not text", str(type(policy)), None)
    return policy or ""


def _headscale_settings(url: str | None, api_key: str | None) -> tuple[str, str]:
    base = url or os.environ.get(HEADSCALE_URL_VARIABLE)
    key = api_key or os.environ.get(HEADSCALE_API_KEY_VARIABLE)
    if not base or not key:
        raise TailscaleError(
            "headscale is not configured",
            "HEADSCALE_URL and HEADSCALE_API_KEY are both needed",
            "create a key with `headscale apikeys create` and export both variables",
        )
    return base.rstrip("/"), key


def fetch_headscale_nodes(
    url: str | None = None, api_key: str | None = None, timeout: float = 10.0
) -> Any:
    import httpx

    base, key = _headscale_settings(url, api_key)
    fix = "create a new key with `headscale apikeys create`"
    with httpx.Client(timeout=timeout) as client:
        try:
            return _get_json(client, f"{base}/api/v1/node", key, "headscale", fix)
        except NoSuchResource:
            # headscale before 0.23 called its nodes machines (same fields, another path).
            older = _get_json(client, f"{base}/api/v1/machine", key, "headscale", fix)
            if isinstance(older, dict) and "machines" in older:
                return {"nodes": older["machines"]}
            return older


def delete_api_device(
    credentials: ApiCredentials, device_id: str, base_url: str | None = None, timeout: float = 10.0
) -> None:
    """Remove a device from the tailnet (``DELETE /api/v2/device/{id}``)."""
    import httpx

    base = _api_base(base_url)
    with httpx.Client(timeout=timeout) as client:
        token = _api_token(client, base, credentials)
        _request(client, "DELETE", f"{base}/api/v2/device/{device_id}", token,
                 "the Tailscale API", _AUTH_FIX)  # fmt: skip


def delete_headscale_node(
    node_id: str, url: str | None = None, api_key: str | None = None, timeout: float = 10.0
) -> None:
    """Remove a node from headscale (``DELETE /api/v1/node/{id}``)."""
    import httpx

    base, key = _headscale_settings(url, api_key)
    with httpx.Client(timeout=timeout) as client:
        _request(client, "DELETE", f"{base}/api/v1/node/{node_id}", key, "headscale",
                 "create a new key with `headscale apikeys create`")  # fmt: skip


@dataclass(frozen=True)
class AuthKey:
    """A single-use, pre-authorised key that joins one node with the cluster's tags. Its
    text is never shown: the repr and the str hide it."""

    secret: str = field(repr=False)
    key_id: str | None = None

    def __str__(self) -> str:
        return f"AuthKey({self.key_id or 'unnamed'}, <redacted>)"


def _expiry(lifetime: timedelta) -> str:
    return (datetime.now(UTC) + lifetime).strftime("%Y-%m-%dT%H:%M:%SZ")


def mint_api_auth_key(
    credentials: ApiCredentials,
    tags: list[str],
    tailnet: str = "-",
    base_url: str | None = None,
    timeout: float = 10.0,
    lifetime: timedelta = AUTH_KEY_LIFETIME,
) -> AuthKey:
    """A join key from the Tailscale API v2 (``POST /api/v2/tailnet/{tailnet}/keys``):
    single-use, pre-authorised, not ephemeral, with ``tags`` (an OAuth client's keys must
    carry tags its scope allows)."""
    import httpx

    base = _api_base(base_url)
    request = {
        "capabilities": {
            "devices": {
                "create": {
                    "reusable": False,
                    "ephemeral": False,
                    "preauthorized": True,
                    "tags": tags,
                }
            }
        },
        "expirySeconds": int(lifetime.total_seconds()),
        "description": "kubani node join",
    }
    with httpx.Client(timeout=timeout) as client:
        token = _api_token(client, base, credentials)
        reply = _request(
            client, "POST", f"{base}/api/v2/tailnet/{tailnet}/keys", token, "the Tailscale API",
            _AUTH_FIX + " (with the auth_keys scope for an OAuth client, and the tags it may use)",
            body=request, rate_limit_retries=RATE_LIMIT_RETRIES,
        )  # fmt: skip
    secret = reply.get("key") if isinstance(reply, dict) else None
    if not isinstance(secret, str) or not secret.startswith("tskey-"):
        raise TailscaleError(
            "the Tailscale API sent no auth key",
            "its reply to the key request has no `key` (tskey-...)",
            "check TAILSCALE_BASE_URL (it must be the API, not the admin console)",
        )
    key_id = reply.get("id")
    return AuthKey(secret, key_id if isinstance(key_id, str) else None)


_HEADSCALE_FIX = "create a new key with `headscale apikeys create`"


def _headscale_user(client: httpx.Client, base: str, key: str, name: str) -> str:
    """The id of headscale's user ``name``, created when missing."""
    reply = _get_json(client, f"{base}/api/v1/user", key, "headscale", _HEADSCALE_FIX)
    users = reply.get("users") if isinstance(reply, dict) else None
    for user in users if isinstance(users, list) else []:
        if isinstance(user, dict) and user.get("name") == name and user.get("id") is not None:
            return str(user["id"])
    created = _request(client, "POST", f"{base}/api/v1/user", key, "headscale", _HEADSCALE_FIX,
                       body={"name": name})  # fmt: skip
    user = created.get("user") if isinstance(created, dict) else None
    if not isinstance(user, dict) or user.get("id") is None:
        raise TailscaleError("headscale did not create the user", f"no id for {name!r}", None)
    return str(user["id"])


def mint_headscale_auth_key(
    tags: list[str],
    url: str | None = None,
    api_key: str | None = None,
    timeout: float = 10.0,
    lifetime: timedelta = AUTH_KEY_LIFETIME,
    user: str = HEADSCALE_USER,
) -> AuthKey:
    """A join key from headscale (``POST /api/v1/preauthkey``): single-use, not ephemeral,
    with ``tags``, owned by ``user`` (created when missing)."""
    import httpx

    base, key = _headscale_settings(url, api_key)
    with httpx.Client(timeout=timeout) as client:
        owner = _headscale_user(client, base, key, user)
        reply = _request(
            client, "POST", f"{base}/api/v1/preauthkey", key, "headscale", _HEADSCALE_FIX,
            body={"user": owner, "reusable": False, "ephemeral": False,
                  "expiration": _expiry(lifetime), "aclTags": tags},
            rate_limit_retries=RATE_LIMIT_RETRIES,
        )  # fmt: skip
    minted = reply.get("preAuthKey") if isinstance(reply, dict) else None
    secret = minted.get("key") if isinstance(minted, dict) else None
    if not isinstance(secret, str) or not secret:
        raise TailscaleError(
            "headscale sent no auth key", "its reply has no preAuthKey.key", "check HEADSCALE_URL"
        )
    key_id = minted.get("id") if isinstance(minted, dict) else None
    return AuthKey(secret, str(key_id) if key_id is not None else None)


def disable_api_key_expiry(
    credentials: ApiCredentials, device_id: str, base_url: str | None = None, timeout: float = 10.0
) -> None:
    """Key expiry off for a server (``POST /api/v2/device/{id}/key``); headscale has no such
    switch (its tagged nodes do not expire)."""
    import httpx

    base = _api_base(base_url)
    with httpx.Client(timeout=timeout) as client:
        token = _api_token(client, base, credentials)
        _request(client, "POST", f"{base}/api/v2/device/{device_id}/key", token,
                 "the Tailscale API", _AUTH_FIX, body={"keyExpiryDisabled": True},
                 rate_limit_retries=RATE_LIMIT_RETRIES)  # fmt: skip


def revoke_api_auth_key(
    credentials: ApiCredentials,
    key_id: str,
    tailnet: str = "-",
    base_url: str | None = None,
    timeout: float = 10.0,
) -> None:
    """Revoke a join key (``DELETE /api/v2/tailnet/{tailnet}/keys/{id}``); a device that
    joined with it stays."""
    import httpx

    base = _api_base(base_url)
    with httpx.Client(timeout=timeout) as client:
        token = _api_token(client, base, credentials)
        _request(client, "DELETE", f"{base}/api/v2/tailnet/{tailnet}/keys/{key_id}", token,
                 "the Tailscale API", _AUTH_FIX, rate_limit_retries=RATE_LIMIT_RETRIES)  # fmt: skip


def expire_headscale_auth_key(
    key_id: str, url: str | None = None, api_key: str | None = None, timeout: float = 10.0
) -> None:
    """Expire a join key in headscale (``POST /api/v1/preauthkey/expire``); a node that
    joined with it stays."""
    import httpx

    base, key = _headscale_settings(url, api_key)
    with httpx.Client(timeout=timeout) as client:
        _request(client, "POST", f"{base}/api/v1/preauthkey/expire", key, "headscale",
                 _HEADSCALE_FIX, body={"id": key_id})  # fmt: skip
