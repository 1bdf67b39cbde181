"""Mailchimp emulator under /3.0 (facts: ../shared/docs/platforms/mailchimp.md; §14 is the checklist).

Foundation scope: Basic and Bearer auth, the 10-simultaneous-connections limit, problem+json
errors and ``/ping``. Lists, members, merge fields, tags, batches and reports are added by the
Mailchimp issue on top of this class.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Sequence
from typing import Any, ClassVar

from aiohttp import web

from sandbox.platform import PRINCIPAL, PlatformEmulator, RateRule, json_response
from sandbox.ratelimit import ConcurrencyPolicy, LimitDecision

__all__ = ["MailchimpEmulator"]

SANDBOX_API_KEY = "0123456789abcdef0123456789abcdef-us6"
# mailchimp.md §9: "10 simultaneous connections per user"; the 11th gets 429.
CONCURRENT_CONNECTIONS = 10
PROBLEM_JSON = "application/problem+json"
ERROR_TYPE = "https://mailchimp.com/developer/marketing/docs/errors/"
TITLES = {
    400: "Bad Request",
    401: "API Key Invalid",
    403: "Forbidden",
    404: "Resource Not Found",
    405: "Method Not Allowed",
    429: "TooManyRequests",
    500: "InternalServerError",
}


class MailchimpEmulator(PlatformEmulator):
    name: ClassVar[str] = "mailchimp"
    default_port: ClassVar[int] = 8702

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.api_key: str = self.options.extra.get("api_key", SANDBOX_API_KEY)
        self.connections = ConcurrencyPolicy("simultaneous_connections", CONCURRENT_CONNECTIONS)

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/3.0/ping", self.ping)

    def authenticate(self, request: web.Request) -> web.StreamResponse | None:
        # mailchimp.md §1: Basic with any username and the key as password, or Bearer <key>.
        key = _key_from(request.headers.get("Authorization", ""))
        if key != self.api_key:
            return self.problem(
                401, "Your request did not include an API key." if key is None else "The API key provided is invalid."
            )
        request[PRINCIPAL] = f"user:{self.api_key.rsplit('-', 1)[0][:6]}"
        return None

    def rate_rules(self, request: web.Request) -> Sequence[RateRule]:
        return (RateRule(self.connections, request[PRINCIPAL]),)

    def too_many_requests(
        self, request: web.Request, decision: LimitDecision | None, retry_after: float | None
    ) -> web.StreamResponse:
        # mailchimp.md §9: no documented Retry-After; the message of the concurrency 429.
        return self.problem(429, "You have exceeded the limit of 10 simultaneous connections.")

    def error_response(self, request: web.Request, status: int, message: str) -> web.StreamResponse:
        return self.problem(status, message)

    def problem(self, status: int, detail: str, *, title: str | None = None, errors: list[dict[str, str]] | None = None) -> web.Response:
        # mailchimp.md §9: application/problem+json with type, title, status, detail, instance.
        body: dict[str, Any] = {
            "type": ERROR_TYPE,
            "title": title or TITLES.get(status, "Error"),
            "status": status,
            "detail": detail,
            "instance": str(uuid.uuid4()),
        }
        if errors is not None:
            body["errors"] = errors
        return json_response(body, status=status, content_type=PROBLEM_JSON, headers={"X-Request-Id": str(uuid.uuid4())})

    async def ping(self, request: web.Request) -> web.Response:
        return json_response({"health_status": "Everything's Chimpy!"})

    def source_config(self, base_url: str) -> dict[str, Any]:
        return {
            "name": "mailchimp",
            "platform": "mailchimp",
            "base_url": f"{base_url}/3.0",
            "inline_secrets": {"api_key": self.api_key},
            "options": {},
        }


def _key_from(header: str) -> str | None:
    if header.startswith("Bearer "):
        return header[7:] or None
    if header.startswith("Basic "):
        try:
            decoded = base64.b64decode(header[6:], validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        _, _, password = decoded.partition(":")
        return password or None
    return None
