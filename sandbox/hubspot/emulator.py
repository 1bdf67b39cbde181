"""HubSpot emulator (facts: the fact sheet hubspot.md; its section 10 is the checklist).

Routes (one module per resource under ``sandbox/hubspot/routes/``):

* CRM objects v3 for contacts, deals, meetings and calls: list (``after`` = next id, ≤ 100), get,
  create, PATCH, batch read/update/upsert (≤ 100 inputs, 207 with ``numErrors``/``errors``), search
  (``after`` = offset, ≤ 200 a page, the 10,000-result cap answering 400, its own 5/s bucket, no
  rate headers); associations v4 batch read (meetings and calls to contacts);
* properties v3 and property groups (list, get, create; ``lifecyclestage`` with its options);
* the legacy Email Events API ``/email/public/v1/events`` (offset + ``hasMore``);
* the events API ``/events/v3/events`` (page views; Enterprise tier only, 403 otherwise; the
  ``tier`` option picks the tier) and deal pipelines (list, one, its stages);
* contacts v1 batch and profile reads with the form-submission history (option ``contacts_v1``
  false: 404, as a removed API), forms v3, owners v3, lists v3 (search, get, memberships);
* OAuth ``/oauth/2026-03/token`` and ``/oauth/v1/token`` until its 2027-02-16 shutdown on the
  sandbox clock (refresh grant; 30-minute access tokens, ``expire_tokens`` fault).

Option ``token_ttl_s`` (``extra``): OAuth access tokens' lifetime (1800 s). Option
``missing_scopes`` (``extra``): scopes the token lacks; a request needing one is answered 403
``MISSING_SCOPES`` naming it in ``errors[0].context.requiredGranularScopes`` (hubspot.md §5).

State lives in ``state.py``; what each world event becomes is in ``activity.py``.

Sandbox-only admin routes (under ``/_sandbox/``, never counted or limited):
``POST /_sandbox/hubspot/item-failures`` ``{"ids": [...], "category": "...", "times": n}`` makes
batch writes to those contacts fail per item (``times`` -1 = always); ``GET /_sandbox/hubspot/state``
summarises the portal (counts, lifecycle backward-write attempts, property names).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, ClassVar

from aiohttp import web

from leadsync.sandbox.hubspot.activity import add_owners, add_person, apply_change, apply_event
from leadsync.sandbox.hubspot.routes.associations import AssociationRoutes
from leadsync.sandbox.hubspot.routes.crm import CrmRoutes
from leadsync.sandbox.hubspot.routes.directory import DirectoryRoutes
from leadsync.sandbox.hubspot.routes.engagement import EngagementRoutes
from leadsync.sandbox.hubspot.routes.legacy_contacts import LegacyContactRoutes
from leadsync.sandbox.hubspot.routes.oauth import TOKEN_PATHS, OAuthRoutes
from leadsync.sandbox.hubspot.routes.properties import PropertyRoutes
from leadsync.sandbox.hubspot.state import HubSpotState
from leadsync.sandbox.platform import PRINCIPAL, PlatformEmulator, RateRule, json_response
from leadsync.sandbox.ratelimit import LimitDecision, RollingWindowPolicy

__all__ = ["HubSpotEmulator", "SANDBOX_OAUTH_APP", "SANDBOX_PORTAL_ID", "SANDBOX_TOKEN"]

# hubspot.md §5: Free/Starter 100 requests per 10 s rolling, per app; Professional/Enterprise 190.
TIER_LIMITS = {"free": 100, "starter": 100, "professional": 190, "enterprise": 190}
DAILY_LIMITS = {"free": 250_000, "starter": 250_000, "professional": 625_000, "enterprise": 1_000_000}
OAUTH_TEN_SECONDLY = 110  # hubspot.md §5: public (OAuth) apps, 110 / 10 s per installing account
SEARCH_PER_SECOND = 5  # hubspot.md §2.5: 5 requests/second per account, its own bucket
SANDBOX_TOKEN = "pat-na1-sandbox-0000-hubspot"
SANDBOX_PORTAL_ID = 6748263
SANDBOX_OAUTH_APP = {
    "client_id": "sandbox-client-id-0000",
    "client_secret": "sandbox-client-secret-0000",
    "refresh_token": "sandbox-refresh-token-0000",
}
AUTH_KIND: web.RequestKey[str] = web.RequestKey("hubspot.auth_kind", str)  # "private_app" or "oauth"


def _is_search(request: web.Request) -> bool:
    return request.method == "POST" and request.path.rstrip("/").endswith("/search")


class HubSpotEmulator(PlatformEmulator):
    name: ClassVar[str] = "hubspot"
    default_port: ClassVar[int] = 8701

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        extra = self.options.extra
        self.tier: str = extra.get("tier", "free")
        if self.tier not in TIER_LIMITS:
            raise ValueError(f"unknown HubSpot tier {self.tier!r}; known: {sorted(TIER_LIMITS)}")
        self.portal_id = int(extra.get("portal_id", SANDBOX_PORTAL_ID))
        self.private_app_token: str = extra.get("token", SANDBOX_TOKEN)
        self.oauth_app: dict[str, str] = {**SANDBOX_OAUTH_APP, **extra.get("oauth", {})}
        self.missing_scopes: frozenset[str] = frozenset(extra.get("missing_scopes", ()))
        self.ten_secondly = RollingWindowPolicy(
            "TEN_SECONDLY_ROLLING", int(extra.get("ten_secondly", TIER_LIMITS[self.tier])), 10.0
        )
        self.oauth_ten_secondly = RollingWindowPolicy("TEN_SECONDLY_ROLLING", OAUTH_TEN_SECONDLY, 10.0)
        self.search_secondly = RollingWindowPolicy("SECONDLY", SEARCH_PER_SECOND, 1.0)
        self.daily_limit = DAILY_LIMITS[self.tier]
        self.daily_used = 0
        self._tokens: dict[str, float] = {}
        self._tokens_lock = threading.Lock()
        self.token_grants: dict[str, int] = {}  # token endpoint path -> tokens issued (tests read it)
        self.state = HubSpotState()
        self._load_world()

    @property
    def world_start(self) -> datetime:
        start = getattr(self.world, "start", None)
        return start if isinstance(start, datetime) else self.clock.now()

    # --- world -----------------------------------------------------------------------------

    def _campaigns(self) -> dict[str, Any]:
        campaigns = getattr(self.world, "campaigns", []) or []
        return {getattr(c, "id", None): c for c in campaigns}

    def _load_world(self) -> None:
        add_owners(self.state, self.world_start)
        for person in _on_hubspot_persons(self.world):
            add_person(self.state, person)
        campaigns = self._campaigns()
        for event in sorted(_on_hubspot_events(self.world), key=lambda e: (e.at, str(e.id))):
            apply_event(self.state, event, campaigns)

    def apply_delta(self, delta: Any) -> None:
        campaigns = self._campaigns()
        for person in getattr(delta, "persons", []) or []:
            if _is_on_hubspot(person) and person.id not in self.state.person_contact:
                add_person(self.state, person)
        for change in getattr(delta, "changes", []) or []:
            apply_change(self.state, change)
        events = [
            e for e in getattr(delta, "events", []) or [] if str(getattr(e, "platform", "")) == "hubspot"
        ]
        for event in sorted(events, key=lambda e: (e.at, str(e.id))):
            apply_event(self.state, event, campaigns)

    def expire_tokens(self) -> None:
        with self._tokens_lock:
            self._tokens.clear()

    def issue_token(self, token: str, expires_at: float) -> None:
        with self._tokens_lock:
            self._tokens[token] = expires_at

    def inspect(self, email: str) -> dict[str, Any] | None:
        with self.state.lock:
            contact = self.state.contact_by_email(email)
            if contact is None:
                return None
            deals = [
                self.state.objects["deals"][d].to_json(None) for d in contact.associations.get("deals", [])
            ]
            by_recipient, by_contact = self.state.event_counts()
            return {
                "id": contact.id,
                "properties": dict(contact.properties),
                "updatedAt": contact.to_json([])["updatedAt"],
                "deals": deals,
                "email_events": by_recipient[contact.properties.get("email")],
                "page_view_events": by_contact[contact.id],
                "meetings": [
                    self.state.objects["meetings"][m].to_json(["hs_timestamp", "hs_meeting_outcome"])
                    for m in contact.associations.get("meetings", [])
                ],
                "calls": [
                    self.state.objects["calls"][c].to_json(["hs_timestamp", "hs_call_status"])
                    for c in contact.associations.get("calls", [])
                ],
                "form_submissions": list(self.state.form_submissions.get(contact.id, [])),
                "backward_lifecycle_attempts": [
                    a for a in self.state.backward_lifecycle_attempts if a["id"] == contact.id
                ],
            }

    # --- HTTP plumbing -------------------------------------------------------------------

    def is_write(self, request: web.Request) -> bool:
        # hubspot.md §2.2, §2.5: search and batch read are reads sent as POST.
        path = request.path.rstrip("/")
        return super().is_write(request) and not (path.endswith("/search") or path.endswith("/batch/read"))

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/account-info/v3/details", self.account_details)
        CrmRoutes(self).add(app)
        PropertyRoutes(self).add(app)
        EngagementRoutes(self).add(app)
        AssociationRoutes(self).add(app)
        LegacyContactRoutes(self).add(app)
        DirectoryRoutes(self).add(app)
        OAuthRoutes(self).add(app)
        app.router.add_post("/_sandbox/hubspot/item-failures", self.admin_item_failures)
        app.router.add_get("/_sandbox/hubspot/state", self.admin_state)

    def public_url(self, request: web.Request) -> str:
        return f"{request.scheme}://{request.host}{request.path}"

    def authenticate(self, request: web.Request) -> web.StreamResponse | None:
        if request.path in TOKEN_PATHS:  # the token endpoints authenticate with the form fields
            request[PRINCIPAL] = f"portal:{self.portal_id}"
            request[AUTH_KIND] = "token_endpoint"
            return None
        # hubspot.md §1: Authorization: Bearer only (private-app token or OAuth access token).
        header = request.headers.get("Authorization", "")
        token = header[7:] if header.startswith("Bearer ") else None
        kind = self.token_kind(token) if token else None
        if kind is None:
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
        request[PRINCIPAL] = f"portal:{self.portal_id}"
        request[AUTH_KIND] = kind
        scope = self.required_scope(request)
        if scope in self.missing_scopes:
            # hubspot.md §5: 403 MISSING_SCOPES with the scopes in errors[].context.requiredGranularScopes.
            return json_response(
                {
                    "status": "error",
                    "message": "This app hasn't been granted all required scopes to make this call.",
                    "correlationId": str(uuid.uuid4()),
                    "category": "MISSING_SCOPES",
                    "errors": [
                        {
                            "message": f"One or more of the following scopes are required: {scope}",
                            "context": {"requiredGranularScopes": [scope]},
                        }
                    ],
                    "links": {"scopes": "https://developers.hubspot.com/scopes"},
                },
                status=403,
            )
        return None

    def required_scope(self, request: web.Request) -> str | None:
        """The scope a request needs (hubspot.md §1): contacts read or write, the schema write; the
        engagements and the v1 contact reads need contacts read; forms, owners and lists their own."""
        path = request.path
        if path.startswith("/crm/v3/properties/contacts"):
            return "crm.schemas.contacts.write" if request.method != "GET" else "crm.schemas.contacts.read"
        if path.startswith(("/crm/v3/objects/contacts", "/crm/v3/objects/meetings", "/crm/v3/objects/calls")):
            return "crm.objects.contacts.write" if self.is_write(request) else "crm.objects.contacts.read"
        if path.startswith(("/contacts/v1/", "/crm/v4/associations/")):
            return "crm.objects.contacts.read"
        if path.startswith("/marketing/v3/forms"):
            return "forms"
        if path.startswith("/crm/v3/owners"):
            return "crm.objects.owners.read"
        if path.startswith("/crm/v3/lists"):
            return "crm.lists.read"
        return None

    def account_key(self) -> str | None:
        return self.private_app_token

    def request_key(self, request: web.Request) -> str | None:
        header = request.headers.get("Authorization", "")
        return header[7:] if header.startswith("Bearer ") else None

    def token_kind(self, token: str) -> str | None:
        if self.credentials_revoked:  # a deleted private app or uninstalled OAuth app: 401 (§1)
            return None
        if token == self.private_app_token:
            return "private_app"
        with self._tokens_lock:
            expires = self._tokens.get(token)
        if expires is not None and expires > time.monotonic():
            return "oauth"
        return None

    def token_is_valid(self, token: str) -> bool:
        return self.token_kind(token) is not None

    def rate_rules(self, request: web.Request) -> Sequence[RateRule]:
        kind = request.get(AUTH_KIND)
        if kind == "token_endpoint":
            return ()
        if _is_search(request):
            # hubspot.md §2.5: search has its own per-second bucket and is exempt from the 10 s one
            return (RateRule(self.search_secondly, request[PRINCIPAL]),)
        policy = self.oauth_ten_secondly if kind == "oauth" else self.ten_secondly
        return (RateRule(policy, request[PRINCIPAL]),)

    def too_many_requests(
        self, request: web.Request, decision: LimitDecision | None, retry_after: float | None
    ) -> web.StreamResponse:
        # hubspot.md §5: the real 429 body; Retry-After is not guaranteed (only injected faults may carry one).
        headers = (
            {"Retry-After": str(max(1, round(retry_after)))}
            if retry_after is not None and decision is None
            else {}
        )
        if decision is not None and decision.policy == "SECONDLY":
            # hubspot.md §5: the search 429's policy name is unconfirmed
            message, policy = "You have reached your secondly limit.", "SECONDLY"
        else:
            message, policy = "You have reached your ten_secondly_rolling limit.", "TEN_SECONDLY_ROLLING"
        return json_response(
            {
                "status": "error",
                "message": message,
                "errorType": "RATE_LIMIT",
                "correlationId": str(uuid.uuid4()),
                "policyName": policy,
                "groupName": f"publicapi:private-app-api-calls-ten-secondly:{self.portal_id}",
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

    def decorate(
        self, request: web.Request, response: web.StreamResponse, decisions: Sequence[LimitDecision]
    ) -> None:
        # hubspot.md §5: headers on normal responses (example in HubSpot/hubspot-api-python#143);
        # none on search responses; OAuth calls omit the two Daily headers.
        self.daily_used += 1
        response.headers["X-HubSpot-Correlation-Id"] = str(uuid.uuid4())
        if _is_search(request) or request.get(AUTH_KIND) == "token_endpoint":
            return
        for decision in decisions:
            if decision.policy == "TEN_SECONDLY_ROLLING":
                response.headers["X-HubSpot-RateLimit-Interval-Milliseconds"] = "10000"
                response.headers["X-HubSpot-RateLimit-Max"] = str(decision.limit)
                response.headers["X-HubSpot-RateLimit-Remaining"] = str(decision.remaining)
                if request.get(AUTH_KIND) != "oauth":
                    response.headers["X-HubSpot-RateLimit-Daily"] = str(self.daily_limit)
                    response.headers["X-HubSpot-RateLimit-Daily-Remaining"] = str(
                        max(0, self.daily_limit - self.daily_used)
                    )

    # --- routes ---------------------------------------------------------------------------

    async def account_details(self, request: web.Request) -> web.Response:
        return json_response(
            {
                "portalId": self.portal_id,
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

    async def admin_item_failures(self, request: web.Request) -> web.Response:
        body = await request.json()
        times = int(body.get("times", -1))
        with self.state.lock:
            for cid in body.get("ids", []):
                self.state.forced_failures[str(cid)] = {
                    "category": body.get("category", "VALIDATION_ERROR"),
                    "message": body.get("message", "Property values were not valid (sandbox forced failure)"),
                    "remaining": times,
                }
        return json_response({"forced": sorted(self.state.forced_failures)})

    async def admin_state(self, request: web.Request) -> web.Response:
        with self.state.lock:
            return json_response(
                {
                    "tier": self.tier,
                    "contacts": len(self.state.objects["contacts"]),
                    "deals": len(self.state.objects["deals"]),
                    "meetings": len(self.state.objects["meetings"]),
                    "calls": len(self.state.objects["calls"]),
                    "form_submissions": sum(len(v) for v in self.state.form_submissions.values()),
                    "token_grants": dict(self.token_grants),
                    "email_events": len(self.state.email_events),
                    "web_events": len(self.state.web_events),
                    "backward_lifecycle_attempts": self.state.backward_lifecycle_attempts,
                    "contact_properties": sorted(self.state.properties["contacts"]),
                    "groups": sorted(self.state.groups["contacts"]),
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


def _is_on_hubspot(person: Any) -> bool:
    return any(str(p) == "hubspot" for p in getattr(person, "platforms", []) or [])


def _on_hubspot_persons(world: Any) -> list[Any]:
    if hasattr(world, "persons_on"):
        return list(world.persons_on("hubspot"))
    return [p for p in getattr(world, "persons", []) or [] if _is_on_hubspot(p)]


def _on_hubspot_events(world: Any) -> list[Any]:
    if hasattr(world, "events_on"):
        return list(world.events_on("hubspot"))
    return [e for e in getattr(world, "events", []) or [] if str(getattr(e, "platform", "")) == "hubspot"]
