"""ActiveCampaign emulator under /api/3 (facts: ../shared/docs/platforms/activecampaign.md, §12 checklist).

Foundation scope: the Api-Token header, 5 requests per second with Retry-After, the error shapes and
``/users/me`` (the token check peers use). Contacts, fields, tags, activities, deals and bulk import
are added by the ActiveCampaign issue on top of this class.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from aiohttp import web

from sandbox.platform import PRINCIPAL, PlatformEmulator, RateRule, json_response
from sandbox.ratelimit import LimitDecision, RollingWindowPolicy

__all__ = ["ActiveCampaignEmulator"]

SANDBOX_API_TOKEN = "5a9db2c07e3f4d1b8c6e0f2a4b7d9e1c3f5a7b9d0e2c4f6a8b1d3e5f7a9c0b2d4e6f8a1c3e5b7d"
# activecampaign.md §8: 5 requests/second per account; 429 with Retry-After and RateLimit-* headers.
REQUESTS_PER_SECOND = 5


class ActiveCampaignEmulator(PlatformEmulator):
    name: ClassVar[str] = "activecampaign"
    default_port: ClassVar[int] = 8703

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.api_token: str = self.options.extra.get("api_token", SANDBOX_API_TOKEN)
        self.per_second = RollingWindowPolicy("per_second", REQUESTS_PER_SECOND, 1.0)

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/api/3/users/me", self.users_me)

    def authenticate(self, request: web.Request) -> web.StreamResponse | None:
        # activecampaign.md §1 and §12: header Api-Token; unauthenticated → 403 {"message": ...}.
        if request.headers.get("Api-Token") != self.api_token:
            return json_response({"message": "No Result found for User with api token"}, status=403)
        request[PRINCIPAL] = "account:sandbox"
        return None

    def rate_rules(self, request: web.Request) -> Sequence[RateRule]:
        return (RateRule(self.per_second, request[PRINCIPAL]),)

    def too_many_requests(
        self, request: web.Request, decision: LimitDecision | None, retry_after: float | None
    ) -> web.StreamResponse:
        headers = {"RateLimit-Limit": str(REQUESTS_PER_SECOND), "RateLimit-Remaining": "0"}
        if retry_after is not None:
            headers["Retry-After"] = str(max(1, round(retry_after)))
        return json_response({"message": "Too Many Requests"}, status=429, headers=headers)

    def error_response(self, request: web.Request, status: int, message: str) -> web.StreamResponse:
        # activecampaign.md §8, shape 2: {"errors":[{"status","title","detail"}]}.
        return json_response({"errors": [{"status": status, "title": message, "detail": message}]}, status=status)

    def decorate(self, request: web.Request, response: web.StreamResponse, decisions: Sequence[LimitDecision]) -> None:
        for decision in decisions:
            response.headers["RateLimit-Limit"] = str(decision.limit)
            response.headers["RateLimit-Remaining"] = str(decision.remaining)

    async def users_me(self, request: web.Request) -> web.Response:
        return json_response(
            {
                "user": {
                    "username": "sandbox",
                    "firstName": "Sandbox",
                    "lastName": "User",
                    "email": "sandbox@example.com",
                    "id": "1",
                    "links": {},
                }
            }
        )

    def source_config(self, base_url: str) -> dict[str, Any]:
        return {
            "name": "activecampaign",
            "platform": "activecampaign",
            "base_url": f"{base_url}/api/3",
            "inline_secrets": {"api_token": self.api_token},
            "options": {},
        }
