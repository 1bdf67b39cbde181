"""ActiveCampaign emulator under /api/3 (facts: the fact sheet activecampaign.md, §12 checklist).

Routes (each module holds one concept):

* ``routes_contacts``: ``GET/POST /contacts`` (limit ≤ 100, offset, ``filters[updated_after|…]``,
  ``id_greater``/``id_less`` with ``orders[id]``, ``email``, ``tagid``, ``include=fieldValues``
  side-loading, ``meta.total``), ``GET/PUT /contacts/{id}``, ``POST /contact/sync`` and the
  contact's ``fieldValues``, ``contactTags``, ``trackingLogs`` and ``deals``;
* ``routes_fields``: ``/fields``, ``/fieldRels``, ``/fieldValues``, ``/tags``, ``/contactTags``;
* ``routes_engagement``: ``/activities`` and ``/deals``;
* ``routes_import``: ``/import/bulk_import`` and ``/import/info``;
* ``routes_account``: the API root, ``/lists``, ``/contactLists``, ``/contactTags`` (account-wide),
  ``/campaigns``, ``/messages`` and ``/automations``, read-only.

Unknown query parameters are ignored, as the real API does (§11.2); ``extra={"ignore_params":
[...]}`` makes it ignore supported ones too. 5 requests per second per account with
``Retry-After`` on 429 (§8). What each world event becomes is in ``sandbox.activecampaign.events``.

Options (``extra``): ``api_token``; ``timezone`` (the account's, default ``America/Chicago``);
``ignore_params``; ``import_seconds`` and ``import_seconds_per_contact`` (how long a bulk import
takes to process, default 0.25 s + 1 ms a contact; §7 is silent) and ``import_polls`` (status polls
before it may complete, default 0);
``value_change_bumps_udate`` (default True, §11.6 unconfirmed).
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from typing import Any, ClassVar

from aiohttp import web

from leadsync.sandbox.activecampaign.common import parse_filter_time
from leadsync.sandbox.activecampaign.events import add_events, add_person, build_state
from leadsync.sandbox.activecampaign.routes_account import account_routes
from leadsync.sandbox.activecampaign.routes_contacts import contact_routes
from leadsync.sandbox.activecampaign.routes_engagement import engagement_routes
from leadsync.sandbox.activecampaign.routes_fields import field_routes, tag_routes
from leadsync.sandbox.activecampaign.routes_import import import_routes
from leadsync.sandbox.activecampaign.shapes import Renderer, account_timezone
from leadsync.sandbox.activecampaign.state import AccountState, CustomField
from leadsync.sandbox.platform import PRINCIPAL, PlatformEmulator, RateRule, json_response
from leadsync.sandbox.ratelimit import LimitDecision, RollingWindowPolicy

__all__ = ["ActiveCampaignEmulator"]

SANDBOX_API_TOKEN = "5a9db2c07e3f4d1b8c6e0f2a4b7d9e1c3f5a7b9d0e2c4f6a8b1d3e5f7a9c0b2d4e6f8a1c3e5b7d"
# activecampaign.md §8: 5 requests/second per account; 429 with Retry-After and RateLimit-* headers.
REQUESTS_PER_SECOND = 5


class ActiveCampaignEmulator(PlatformEmulator):
    name: ClassVar[str] = "activecampaign"
    default_port: ClassVar[int] = 8703

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        extra = self.options.extra
        self.api_token: str = extra.get("api_token", SANDBOX_API_TOKEN)
        self.per_second = RollingWindowPolicy("per_second", REQUESTS_PER_SECOND, 1.0)
        self.tz = account_timezone(str(extra.get("timezone", "America/Chicago")))
        self.ignored_params: frozenset[str] = frozenset(extra.get("ignore_params", ()))
        self.import_polls = int(extra.get("import_polls", 0))
        self.import_seconds = float(extra.get("import_seconds", 0.25))
        self.import_seconds_per_contact = float(extra.get("import_seconds_per_contact", 0.001))
        self.monotonic = time.monotonic  # real seconds for import processing (world time stands still)
        self.value_change_bumps_udate = bool(extra.get("value_change_bumps_udate", True))
        self.random = random.Random(getattr(self.world, "seed", None) or 0)
        self.render = Renderer(self.tz)
        self.state = AccountState()
        build_state(self.world, self.state)

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/api/3/users/me", self.users_me)
        for routes in (
            contact_routes,
            field_routes,
            tag_routes,
            engagement_routes,
            import_routes,
            account_routes,
        ):
            app.add_routes(routes(self))

    def authenticate(self, request: web.Request) -> web.StreamResponse | None:
        # activecampaign.md §1 and §12: header Api-Token; unauthenticated → 403 {"message": ...}.
        token = request.headers.get("Api-Token")
        if token != self.api_token or self.credentials_revoked:
            return json_response({"message": "No Result found for User with api token"}, status=403)
        request[PRINCIPAL] = "account:sandbox"
        return None

    def account_key(self) -> str | None:
        return self.api_token

    def request_key(self, request: web.Request) -> str | None:
        return request.headers.get("Api-Token")

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
        return json_response(
            {"errors": [{"status": status, "title": message, "detail": message}]}, status=status
        )

    def decorate(
        self, request: web.Request, response: web.StreamResponse, decisions: Sequence[LimitDecision]
    ) -> None:
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
                    "phone": "",
                    "signature": None,
                    "links": {},
                    "id": "1",
                }
            }
        )

    # --- values ------------------------------------------------------------------------------

    def stored_value(self, custom: CustomField, value: Any) -> str:
        """How a value is stored: datetimes in the account's timezone (§1: converted on save)."""
        text = "" if value is None else str(value)
        if custom.type == "datetime" and text:
            moment = parse_filter_time(text, self.tz)
            if moment is not None:
                return self.render.local(moment) or text
        return text

    # --- world -------------------------------------------------------------------------------

    def apply_delta(self, delta: Any) -> None:
        """New people, changed records (already merged into the world) and new events."""
        with self.state.lock:
            self.state.quiet = True  # the world's own changes send their webhooks from the delta
            try:
                self._apply_delta(delta)
            finally:
                self.state.quiet = False

    def _apply_delta(self, delta: Any) -> None:
        for person in getattr(delta, "persons", ()) or ():
            if any(str(p) == "activecampaign" for p in person.platforms):
                add_person(self.state, person)
        for change in getattr(delta, "changes", ()) or ():
            person = self.world.find_person(change.person)
            if person is not None and change.person in self.state.contact_by_person:
                contact = add_person(self.state, person)
                contact.udate = max(contact.udate, change.at)
        add_events(self.state, getattr(delta, "events", ()) or (), self.world)

    def inspect(self, email: str) -> dict[str, Any] | None:
        with self.state.lock:
            contact = self.state.find_contact(email)
            if contact is None:
                return None
            fields = {self.state.fields[v.field].perstag: v.value for v in self.state.values_of(contact.id)}
            tags = [self.state.tags[row.tag].tag for row in self.state.tags_of(contact.id)]
            return {
                "id": str(contact.id),
                "email": contact.email,
                "firstName": contact.first_name,
                "lastName": contact.last_name,
                "udate": self.render.local(contact.udate),
                "fields": fields,
                "tags": tags,
                "activities": self.state.activity_counts()[contact.id],
                "trackingLogs": len(self.state.tracking_logs.get(contact.id, [])),
                "deals": [self.render.deal(d) for d in self.state.deals.values() if d.contact == contact.id],
            }

    def source_config(self, base_url: str) -> dict[str, Any]:
        return {
            "name": "activecampaign",
            "platform": "activecampaign",
            "base_url": f"{base_url}/api/3",
            "inline_secrets": {"api_token": self.api_token},
            "options": {},
        }
