"""HubSpot emulator (facts: ../shared/docs/platforms/hubspot.md; its section 10 is the checklist).

Foundation scope: authentication, the rate limits with their headers and 429 body, the error shape
and the account-details probe. The CRM, email-events, properties and OAuth routes are added by the
HubSpot issue on top of this class.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, ClassVar

from aiohttp import web

from sandbox.platform import PRINCIPAL, PlatformEmulator, RateRule, json_response
from sandbox.ratelimit import LimitDecision, RollingWindowPolicy

__all__ = ["HubSpotEmulator"]

# hubspot.md §5: Free/Starter 100 requests per 10 s rolling, per app; Professional/Enterprise 190.
TIER_LIMITS = {"free": 100, "starter": 100, "professional": 190, "enterprise": 190}
DAILY_LIMITS = {"free": 250_000, "starter": 250_000, "professional": 625_000, "enterprise": 1_000_000}
SANDBOX_TOKEN = "pat-na1-sandbox-0000-hubspot"
SANDBOX_PORTAL_ID = 6748263


class HubSpotEmulator(PlatformEmulator):
    name: ClassVar[str] = "hubspot"
    default_port: ClassVar[int] = 8701

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tier: str = self.options.extra.get("tier", "free")
        if self.tier not in TIER_LIMITS:
            raise ValueError(f"unknown HubSpot tier {self.tier!r}; known: {sorted(TIER_LIMITS)}")
        self.private_app_token: str = self.options.extra.get("token", SANDBOX_TOKEN)
        self.ten_secondly = RollingWindowPolicy("TEN_SECONDLY_ROLLING", TIER_LIMITS[self.tier], 10.0)
        self.daily_limit = DAILY_LIMITS[self.tier]
        self.daily_used = 0

    # --- HTTP plumbing -------------------------------------------------------------------

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/account-info/v3/details", self.account_details)

    def authenticate(self, request: web.Request) -> web.StreamResponse | None:
        # hubspot.md §1: Authorization: Bearer only (private-app token or OAuth access token).
        header = request.headers.get("Authorization", "")
        token = header[7:] if header.startswith("Bearer ") else None
        if token is None or not self.token_is_valid(token):
            return json_response(
                {
                    "status": "error",
                    # hubspot.md §10.1: wording from a public mock (unconfirmed).
                    "message": "Authentication credentials not found. This API supports OAuth 2.0 authentication.",
                    "correlationId": str(uuid.uuid4()),
                    "category": "INVALID_AUTHENTICATION",
                },
                status=401,
            )
        request[PRINCIPAL] = f"portal:{SANDBOX_PORTAL_ID}"
        return None

    def token_is_valid(self, token: str) -> bool:
        return token == self.private_app_token

    def rate_rules(self, request: web.Request) -> Sequence[RateRule]:
        return (RateRule(self.ten_secondly, request[PRINCIPAL]),)

    def too_many_requests(
        self, request: web.Request, decision: LimitDecision | None, retry_after: float | None
    ) -> web.StreamResponse:
        # hubspot.md §5: the real 429 body; Retry-After is not guaranteed.
        headers = {"Retry-After": str(max(1, round(retry_after)))} if retry_after is not None and decision is None else {}
        return json_response(
            {
                "status": "error",
                "message": "You have reached your ten_secondly_rolling limit.",
                "errorType": "RATE_LIMIT",
                "correlationId": str(uuid.uuid4()),
                "policyName": "TEN_SECONDLY_ROLLING",
                "groupName": f"publicapi:private-app-api-calls-ten-secondly:{SANDBOX_PORTAL_ID}",
            },
            status=429,
            headers=headers,
        )

    def error_response(self, request: web.Request, status: int, message: str) -> web.StreamResponse:
        # hubspot.md §5: SPEC Error requires category, correlationId, message; plus "status":"error".
        category = {400: "VALIDATION_ERROR", 404: "OBJECT_NOT_FOUND", 409: "CONFLICT"}.get(status, "ERROR")
        return json_response(
            {"status": "error", "message": message, "correlationId": str(uuid.uuid4()), "category": category},
            status=status,
        )

    def decorate(self, request: web.Request, response: web.StreamResponse, decisions: Sequence[LimitDecision]) -> None:
        # hubspot.md §5: headers on normal responses (example in HubSpot/hubspot-api-python#143).
        self.daily_used += 1
        response.headers["X-HubSpot-Correlation-Id"] = str(uuid.uuid4())
        for decision in decisions:
            if decision.policy == "TEN_SECONDLY_ROLLING":
                response.headers["X-HubSpot-RateLimit-Interval-Milliseconds"] = "10000"
                response.headers["X-HubSpot-RateLimit-Max"] = str(decision.limit)
                response.headers["X-HubSpot-RateLimit-Remaining"] = str(decision.remaining)
                response.headers["X-HubSpot-RateLimit-Daily"] = str(self.daily_limit)
                response.headers["X-HubSpot-RateLimit-Daily-Remaining"] = str(max(0, self.daily_limit - self.daily_used))

    # --- routes ---------------------------------------------------------------------------

    async def account_details(self, request: web.Request) -> web.Response:
        return json_response(
            {
                "portalId": SANDBOX_PORTAL_ID,
                "accountType": "STANDARD",
                "timeZone": "US/Eastern",
                "companyCurrency": "USD",
                "additionalCurrencies": [],
                "utcOffset": "-05:00",
                "utcOffsetMilliseconds": -18000000,
                "uiDomain": "app.hubspot.com",
                "dataHostingLocation": "na1",
            }
        )

    def source_config(self, base_url: str) -> dict[str, Any]:
        return {
            "name": "hubspot",
            "platform": "hubspot",
            "base_url": base_url,
            "inline_secrets": {"token": self.private_app_token},
            "options": {"tier": self.tier},
        }
