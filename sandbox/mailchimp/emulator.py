"""Mailchimp emulator under /3.0 (facts: the fact sheet mailchimp.md; §14 is the checklist).

Basic auth (any username, the key as password) or Bearer; the 10-simultaneous-connections limit,
whose 429 is sometimes bodiless as the real service's is (§9); problem+json errors with
``X-Request-Id``; ``X-Trigger-Error``. The resources live in ``routes/`` (one module per resource),
the account's data in ``state``, and what the sandbox world becomes here in ``worldmap``.

Options (``SandboxServer.for_world(..., extra={"mailchimp": {...}})``):

* ``api_key``: the key the account accepts (default :data:`SANDBOX_API_KEY`);
* ``bodiless_429_every``: every n-th concurrency 429 has no body (default 2; 0 = never);
* ``processing_ms``: time each API handler takes while holding its connection slot (default 0),
  so tests and benchmarks can make the 10-connection limit bite (the server's ``latency_ms`` is
  spent before the limit is checked).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import itertools
import uuid
from collections.abc import Sequence
from typing import Any, ClassVar

from aiohttp import web

from leadsync.sandbox.mailchimp.routes import (
    automations,
    batches,
    ecommerce,
    lists,
    members,
    merge_fields,
    reports,
    segments,
)
from leadsync.sandbox.mailchimp.shapes import fmt_time, subscriber_hash
from leadsync.sandbox.mailchimp.state import MailchimpState
from leadsync.sandbox.mailchimp.worldmap import apply_changes, apply_world, build_state
from leadsync.sandbox.platform import PRINCIPAL, PlatformEmulator, RateRule, json_response
from leadsync.sandbox.ratelimit import ConcurrencyPolicy, LimitDecision

__all__ = ["MailchimpEmulator", "SANDBOX_API_KEY"]

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
# mailchimp.md §9: X-Trigger-Error makes the server answer with that error.
TRIGGERS = {
    "APIKeyMissing": (401, "API Key Missing", "Your request did not include an API key."),
    "APIKeyInvalid": (
        401,
        "API Key Invalid",
        "Your API key may be invalid, or you've attempted to access the wrong datacenter.",
    ),
    "Forbidden": (403, "Forbidden", "You don't have permission to access this resource."),
    "ResourceNotFound": (404, "Resource Not Found", "The requested resource could not be found."),
    "TooManyRequests": (
        429,
        "TooManyRequests",
        "You have exceeded the limit of 10 simultaneous connections.",
    ),
    "InternalServerError": (500, "Internal Server Error", "An unexpected internal error has occurred."),
}


class MailchimpEmulator(PlatformEmulator):
    name: ClassVar[str] = "mailchimp"
    default_port: ClassVar[int] = 8702

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.api_key: str = self.options.extra.get("api_key", SANDBOX_API_KEY)
        self.connections = ConcurrencyPolicy("simultaneous_connections", CONCURRENT_CONNECTIONS)
        self.bodiless_every = int(self.options.extra.get("bodiless_429_every", 2))
        self._limited = itertools.count(1)
        self.processing_s = float(self.options.extra.get("processing_ms", 0)) / 1000.0
        self.state = build_state(
            self.world, MailchimpState(self.clock, seed=str(getattr(self.world, "seed", "")))
        )

    # --- HTTP ---

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/3.0/ping", self.ping)
        app.router.add_get("/3.0/", self.root)
        app.router.add_get("/3.0", self.root)
        for module in (lists, members, merge_fields, reports, ecommerce, segments, batches, automations):
            app.add_routes(module.routes(self))

    def authenticate(self, request: web.Request) -> web.StreamResponse | None:
        # mailchimp.md §1: Basic with any username and the key as password, or Bearer <key>.
        key = _key_from(request.headers.get("Authorization", ""))
        # mailchimp.md §1: a key dies when its user is removed; a revoked key is an invalid one.
        if key != self.api_key or (key is not None and self.credentials_revoked):
            return self.problem(
                401,
                "Your request did not include an API key."
                if key is None
                else "The API key provided is invalid.",
                title="API Key Missing" if key is None else "API Key Invalid",
            )
        request[PRINCIPAL] = f"user:{self.api_key.rsplit('-', 1)[0][:6]}"
        trigger = request.headers.get("X-Trigger-Error")
        if trigger:
            status, title, detail = TRIGGERS.get(trigger, (400, "Bad Request", f"Unknown error {trigger!r}."))
            return self.problem(status, detail, title=title)
        return None

    def account_key(self) -> str | None:
        return self.api_key

    def request_key(self, request: web.Request) -> str | None:
        return _key_from(request.headers.get("Authorization", ""))

    def rate_rules(self, request: web.Request) -> Sequence[RateRule]:
        return (RateRule(self.connections, request[PRINCIPAL]),)

    def too_many_requests(
        self, request: web.Request, decision: LimitDecision | None, retry_after: float | None
    ) -> web.StreamResponse:
        # mailchimp.md §9: no documented Retry-After; "at exceptionally high volumes you may receive
        # an HTTP 429 or 403 without a JSON body". Every n-th concurrency 429 here has no body.
        if decision is not None and self.bodiless_every and next(self._limited) % self.bodiless_every == 0:
            return web.Response(status=429)
        return self.problem(429, "You have exceeded the limit of 10 simultaneous connections.")

    def error_response(self, request: web.Request, status: int, message: str) -> web.StreamResponse:
        return self.problem(status, message)

    def decorate(
        self, request: web.Request, response: web.StreamResponse, decisions: Sequence[LimitDecision]
    ) -> None:
        response.headers.setdefault("X-Request-Id", str(uuid.uuid4()))

    def problem(
        self,
        status: int,
        detail: str,
        *,
        title: str | None = None,
        errors: list[dict[str, str]] | None = None,
    ) -> web.Response:
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
        return json_response(
            body, status=status, content_type=PROBLEM_JSON, headers={"X-Request-Id": str(uuid.uuid4())}
        )

    async def ping(self, request: web.Request) -> web.Response:
        if self.processing_s:
            await asyncio.sleep(self.processing_s)
        return json_response({"health_status": "Everything's Chimpy!"})

    async def root(self, request: web.Request) -> web.Response:
        with self.state.lock:
            total = sum(len(a.members) for a in self.state.audiences.values())
        return json_response(
            {
                "account_id": "0123456789abcdef01234567a",
                "login_id": "12345678",
                "account_name": "Leadsync Sandbox",
                "email": "owner@leadsync.invalid",
                "first_name": "Sandbox",
                "last_name": "Owner",
                "username": "leadsync-sandbox",
                "avatar_url": "",
                "role": "owner",
                "member_since": fmt_time(getattr(self.world, "start", None) or self.clock.now()),
                "pricing_plan_type": "monthly",
                "first_payment": "",
                "account_timezone": "UTC",
                "account_industry": "Software",
                "pro_enabled": False,
                "last_login": fmt_time(self.clock.now()),
                "total_subscribers": total,
                "contact": {
                    "company": "Leadsync Sandbox",
                    "addr1": "1 Loopback Way",
                    "addr2": "",
                    "city": "Atlanta",
                    "state": "GA",
                    "zip": "30308",
                    "country": "US",
                },
                "_links": [],
            }
        )

    # --- world ---

    def apply_delta(self, delta: Any) -> None:
        with self.state.lock:
            apply_world(
                self.state,
                persons=list(getattr(delta, "persons", []) or []),
                campaigns=list(getattr(delta, "campaigns", []) or []),
                events=list(getattr(delta, "events", []) or []),
            )
            apply_changes(self.state, self.world, list(getattr(delta, "changes", []) or []))

    def inspect(self, email: str) -> dict[str, Any] | None:
        key = subscriber_hash(email)
        with self.state.lock:
            found = {
                audience.id: {
                    **audience.members[key].render(audience.id, audience.merge_fields),
                    "tags": sorted(audience.members[key].tags),
                }
                for audience in self.state.audiences.values()
                if key in audience.members
            }
        return {"lists": found} if found else None

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
