"""The Mailchimp connector (Marketing API 3.0 through ``mailchimp-marketing`` 3.0.80).

Facts: ../shared/docs/platforms/mailchimp.md (cited as "mailchimp.md §N" beside the code that
depends on them).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar

import httpx

from connectors.base import CheckResult, Connector, PullBatch, PushReport, ScoreUpdate, SourceSettings
from connectors.errors import AuthError, ConfigError, ConnectorError, RateLimited, RetriableError
from connectors.mailchimp.sdk import build_sdk_client, sdk_outcome
from connectors.records import Platform

__all__ = ["MailchimpConnector"]

log = logging.getLogger("leadsync.connectors.mailchimp")

API_KEY_SECRET = "api_key"
# mailchimp.md §9: 10 simultaneous connections per user; never more.
MAX_CONCURRENCY = 10


class MailchimpConnector(Connector):
    platform: ClassVar[Platform] = Platform.MAILCHIMP

    def __init__(self, settings: SourceSettings, *, transport: httpx.BaseTransport | None = None) -> None:
        super().__init__(settings, transport=transport)
        api_key = settings.secrets.get(API_KEY_SECRET)
        if not api_key:
            raise ConfigError(
                f"source {settings.name!r}: the Mailchimp API key is not set (environment variable {self._key_variable()})",
                key=f"sources.{settings.name}",
            )
        self.concurrency = max(1, min(MAX_CONCURRENCY, int(settings.options.get("concurrency") or MAX_CONCURRENCY)))
        self.sdk = build_sdk_client(
            api_key=api_key,
            host=settings.base_url,
            max_connections=self.concurrency,
            timeout_s=settings.timeout_s,
        )

    def __repr__(self) -> str:
        return f"MailchimpConnector(source={self.settings.name!r})"

    def _key_variable(self) -> str:
        return self.settings.secret_names.get(API_KEY_SECRET, "the api_key secret")

    def _auth_error(self, status: int) -> AuthError:
        return AuthError(
            f"source {self.settings.name!r}: Mailchimp refused the API key (HTTP {status}); check the "
            f"environment variable {self._key_variable()} and that its user may use the API",
            source=self.settings.name,
            status=status,
        )

    # --- Connector --------------------------------------------------------------------------

    def check(self) -> CheckResult:
        # mailchimp.md §1: GET /ping is the health check; a bad key answers 401 "API Key Invalid".
        result, failure = sdk_outcome(self.sdk.ping.get)
        if failure is None:
            return CheckResult(ok=True, detail=str((result or {}).get("health_status", "ok")))
        if failure.status in (401, 403) and failure.body is not None:
            raise self._auth_error(failure.status)
        if failure.status is None:
            raise RetriableError(
                f"source {self.settings.name!r}: cannot reach Mailchimp: {type(failure.exception).__name__}",
                source=self.settings.name,
            )
        if failure.status in (403, 429):  # mailchimp.md §9: bodiless 403/429 mean "too many connections"
            raise RateLimited(f"source {self.settings.name!r}: Mailchimp is rate limiting", source=self.settings.name)
        raise ConnectorError(
            f"source {self.settings.name!r}: Mailchimp ping answered HTTP {failure.status}",
            source=self.settings.name,
            status=failure.status,
        )

    def streams(self) -> Sequence[str]:
        return ("members", "email_activity")

    def pull(self, stream: str, cursor: Any, *, full: bool = False) -> Iterator[PullBatch]:
        raise NotImplementedError("Mailchimp pull is being written (issue 4)")

    def ensure_fields(self) -> None:
        raise NotImplementedError("Mailchimp write-back is being written (issue 4)")

    def push(self, updates: Sequence[ScoreUpdate]) -> PushReport:
        raise NotImplementedError("Mailchimp write-back is being written (issue 4)")

    def close(self) -> None:
        self.sdk.api_client.close()
