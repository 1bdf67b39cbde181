"""The one place ``hubspot-api-client`` is called (style.md habit 1: SDK behind a narrow adapter).

Every SDK call goes through :meth:`HubSpotSdk.call`: the shared limiter first, then the shared
retry policy (``RetryPolicy.call``), with the SDK's ``ApiException`` (status, headers, body)
turned into an ``httpx.Response`` so the same classification table decides. The SDK's own
urllib3 retries are switched off (hubspot.md §7: they skip POST by default, and a second policy
would double the waits). The SDK does not refresh OAuth tokens and API objects keep the token
they were built with (hubspot.md §1, verified), so a fresh client is built whenever the token
changes. Each API property access (``crm.contacts.batch_api``) would build a new ``ApiClient`` with
its own connection pool, so one TCP connection per request: an ``api_factory`` keeps one API
object per API class for as long as the token stays the same, and their connections are reused.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

import httpx
import urllib3
from hubspot import HubSpot
from hubspot.discovery.discovery_base import DiscoveryBase

from leadsync.connectors.ratelimit import Limiter
from leadsync.connectors.retry import RetryPolicy

__all__ = ["HubSpotSdk", "api_exception_response"]

T = TypeVar("T")


def api_exception_response(exc: BaseException, request: httpx.Request) -> httpx.Response | None:
    """An SDK ``ApiException`` (each sub-package has its own class, hubspot.md §7) as an httpx response."""
    status = getattr(exc, "status", None)
    if not isinstance(status, int) or status <= 0 or not hasattr(exc, "body"):
        return None
    headers = getattr(exc, "headers", None) or {}
    body = getattr(exc, "body", None) or b""
    content = body.encode() if isinstance(body, str) else bytes(body)
    return httpx.Response(
        status,
        headers=dict(headers.items()) if hasattr(headers, "items") else {},
        content=content,
        request=request,
    )


class HubSpotSdk:
    def __init__(
        self,
        *,
        base_url: str,
        token: Callable[[], str],
        policy: RetryPolicy,
        limiter: Limiter | None,
        timeout_s: float,
        refresh: Callable[[], None] | None = None,
    ) -> None:
        self.base_url = base_url
        self._token = token
        self.policy = policy
        self.limiter = limiter
        self.timeout_s = timeout_s
        self._refresh = refresh
        self._requests = 0
        self._count_lock = threading.Lock()
        self._client: tuple[str, HubSpot] | None = None
        self._client_lock = threading.Lock()  # push sends batches from a few threads

    @property
    def requests(self) -> int:
        """Attempts made so far (every retry counts)."""
        return self._requests

    def client(self) -> HubSpot:
        token = self._token()
        with self._client_lock:
            if self._client is not None and self._client[0] == token:
                return self._client[1]
            return self._build(token)

    def _build(self, token: str) -> HubSpot:
        apis: dict[tuple[str, str], Any] = {}

        def api_factory(package: Any, api_name: str, config: dict[str, Any]) -> Any:
            key = (package.__name__, api_name)
            if key not in apis:
                apis[key] = DiscoveryBase._default_api_factory(package, api_name, config)
            return apis[key]

        # hubspot.md §7: Configuration.host points every generated API at base_url; retries off.
        client = HubSpot(
            access_token=token,
            host=self.base_url,
            api_factory=api_factory,
            retry=urllib3.Retry(total=0, connect=0, read=0, redirect=0, status=0, raise_on_status=False),
        )
        self._client = (token, client)
        return client

    def call(self, method: str, path: str, fn: Callable[[HubSpot], T]) -> T:
        """Run ``fn(client)`` once per attempt; ``fn`` must pass ``_request_timeout``."""
        describe = httpx.Request(method, f"{self.base_url}{path}")

        def attempt() -> T:
            with self._count_lock:
                self._requests += 1
            return fn(self.client())

        return self.policy.call(
            attempt,
            describe=describe,
            to_response=lambda exc: api_exception_response(exc, describe),
            limiter=self.limiter,
            refresh_auth=self._refresh,
        )

    @property
    def timeout(self) -> tuple[float, float]:
        return (min(10.0, self.timeout_s), self.timeout_s)


def to_dict(model: Any) -> dict[str, Any]:
    return model.to_dict() if hasattr(model, "to_dict") else dict(model)
