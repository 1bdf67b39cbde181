"""The HubSpot connector (facts: ../shared/docs/platforms/hubspot.md)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, ClassVar

import httpx

from connectors.base import CheckResult, Connector, PullBatch, PushReport, ScoreUpdate, SourceSettings
from connectors.errors import AuthError, ConnectorError, RetriableError
from connectors.http import build_client
from connectors.records import Platform

__all__ = ["HubSpotConnector"]

DEFAULT_BASE_URL = "https://api.hubapi.com"  # hubspot.md, "Base URL"
PROBE_PATH = "/account-info/v3/details"


class HubSpotConnector(Connector):
    platform: ClassVar[Platform] = Platform.HUBSPOT

    def __init__(self, settings: SourceSettings, *, transport: httpx.BaseTransport | None = None) -> None:
        super().__init__(settings, transport=transport)
        self.base_url = (settings.base_url or DEFAULT_BASE_URL).rstrip("/")

    def _token(self) -> str:
        token = self.settings.secrets.get("token")
        if not token:
            raise AuthError(
                f"source {self.settings.name!r}: no HubSpot token; set {self._secret_name('token')}",
                source=self.settings.name,
            )
        return token

    def _secret_name(self, key: str) -> str:
        return self.settings.secret_names.get(key, f"the {key!r} secret")

    def check(self) -> CheckResult:
        token = self._token()
        with build_client(
            base_url=self.base_url,
            auth=None,
            headers={"Authorization": f"Bearer {token}"},
            timeout=self.settings.timeout_s,
            max_connections=1,
            transport=self.transport,
        ) as client:
            try:
                response = client.get(PROBE_PATH)
            except httpx.TransportError as exc:
                raise RetriableError(f"source {self.settings.name!r}: HubSpot unreachable ({type(exc).__name__})",
                                     source=self.settings.name) from None
        if response.status_code in (401, 403):
            raise AuthError(
                f"source {self.settings.name!r}: HubSpot refused the credentials ({response.status_code}); "
                f"check {self._secret_name('token')}",
                source=self.settings.name,
                status=response.status_code,
            )
        if response.status_code != 200:
            raise ConnectorError(
                f"source {self.settings.name!r}: HubSpot probe answered {response.status_code}",
                source=self.settings.name,
                status=response.status_code,
            )
        portal = response.json().get("portalId")
        return CheckResult(ok=True, detail=f"HubSpot portal {portal} reachable", account=str(portal))

    def streams(self) -> Sequence[str]:
        return ("contacts", "email_events", "page_views", "deals")

    def pull(self, stream: str, cursor: Any, *, full: bool = False) -> Iterator[PullBatch]:
        raise NotImplementedError

    def ensure_fields(self) -> None:
        raise NotImplementedError

    def push(self, updates: Sequence[ScoreUpdate]) -> PushReport:
        raise NotImplementedError
