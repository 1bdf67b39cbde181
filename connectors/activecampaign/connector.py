"""The ActiveCampaign connector (API v3): pull contacts and engagement, write scores back.

Facts: ../shared/docs/platforms/activecampaign.md (cited as "activecampaign.md §N" next to the code
that depends on them).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar

import httpx

from connectors.activecampaign.auth import API_TOKEN_SECRET, ApiTokenAuth
from connectors.base import CheckResult, Connector, PullBatch, PushReport, ScoreUpdate, SourceSettings
from connectors.errors import AuthError, ConfigError, ConnectorError, RetriableError
from connectors.http import build_client, logging_hooks
from connectors.records import Platform
from connectors.redaction import Redactor

__all__ = ["ActiveCampaignConnector"]

log = logging.getLogger("leadsync.connectors.activecampaign")

# activecampaign.md §1 / §10: peers check the token with GET /users/me (spec:get-user-loggedin).
PROBE_PATH = "users/me"


class ActiveCampaignConnector(Connector):
    platform: ClassVar[Platform] = Platform.ACTIVECAMPAIGN

    def __init__(self, settings: SourceSettings, *, transport: httpx.BaseTransport | None = None) -> None:
        super().__init__(settings, transport=transport)
        if not settings.base_url:
            # activecampaign.md §1: never build the URL from the account name; use the "API URL"
            # from Settings → Developer, configured whole (e.g. https://acme.api-us1.com/api/3).
            raise ConfigError(
                "ActiveCampaign needs base_url, the full API URL from Settings > Developer "
                "(for example https://youraccount.api-us1.com/api/3)",
                key=f"sources.{settings.name}.base_url",
            )
        token = settings.secrets.get(API_TOKEN_SECRET)
        if not token:
            raise ConfigError(
                f"source {settings.name!r}: the ActiveCampaign API token is not set "
                f"(environment variable {self._token_variable()})",
                key=f"sources.{settings.name}",
            )
        self._auth = ApiTokenAuth(token)
        self.redactor = Redactor(self._auth.secrets())
        self._client: httpx.Client | None = None

    # --- plumbing ---------------------------------------------------------------------------

    def _token_variable(self) -> str:
        return self.settings.secret_names.get(API_TOKEN_SECRET, "the api_token secret")

    @property
    def client(self) -> httpx.Client:
        if self._client is None:
            base = str(self.settings.base_url).rstrip("/") + "/"
            self._client = build_client(
                base_url=base,
                auth=self._auth,
                timeout=self.settings.timeout_s,
                max_connections=5,  # activecampaign.md §8: 5 requests/second per account
                transport=self.transport,
                event_hooks=logging_hooks(log, self.redactor),
            )
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def _auth_error(self, status: int, response: httpx.Response | None = None) -> AuthError:
        return AuthError(
            f"source {self.settings.name!r}: ActiveCampaign refused the API token (HTTP {status}); "
            f"check the environment variable {self._token_variable()} and that its user may use the API",
            source=self.settings.name,
            status=status,
            response=response,
        )

    # --- Connector --------------------------------------------------------------------------

    def check(self) -> CheckResult:
        try:
            response = self.client.get(PROBE_PATH)
        except httpx.TransportError as exc:
            raise RetriableError(
                f"source {self.settings.name!r}: cannot reach ActiveCampaign at "
                f"{self.redactor.url(str(self.settings.base_url))}: {type(exc).__name__}",
                source=self.settings.name,
            ) from None
        if response.status_code in (401, 403):
            raise self._auth_error(response.status_code, response)
        if response.status_code != 200:
            raise ConnectorError(
                f"source {self.settings.name!r}: ActiveCampaign token check answered HTTP {response.status_code}",
                source=self.settings.name,
                status=response.status_code,
                response=response,
            )
        user = (response.json() or {}).get("user") or {}
        account = user.get("username") or user.get("email")
        return CheckResult(True, f"ActiveCampaign token accepted for user {account}", account=account)

    def streams(self) -> Sequence[str]:
        return ()

    def pull(self, stream: str, cursor: Any, *, full: bool = False) -> Iterator[PullBatch]:
        raise NotImplementedError(stream)

    def ensure_fields(self) -> None:
        raise NotImplementedError

    def push(self, updates: Sequence[ScoreUpdate]) -> PushReport:
        raise NotImplementedError
