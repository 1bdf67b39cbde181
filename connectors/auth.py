"""Credentials as ``httpx.Auth`` flows, kept out of the client (style.md, httpx §3).

* :class:`BearerToken`: ``Authorization: Bearer <token>`` (HubSpot private-app token, hubspot.md §1;
  a Mailchimp OAuth token, mailchimp.md §1).
* :class:`BasicKey`: Basic auth with any username and the key as password (Mailchimp, mailchimp.md §1).
* :class:`HeaderToken`: the key in a named header (ActiveCampaign ``Api-Token``, activecampaign.md §1).
* :class:`OAuthRefresh`: an OAuth 2 refresh-token flow (HubSpot public apps, hubspot.md §1).

Every class has a ``__repr__`` that never shows the secret and a ``secrets()`` method listing the
values a :class:`connectors.redaction.Redactor` should mask.
"""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import httpx

from leadsync.connectors.errors import AuthError, FatalError, MalformedResponse, RateLimited, RetriableError
from leadsync.connectors.http import build_client
from leadsync.connectors.redaction import MASK, Redactor

__all__ = [
    "BasicKey",
    "BearerToken",
    "HeaderToken",
    "OAuthRefresh",
    "RefreshableAuth",
    "TokenSet",
]


@runtime_checkable
class RefreshableAuth(Protocol):
    """An auth that can fetch a new credential. ``connectors.retry`` uses it on a 401.

    ``refresh_on_401`` says whether the auth flow already refreshes and resends once by itself,
    in which case the retry policy must not refresh a second time.
    """

    refresh_on_401: bool

    def refresh(self, *, stale: str | None = None) -> str: ...


class BearerToken(httpx.Auth):
    """A static bearer token."""

    def __init__(self, token: str) -> None:
        if not token:
            raise ValueError("BearerToken needs a non-empty token")
        self._token = token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self._token}"
        yield request

    def secrets(self) -> frozenset[str]:
        return frozenset({self._token})

    def __repr__(self) -> str:
        return f"BearerToken(token='{MASK}')"


class BasicKey(httpx.Auth):
    """HTTP Basic with the API key as password; the username is ignored by the platform.

    mailchimp.md §1: "any username, key as password" (``--user 'anystring:KEY'``).
    """

    def __init__(self, key: str, *, username: str = "leadsync") -> None:
        if not key:
            raise ValueError("BasicKey needs a non-empty key")
        self._key = key
        self.username = username
        self._header = "Basic " + base64.b64encode(f"{username}:{key}".encode()).decode("ascii")

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = self._header
        yield request

    def secrets(self) -> frozenset[str]:
        # The encoded header leaks the key just as well as the key itself.
        return frozenset({self._key, self._header.split(" ", 1)[1]})

    def __repr__(self) -> str:
        return f"BasicKey(username={self.username!r}, key='{MASK}')"


class HeaderToken(httpx.Auth):
    """The key sent in a named header, e.g. ``HeaderToken("Api-Token", key)`` for ActiveCampaign."""

    def __init__(self, name: str, token: str) -> None:
        if not name or not token:
            raise ValueError("HeaderToken needs a header name and a non-empty token")
        self.name = name
        self._token = token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers[self.name] = self._token
        yield request

    def secrets(self) -> frozenset[str]:
        return frozenset({self._token})

    def __repr__(self) -> str:
        return f"HeaderToken({self.name!r}, token='{MASK}')"


@dataclass(frozen=True, slots=True)
class TokenSet:
    """What a token endpoint answered. ``expires_at`` is on the auth's ``clock`` (monotonic)."""

    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    expires_at: float | None
    scopes: tuple[str, ...] = ()
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)


class OAuthRefresh(httpx.Auth):
    """OAuth 2 refresh-token flow: a bearer token that renews itself.

    * Proactive: before each request, if the access token is within ``refresh_margin_s`` of its
      ``expires_in`` (hubspot.md §1: 1800 s now, "follow expires_in, don't hard-code"), refresh.
      The margin is capped at half the token's lifetime so short-lived tokens still get used.
    * Reactive: on a 401, refresh once and resend once (``refresh_on_401``). If another thread
      already refreshed since this request was signed, its token is reused instead.
    * Thread-safe: one lock; concurrent callers wait for a single refresh.

    The token endpoint (``token_url``, e.g. ``https://api.hubapi.com/oauth/v1/token``) gets a
    form-encoded ``grant_type=refresh_token`` POST with the client id and secret. A rotated
    ``refresh_token`` in the answer replaces the old one and is passed to ``on_refresh`` so the
    caller can persist it. Failures raise ``connectors.errors`` types: a refused refresh token is
    an :class:`AuthError`; a 5xx, 429 or dropped connection is retriable.
    """

    def __init__(
        self,
        *,
        client_id: str,
        client_secret: str,
        refresh_token: str,
        token_url: str,
        source: str,
        credential_env: str | None = None,
        access_token: str | None = None,
        expires_in: float | None = None,
        refresh_margin_s: float = 300.0,
        refresh_on_401: bool = True,
        clock: Callable[[], float] = time.monotonic,
        token_client: httpx.Client | None = None,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 30.0,
        on_refresh: Callable[[TokenSet], None] | None = None,
        redactor: Redactor | None = None,
    ) -> None:
        if not (client_id and client_secret and refresh_token and token_url):
            raise ValueError("OAuthRefresh needs client_id, client_secret, refresh_token and token_url")
        self.client_id = client_id
        self._client_secret = client_secret
        self.token_url = token_url
        self.source = source
        self.credential_env = credential_env
        self.refresh_margin_s = refresh_margin_s
        self.refresh_on_401 = refresh_on_401
        self._clock = clock
        self._token_client = token_client
        self._owns_token_client = token_client is None
        self._transport = transport
        self._timeout = timeout
        self._on_refresh = on_refresh
        self._redactor = redactor
        self._lock = threading.Lock()
        self._refresh_token = refresh_token
        self._access_token = access_token
        self._refresh_at: float | None = None
        self.refresh_count = 0
        if access_token is not None and expires_in is not None:
            self._refresh_at = self._clock() + expires_in - self._margin(expires_in)
        if redactor is not None:
            redactor.add(*self.secrets())

    # -- httpx.Auth ---------------------------------------------------------------------------

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        token = self.token()
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code == 401 and self.refresh_on_401:
            # hubspot.md §1 warns a 401 is "not a valid indicator" of expiry, so this happens once
            # per request; if the fresh token is refused too, connectors.retry raises AuthError.
            token = self.refresh(stale=token)
            request.headers["Authorization"] = f"Bearer {token}"
            yield request

    # -- public -------------------------------------------------------------------------------

    def token(self) -> str:
        """A usable access token, refreshing first when there is none or it is about to expire."""
        with self._lock:
            if self._access_token is None or (
                self._refresh_at is not None and self._clock() >= self._refresh_at
            ):
                self._refresh_locked()
            assert self._access_token is not None
            return self._access_token

    def refresh(self, *, stale: str | None = None) -> str:
        """Get a new access token now, unless the current one is already newer than ``stale``."""
        with self._lock:
            if stale is None or self._access_token in (None, stale):
                self._refresh_locked()
            assert self._access_token is not None
            return self._access_token

    def secrets(self) -> frozenset[str]:
        values = {self._client_secret, self._refresh_token}
        if self._access_token:
            values.add(self._access_token)
        return frozenset(values)

    def close(self) -> None:
        if self._owns_token_client and self._token_client is not None:
            self._token_client.close()
            self._token_client = None

    def __repr__(self) -> str:
        return (
            f"OAuthRefresh(client_id={self.client_id!r}, token_url={self.token_url!r}, "
            f"client_secret='{MASK}', refresh_token='{MASK}', access_token='{MASK}')"
        )

    # -- internals ----------------------------------------------------------------------------

    def _margin(self, lifetime: float) -> float:
        return min(self.refresh_margin_s, lifetime / 2)

    def _client(self) -> httpx.Client:
        if self._token_client is None:
            self._token_client = build_client(
                base_url="", auth=None, timeout=self._timeout, max_connections=1, transport=self._transport
            )
        return self._token_client

    def _refresh_locked(self) -> None:
        form = {
            "grant_type": "refresh_token",
            "client_id": self.client_id,
            "client_secret": self._client_secret,
            "refresh_token": self._refresh_token,
        }
        what = f"{self.source}: OAuth token refresh"
        try:
            response = self._client().post(self.token_url, data=form)
        except httpx.TransportError as exc:
            raise RetriableError(f"{what} failed: {type(exc).__name__}", source=self.source) from exc
        status = response.status_code
        if status == 429:
            raise RateLimited(f"{what} was rate limited", source=self.source, response=response)
        if status >= 500:
            raise RetriableError(
                f"{what} failed with {status}", source=self.source, status=status, response=response
            )
        if status in (400, 401, 403):
            hint = f"; re-authorise the app and update {self.credential_env}" if self.credential_env else ""
            raise AuthError(
                f"{what} was refused ({status} {_oauth_error(response)}){hint}",
                source=self.source,
                status=status,
                response=response,
            )
        if status != 200:
            raise FatalError(
                f"{what} answered {status}", source=self.source, status=status, response=response
            )
        try:
            body = response.json()
            access_token = str(body["access_token"])
        except (ValueError, KeyError, TypeError) as exc:
            raise MalformedResponse(
                f"{what} answered 200 without an access_token",
                source=self.source,
                status=status,
                response=response,
            ) from exc
        expires_in = body.get("expires_in")
        now = self._clock()
        expires_at = now + float(expires_in) if expires_in is not None else None
        self._access_token = access_token
        self._refresh_token = str(body.get("refresh_token") or self._refresh_token)
        self._refresh_at = (
            now + float(expires_in) - self._margin(float(expires_in)) if expires_in is not None else None
        )
        self.refresh_count += 1
        scopes = body.get("scopes") or body.get("scope") or ()
        tokens = TokenSet(
            access_token=access_token,
            refresh_token=self._refresh_token,
            expires_at=expires_at,
            scopes=tuple(scopes.split() if isinstance(scopes, str) else scopes),
            raw=body,
        )
        if self._redactor is not None:
            self._redactor.add(access_token, self._refresh_token)
        if self._on_refresh is not None:
            self._on_refresh(tokens)


def _oauth_error(response: httpx.Response) -> str:
    """The RFC 6749 ``error`` code (or HubSpot's ``status``), never the echoed request."""
    try:
        body = response.json()
    except ValueError:
        return "no JSON body"
    if isinstance(body, dict):
        return str(body.get("error") or body.get("status") or body.get("category") or "unknown error")
    return "unknown error"
