"""The HubSpot connector (facts: the HubSpot fact sheet, hubspot.md).

Streams, in pull order:

* ``contacts`` - CRM search on ``lastmodifieddate`` ascending, with a look-back overlap and
  de-duplication by (id, lastmodifieddate); past 10,000 results the paginator re-anchors on the
  last timestamp seen (hubspot.md §2.5). A rise of ``hs_analytics_num_page_views`` (unless the
  events API is available) becomes counter events (DESIGN.md). A rise of ``num_conversion_events``
  fetches those contacts' form-submission history (contacts v1 batch read, 100 a request, every
  tier, hubspot.md §4.3): one event per submission with its form, page and time, typed by the form
  and page (demo request, trial, download ...); where that read is refused (403) or gone (404), the
  counter stands in, as before.
* ``email_events`` - the legacy Email Events API since the cursor (§4.1), linked to contacts by
  recipient (batch read by email for recipients not seen in this run).
* ``page_views`` - the events API ``e_visited_page`` with URLs, Enterprise only (§4.2); empty
  when the account answers 403 (the counters stand in).
* ``meetings``, ``calls`` - CRM search on ``hs_lastmodifieddate`` ascending (hubspot.md §4.4),
  with the same overlap and de-duplication, and each page's contacts from the associations v4
  batch read (search returns no associations): one ``meeting_booked`` (with its outcome) or
  ``call`` event per associated contact; one with no contact is quarantined.
* ``deals`` - won deals (stages with probability 1.0 in the deal pipelines) with their contacts.

Reads use the shared httpx client and the one page loop (``connectors.streams``); writes (field
provisioning, lifecycle reads, batch updates) use ``hubspot-api-client`` through ``sdk.py``. Both
go through the same retry policy and the same limiter.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import replace
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar

import httpx
import urllib3

from leadsync.connectors.auth import BearerToken, OAuthRefresh
from leadsync.connectors.base import (
    WRITEBACK_FIELDS,
    CheckResult,
    Connector,
    ProfileField,
    PullBatch,
    PushFailure,
    PushReport,
    ScoreUpdate,
    SourceSettings,
    StreamTally,
)
from leadsync.connectors.catalog import stream_links, stream_names
from leadsync.connectors.errors import AuthError, BadRecord, ConnectorError, NotFound
from leadsync.connectors.gates import current as current_gates
from leadsync.connectors.http import build_client
from leadsync.connectors.hubspot import normalize, streams, writeback
from leadsync.connectors.hubspot.sdk import HubSpotSdk, to_dict
from leadsync.connectors.pagination import SearchOffsetPaginator
from leadsync.connectors.ratelimit import UNLIMITED, Limiter, RollingWindowLimiter, shared_limiter
from leadsync.connectors.readahead import merge_ahead
from leadsync.connectors.records import Platform
from leadsync.connectors.redaction import Redactor
from leadsync.connectors.retry import Action, ErrorRule, RetryPolicy, response_json
from leadsync.connectors.streams import Page, StreamSpec, iter_pages

__all__ = ["HubSpotConnector"]

log = logging.getLogger("leadsync.connectors.hubspot")

DEFAULT_BASE_URL = "https://api.hubapi.com"  # hubspot.md, "Base URL"
PROBE_PATH = "/account-info/v3/details"
# hubspot.md §1: OAuth v1 is deprecated on 2027-02-16; its dated successor takes the same form fields
# in the body (https://developers.hubspot.com/docs/api-reference/2026-03/authentication/oauth-tokens/refresh-oauth-token).
TOKEN_PATH = "/oauth/2026-03/token"
TEN_SECONDLY = {"free": 100, "starter": 100, "professional": 190, "enterprise": 190}  # hubspot.md §5
OAUTH_TEN_SECONDLY = 110  # hubspot.md §5: public apps, per installing account
SEARCH_PER_SECOND = 5  # hubspot.md §2.5
BATCH_SIZE = 100  # hubspot.md §2.2
# The associations batch read takes up to 1,000 ids since 2025-02-10, on every tier
# (https://developers.hubspot.com/changelog/bug-fix-batch-read-limit-for-hubspot-associations-api)
ASSOCIATION_BATCH = 1000
DEFAULT_LOOKBACK_S = 300.0
MAX_PUSH_ROUNDS = 3
# email-event pages read ahead, while the contacts stream runs and while pages are linked: 1,000
# events a page (hubspot.md §4.1), about 50 MB held at most (all time slices together), or 5 s at
# the 10 s bucket's pace
LINK_AHEAD_PAGES = 50
# email-event time slices read side by side on a first sync or a long catch-up (one connection each)
EMAIL_EVENT_SLICES = 4


def _ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)


def _created(event: Any) -> int | None:
    """An email event's ``created`` (epoch ms, hubspot.md §4.1), None when it has none readable."""
    try:
        return int(event["created"])
    except (TypeError, KeyError, ValueError):
        return None


def _in_span(event: Any, stamp: int | None, above: int | set[str], below: int | None) -> bool:
    """Whether a time slice keeps an email event it read: stamped in [above, below), where
    ``above`` is, for the first slice, the ids the first page already held instead. One without a
    readable stamp is kept (the stream quarantines it)."""
    if stamp is None:
        return True
    if (str(event.get("id")) in above) if isinstance(above, set) else stamp < above:
        return False
    return below is None or stamp < below


def _server_ms(response: httpx.Response) -> int:
    """The server's time from a response's ``Date`` header (RFC 9110 §6.6.1; a second's
    resolution, so the end of that second), else this machine's."""
    try:
        return _ms(parsedate_to_datetime(response.headers["date"])) + 999
    except (KeyError, TypeError, ValueError, IndexError):
        return _ms(datetime.now(UTC))


def _missing_scopes(response: Any) -> str | None:
    body = response_json(response) or {}
    if not isinstance(body, dict):
        return None
    scopes = []
    for err in body.get("errors") or []:
        scopes += ((err or {}).get("context") or {}).get("requiredGranularScopes") or []
    return f"missing scopes {sorted(scopes)}" if scopes else body.get("message")


HUBSPOT_RULES = (
    # hubspot.md §5: 423 Locked, "include a delay of at least 2 seconds"; 477 migration in progress.
    ErrorRule(Action.RETRY, status=423, wait_s=2.0, name="locked"),
    ErrorRule(Action.RETRY, status=477, name="migration in progress"),
    # hubspot.md §5: 403 MISSING_SCOPES names the scopes
    ErrorRule(Action.FAIL, status=403, error=AuthError, message=_missing_scopes, name="forbidden"),
    # the SDK's transport failures (urllib3 with retries off, hubspot.md §7)
    ErrorRule(Action.RETRY, exception=urllib3.exceptions.HTTPError, name="sdk connection"),
)


class HubSpotConnector(Connector):
    platform: ClassVar[Platform] = Platform.HUBSPOT

    def __init__(self, settings: SourceSettings, *, transport: httpx.BaseTransport | None = None) -> None:
        super().__init__(settings, transport=transport)
        self.base_url = (settings.base_url or DEFAULT_BASE_URL).rstrip("/")
        options = settings.options
        self.tier = str(options.get("tier", "free"))
        self.lookback_ms = int(float(options.get("lookback_s", DEFAULT_LOOKBACK_S)) * 1000)
        self.redactor = Redactor(v for v in settings.secrets.values() if v)
        self._oauth: OAuthRefresh | None = None
        if settings.secrets.get("refresh_token"):
            self._oauth = OAuthRefresh(
                client_id=settings.secrets.get("client_id", ""),
                client_secret=settings.secrets.get("client_secret", ""),
                refresh_token=settings.secrets["refresh_token"],
                token_url=self.base_url + TOKEN_PATH,
                source=settings.name,
                credential_env=self._secret_name("refresh_token"),
                transport=transport,
                redactor=self.redactor,
            )
            auth: httpx.Auth = self._oauth
            credential = "refresh_token"
        else:
            auth = BearerToken(self._token())
            credential = "token"
        self.policy = (
            RetryPolicy(
                source=settings.name,
                credential_env=self._secret_name(credential),
                # hubspot.md §5: no Retry-After guaranteed; wait out the 10 s window (tests shorten it)
                rate_limited_wait_s=float(options.get("rate_limited_wait_s", 10.0)),
                redactor=self.redactor,
            )
            .with_rules(*HUBSPOT_RULES)
            .configured(options)
        )
        self.push_workers = int(options.get("push_workers", 2))
        limited = bool(options.get("rate_limit", True))
        burst = (
            OAUTH_TEN_SECONDLY
            if self._oauth
            else int(options.get("ten_secondly", TEN_SECONDLY.get(self.tier, 100)))
        )
        account = ("hubspot", self.base_url, settings.name)  # one budget per portal in this process
        self.limiter: Limiter = (
            shared_limiter(
                (*account, "10s", burst),
                lambda: RollingWindowLimiter(
                    burst, 10.0, remaining_header="X-HubSpot-RateLimit-Remaining", name="hubspot 10 s"
                ),
            )
            if limited
            else UNLIMITED
        )
        # hubspot.md §2.5: search has its own 5/s bucket, and is exempt from the 10 s one.
        self.search_limiter: Limiter = (
            shared_limiter(
                (*account, "search"),
                lambda: RollingWindowLimiter(SEARCH_PER_SECOND, 1.0, name="hubspot search"),
            )
            if limited
            else UNLIMITED
        )
        self.client = build_client(
            base_url=self.base_url,
            auth=auth,
            timeout=settings.timeout_s,
            # a pull runs its streams side by side (sync.pipeline), one connection each (email events
            # up to EMAIL_EVENT_SLICES), and a push
            # runs push_workers batches at once; hubspot.md §5 caps requests per 10 s, not connections
            max_connections=max(
                len(stream_names(Platform.HUBSPOT)) + EMAIL_EVENT_SLICES - 1, self.push_workers
            ),
            transport=transport,
        )
        self.sdk = HubSpotSdk(
            base_url=self.base_url,
            token=self._current_token,
            policy=self.policy,
            limiter=self.limiter,
            timeout_s=settings.timeout_s,
            refresh=self._refresh if self._oauth else None,
        )
        self._email_to_id: dict[str, str] = {}
        self._events_api: bool | None = None
        self._form_history: bool | None = None  # None: not tried yet this run
        self._form_names: dict[str, str] | None = None
        self._fields_ready = False
        self._stage_order: list[str] | None = None

    # --- credentials -----------------------------------------------------------------------

    def _secret_name(self, key: str) -> str:
        return self.settings.secret_names.get(key, f"the {key!r} secret")

    def _token(self) -> str:
        token = self.settings.secrets.get("token")
        if not token:
            raise AuthError(
                f"source {self.settings.name!r}: no HubSpot token; set {self._secret_name('token')}",
                source=self.settings.name,
            )
        return token

    def _current_token(self) -> str:
        return self._oauth.token() if self._oauth else self._token()

    def _refresh(self) -> None:
        assert self._oauth is not None
        self._oauth.refresh(stale=None)

    def close(self) -> None:
        self.client.close()
        if self._oauth is not None:
            self._oauth.close()

    # --- check -----------------------------------------------------------------------------

    def check(self) -> CheckResult:
        request = self.client.build_request("GET", PROBE_PATH)
        try:
            reply = self.policy.send(self.client, request, limiter=self.limiter)
        except AuthError as exc:
            status = exc.status
            raise AuthError(
                f"source {self.settings.name!r}: HubSpot refused the credentials ({status}); "
                f"check {self.policy.credential_env}",
                source=self.settings.name,
                status=status,
            ) from None
        portal = (reply.body or {}).get("portalId")
        return CheckResult(ok=True, detail=f"HubSpot portal {portal} reachable", account=str(portal))

    def streams(self) -> Sequence[str]:
        return stream_names(Platform.HUBSPOT)

    # --- pull ------------------------------------------------------------------------------

    def pull(self, stream: str, cursor: Any, *, full: bool = False) -> Iterator[PullBatch]:
        state = {} if (full or not cursor) else dict(cursor)
        if stream == "contacts":
            yield from self._pull_contacts(state)
        elif stream == "email_events":
            yield from self._pull_email_events(state)
        elif stream == "page_views":
            yield from self._pull_page_views(state)
        elif stream in streams.ENGAGEMENTS:
            yield from self._pull_engagements(stream, state)
        elif stream == "deals":
            yield from self._pull_deals(state)
        else:
            raise ValueError(f"unknown HubSpot stream {stream!r}; known: {list(self.streams())}")

    def events_api_available(self) -> bool:
        """hubspot.md §4.2: the events API is Enterprise only; other tiers answer 403."""
        if self._events_api is None:
            request = self.client.build_request(
                "GET", streams.PAGE_VIEWS.path, params={"limit": 1, "objectType": "contact"}
            )
            try:
                self.policy.send(self.client, request, limiter=self.limiter)
                self._events_api = True
            except AuthError:
                self._events_api = False
        return self._events_api

    def _pull_contacts(self, state: dict[str, Any]) -> Iterator[PullBatch]:
        since: int | None = state.get("since")
        seen: dict[str, int] = {k: int(v) for k, v in (state.get("seen") or {}).items()}
        counts: dict[str, list[int]] = {k: list(v) for k, v in (state.get("counts") or {}).items()}
        # Page views come from the events API when it is selected and available (hubspot.md §4.2),
        # else from the contact's counter; a deselected page_views stream sends no probe at all.
        counter_page_views = "page_views" not in self.selected_streams() or not self.events_api_available()
        floor = 0 if since is None else since - self.lookback_ms

        def gte(value: int) -> list[dict[str, Any]]:
            return [
                {"filters": [{"propertyName": "lastmodifieddate", "operator": "GTE", "value": str(value)}]}
            ]

        def on_cap(records: Sequence[Any]) -> dict[str, Any] | None:
            # hubspot.md §2.5: past 10,000 results, restart with GTE the last timestamp seen (dedup by id)
            last = (
                normalize.parse_time((records[-1].get("properties") or {}).get("lastmodifieddate"))
                if records
                else None
            )
            return {"filterGroups": gte(_ms(last))} if last else None

        owned = {name: f"{self.settings.field_prefix}{name}" for name in WRITEBACK_FIELDS}
        paginator = SearchOffsetPaginator(page_size=200, on_cap=on_cap)
        high = since or 0
        tally = StreamTally("contacts")
        for page in iter_pages(
            self.client,
            streams.CONTACT_SEARCH,
            retry_policy=self.policy,
            limiter=self.search_limiter,
            # leadsync's own properties too: the platform is the truth for what they hold (contract 3)
            body={"filterGroups": gte(floor), "properties": [*streams.CONTACT_PROPERTIES, *owned.values()]},
            paginator=paginator,
        ):
            batch = PullBatch("contacts")
            risen: dict[str, tuple[Any, int]] = {}  # contact id -> (record, forms counted before)
            for raw in page.records:
                rid = str(raw.get("id"))
                modified = normalize.parse_time(
                    (raw.get("properties") or {}).get("lastmodifieddate") or raw.get("updatedAt")
                )
                stamp = _ms(modified) if modified else 0
                if rid in seen and seen[rid] >= stamp:
                    continue  # already delivered (overlap window or a re-anchored page)
                try:
                    record = normalize.contact(raw, source=self.settings.name, owned=owned)
                    before_views, before_forms = counts.get(rid) or (0, 0)
                    events, views = normalize.page_view_counter_events(
                        raw, before_views, source=self.settings.name, enabled=counter_page_views
                    )
                    if normalize.form_count(raw) > before_forms:
                        risen[rid] = (raw, before_forms)  # its submissions are read below, for the page
                    now_counts = (views, before_forms)
                except BadRecord as bad:
                    batch.bad.append(bad)
                    continue
                seen[rid] = stamp
                high = max(high, stamp)
                counts[rid] = list(now_counts)
                if record.email:
                    self._email_to_id[record.email] = rid
                batch.contacts.append(record)
                batch.events.extend(events)
            self._form_events(risen, counts, batch)
            horizon = high - self.lookback_ms
            seen = {k: v for k, v in seen.items() if v >= horizon}
            batch.cursor = {"since": high, "seen": dict(seen), "counts": counts}
            yield tally.count(batch, len(page.records), page.remaining)  # §2.5: search gives "total"

    def fetch_contact(self, remote_id: str) -> PullBatch | None:
        """``GET /crm/v3/objects/contacts/{id}`` (hubspot.md §2) with the properties a pull reads;
        page views from the counter as in ``_pull_contacts``, numbered from 1 (``pv:{id}:{n}``) so
        those the store holds are not stored again. Form submissions are left to the next pull,
        whose history read gives them their own ids (hubspot.md §4.3)."""
        owned = {name: f"{self.settings.field_prefix}{name}" for name in WRITEBACK_FIELDS}
        request = self.client.build_request(
            "GET",
            f"/crm/v3/objects/contacts/{remote_id}",
            params={"properties": ",".join([*streams.CONTACT_PROPERTIES, *owned.values()])},
        )
        try:
            raw = self.policy.send(self.client, request, limiter=self.limiter).body or {}
        except NotFound:
            return None
        batch = PullBatch("contacts")
        try:
            batch.contacts.append(normalize.contact(raw, source=self.settings.name, owned=owned))
            events, _ = normalize.page_view_counter_events(raw, 0, source=self.settings.name)
            batch.events.extend(events)
        except BadRecord as bad:
            batch.bad.append(bad)
        return batch

    # --- form submissions (hubspot.md §4.3) --------------------------------------------------

    def _form_events(
        self, risen: dict[str, tuple[Any, int]], counts: dict[str, list[int]], batch: PullBatch
    ) -> None:
        """Events for the contacts whose form counter rose: their submission history where it can be
        read, the counter otherwise; ``counts`` remembers how many submissions each stands for."""
        if not risen:
            return
        histories = self._form_histories(sorted(risen, key=int))
        names = self._forms() if histories is not None else {}
        for rid, (raw, before) in risen.items():
            if histories is not None and rid in histories:
                events, total, bad = normalize.form_submission_events(
                    raw, histories[rid], before, source=self.settings.name, form_names=names
                )
                batch.bad.extend(bad)
            else:
                events, total = normalize.form_counter_events(raw, before, source=self.settings.name)
            batch.events.extend(events)
            counts[rid] = [counts.get(rid, [0, 0])[0], total]

    def _form_histories(self, contact_ids: list[str]) -> dict[str, list[dict[str, Any]]] | None:
        """The ``form-submissions`` of each contact (100 vids a request); None when the portal
        refuses the read (403) or no longer has it (404): the counters stand in."""
        if self._form_history is False:
            return None
        out: dict[str, list[dict[str, Any]]] = {}
        spec = streams.CONTACT_FORM_SUBMISSIONS
        for start in range(0, len(contact_ids), BATCH_SIZE):
            chunk = contact_ids[start : start + BATCH_SIZE]
            request = spec.first_request(params={"vid": chunk}).build(self.client)
            try:
                reply = self.policy.send(self.client, request, limiter=self.limiter)
            except (AuthError, NotFound) as exc:
                if exc.status == 401:
                    raise
                log.warning(
                    "%s: the form-submission history cannot be read (%s); form submissions come from "
                    "the num_conversion_events counter, without pages or form names",
                    self.settings.name,
                    exc.status,
                )
                self._form_history = False
                return None
            for vid, profile in (reply.body or {}).items() if isinstance(reply.body, dict) else ():
                items = profile.get("form-submissions") if isinstance(profile, dict) else None
                if isinstance(items, list):
                    out[str(profile.get("canonical-vid") or vid)] = [i for i in items if isinstance(i, dict)]
        self._form_history = True
        return out

    def _forms(self) -> dict[str, str]:
        """Form names by id (Forms API v3); empty when the token lacks the ``forms`` scope."""
        if self._form_names is None:
            try:
                self._form_names = {
                    str(form.get("id")): str(form.get("name") or "")
                    for page in iter_pages(
                        self.client, streams.FORMS, retry_policy=self.policy, limiter=self.limiter
                    )
                    for form in page.records
                    if isinstance(form, dict) and form.get("id")
                }
            except (AuthError, NotFound) as exc:
                if exc.status == 401:
                    raise
                log.warning("%s: form names cannot be read (%s); submissions keep their page title",
                            self.settings.name, exc.status)  # fmt: skip
                self._form_names = {}
        return self._form_names

    # --- meetings and calls (hubspot.md §4.4) ---------------------------------------------------

    def _pull_engagements(self, stream: str, state: dict[str, Any]) -> Iterator[PullBatch]:
        search, associations, events_of = streams.ENGAGEMENTS[stream]
        since: int | None = state.get("since")
        seen: dict[str, int] = {k: int(v) for k, v in (state.get("seen") or {}).items()}
        floor = 0 if since is None else since - self.lookback_ms

        def gte(value: int) -> list[dict[str, Any]]:
            return [
                {"filters": [{"propertyName": "hs_lastmodifieddate", "operator": "GTE", "value": str(value)}]}
            ]

        def modified(raw: Any) -> datetime | None:
            return normalize.parse_time(
                (raw.get("properties") or {}).get("hs_lastmodifieddate") or raw.get("updatedAt")
            )

        def on_cap(records: Sequence[Any]) -> dict[str, Any] | None:
            last = modified(records[-1]) if records else None  # hubspot.md §2.5: re-anchor past 10,000
            return {"filterGroups": gte(_ms(last))} if last else None

        high = since or 0
        tally = StreamTally(stream)
        for page in iter_pages(
            self.client,
            search,
            retry_policy=self.policy,
            limiter=self.search_limiter,
            body={"filterGroups": gte(floor)},
            paginator=SearchOffsetPaginator(page_size=200, on_cap=on_cap),
        ):
            batch = PullBatch(stream)
            fresh: list[tuple[Any, int]] = []
            for raw in page.records:
                oid = str(raw.get("id"))
                when = modified(raw)
                stamp = _ms(when) if when else 0
                if oid in seen and seen[oid] >= stamp:
                    continue
                fresh.append((raw, stamp))
            linked = self._associated_contacts(associations, [str(raw.get("id")) for raw, _ in fresh])
            for raw, stamp in fresh:
                oid = str(raw.get("id"))
                try:
                    batch.events.extend(events_of(raw, linked.get(oid, []), source=self.settings.name))
                except BadRecord as bad:
                    batch.bad.append(bad)
                seen[oid] = stamp
                high = max(high, stamp)
            seen = {k: v for k, v in seen.items() if v >= high - self.lookback_ms}
            batch.cursor = {"since": high, "seen": dict(seen)}
            yield tally.count(batch, len(page.records), page.remaining)  # §2.5: search gives "total"

    def _associated_contacts(self, spec: StreamSpec, ids: list[str]) -> dict[str, list[str]]:
        """Contact ids per record (associations v4 batch read, ASSOCIATION_BATCH inputs a request).
        An id with no contact is absent (the API lists it among a 207's errors)."""
        out: dict[str, list[str]] = {}
        for start in range(0, len(ids), ASSOCIATION_BATCH):
            request = spec.first_request(
                body={"inputs": [{"id": i} for i in ids[start : start + ASSOCIATION_BATCH]]}
            )
            reply = self.policy.send(self.client, request.build(self.client), limiter=self.limiter)
            for row in (reply.body or {}).get("results") or []:
                source = str(((row or {}).get("from") or {}).get("id") or "")
                targets = [
                    str(t.get("toObjectId")) for t in row.get("to") or [] if t.get("toObjectId") is not None
                ]
                if source and targets:
                    out.setdefault(source, []).extend(targets)
        return out

    def _resolve_recipients(self, emails: set[str]) -> None:
        """Link email events to contacts: batch read by email for recipients not seen yet (§2.2)."""
        unknown = sorted(e for e in emails if e not in self._email_to_id)
        for start in range(0, len(unknown), BATCH_SIZE):
            chunk = unknown[start : start + BATCH_SIZE]
            request = streams.CONTACTS_BY_EMAIL.first_request(body={"inputs": [{"id": e} for e in chunk]})
            reply = self.policy.send(self.client, request.build(self.client), limiter=self.limiter)
            for row in (reply.body or {}).get("results") or []:
                email = ((row.get("properties") or {}).get("email") or "").strip().lower()
                if email:
                    self._email_to_id[email] = str(row["id"])

    def _email_event_pages(self, params: dict[str, Any]) -> Iterator[tuple[Page, int | None]]:
        """The email events' pages after ``params``' start, each with the time before which every
        event has been handed over (None: every event up to the newest handed over so far).

        The legacy API pages with an opaque offset, one page after another (hubspot.md §4.1), so a
        single chain of requests goes no faster than one round trip a page. The first page is read
        here; when more follow, the span from its newest event to the server's time (the
        response's ``Date``) is cut into up to EMAIL_EVENT_SLICES time slices (peers slice by time
        too, §4.1), as many as the first page's density says pages are left. The slices are read
        side by side, on a thread each, with up to LINK_AHEAD_PAGES pages waiting in all, and
        handed over as they come, so the time before which all is read trails the earliest slice
        still being read. Bounds overlap by a millisecond (whether the API's bounds are inclusive
        is unconfirmed), and what a slice reads outside its own span is left out; the last slice
        is open-ended.
        """

        def chain(extra: dict[str, Any], resume: dict[str, Any] | None = None) -> Iterator[Page]:
            return iter_pages(
                self.client,
                streams.EMAIL_EVENTS,
                retry_policy=self.policy,
                limiter=self.limiter,
                params={**params, **extra},
                resume_from=resume,
            )

        first_chain = chain({})
        with closing(first_chain):
            first = next(first_chain, None)
        if first is None:
            return
        stamps = [t for t in map(_created, first.records) if t is not None]
        if first.is_last:
            yield first, None
            return
        low = max(stamps, default=0)
        until = max(_server_ms(first.response), low + 1)
        per_page = max(low - min(stamps, default=low), 1)  # the time a page of events spans here
        count = max(1, min(EMAIL_EVENT_SLICES, -(-(until - low) // per_page))) if stamps else 1
        bounds = [low + (until - low) * i // count for i in range(count)]
        sources = (
            [chain({}, resume=first.state)]
            if count == 1
            else [
                chain({"startTimestamp": start - 1, **({"endTimestamp": end} if end else {})})
                for start, end in zip(bounds, [*bounds[1:], None], strict=True)
            ]
        )
        # started before the first page is handed over, so that they read on while it waits
        merged = merge_ahead(sources, depth=LINK_AHEAD_PAGES, name=f"{self.settings.name}-email-events")
        with closing(merged):
            yield first, None
            if count == 1:
                for _, page in merged:
                    yield page, None
                return
            # Each event goes out once, however the bounds count: the first slice leaves out what
            # the first page held, every slice what is stamped outside its own [bound, next bound).
            held = {str(r.get("id")) for r in first.records if isinstance(r, dict)}
            reached: list[int | None] = list(bounds)  # per slice: read up to this time
            for number, page in merged:
                span = (
                    held if number == 0 else bounds[number],
                    bounds[number + 1] if number + 1 < count else None,
                )
                stamps = [_created(r) for r in page.records]
                records = [
                    r for r, stamp in zip(page.records, stamps, strict=True) if _in_span(r, stamp, *span)
                ]
                newest = max([reached[number] or 0, *(t for t in stamps if t is not None)])
                reached[number] = None if page.is_last else newest
                floor = min((t for t in reached if t is not None), default=None)
                yield replace(page, records=records), floor

    def _pull_email_events(self, state: dict[str, Any]) -> Iterator[PullBatch]:
        since: int | None = state.get("since")
        seen: dict[str, int] = {k: int(v) for k, v in (state.get("seen") or {}).items()}
        params = {} if since is None else {"startTimestamp": since - self.lookback_ms}
        high = since or 0
        tally = StreamTally("events")
        gates = current_gates()

        # Pages are read on threads of their own (up to LINK_AHEAD_PAGES ahead) while this pull's
        # contacts stream runs, whose ids link the recipients (an unknown one costs a share of a
        # batch read); they are linked here, as they come, once it has ended, each batch's cursor
        # standing where every event before it has been read, and linking never holds up the
        # next request.
        pages = self._email_event_pages(params)
        links = stream_links(Platform.HUBSPOT, "email_events")
        with closing(pages):
            for page, floor in pages:
                for linked in links:
                    gates.wait(linked)
                fresh = [r for r in page.records if str(r.get("id")) not in seen]
                self._resolve_recipients(
                    {str(r.get("recipient") or "").strip().lower() for r in fresh if r.get("recipient")}
                )
                batch = PullBatch("email_events")
                for raw in fresh:
                    eid = str(raw.get("id"))
                    contact_id = self._email_to_id.get(str(raw.get("recipient") or "").strip().lower())
                    try:
                        if contact_id is None:
                            raise BadRecord(f"email event {eid}: recipient is not a contact", record=raw)
                        event = normalize.email_event(raw, source=self.settings.name, contact_id=contact_id)
                        if event is not None:
                            batch.events.append(event)
                    except BadRecord as bad:
                        batch.bad.append(bad)
                    created = int(raw.get("created") or 0)
                    seen[eid] = created
                    high = max(high, created)
                seen = {k: v for k, v in seen.items() if v >= high - self.lookback_ms}
                # slices read side by side: resume where the earliest one still being read stands
                batch.cursor = {"since": high if floor is None else min(high, floor), "seen": dict(seen)}
                yield tally.count(batch, len(page.records), page.remaining)  # §4.1: no total, only hasMore

    def _pull_page_views(self, state: dict[str, Any]) -> Iterator[PullBatch]:
        if not self.events_api_available():
            return  # not Enterprise: page views come from the contact counters instead
        since: int | None = state.get("since")
        seen: dict[str, int] = {k: int(v) for k, v in (state.get("seen") or {}).items()}
        params: dict[str, Any] = {}
        if since is not None:
            start = datetime.fromtimestamp((since - self.lookback_ms) / 1000, tz=UTC)
            params["occurredAfter"] = (
                start.strftime("%Y-%m-%dT%H:%M:%S.") + f"{start.microsecond // 1000:03d}Z"
            )
        high = since or 0
        tally = StreamTally("events")
        for page in iter_pages(
            self.client, streams.PAGE_VIEWS, retry_policy=self.policy, limiter=self.limiter, params=params
        ):
            batch = PullBatch("page_views")
            for raw in page.records:
                eid = str(raw.get("id"))
                if eid in seen:
                    continue
                try:
                    event = normalize.page_view(raw, source=self.settings.name)
                except BadRecord as bad:
                    batch.bad.append(bad)
                    continue
                stamp = _ms(event.occurred_at)
                seen[eid] = stamp
                high = max(high, stamp)
                batch.events.append(event)
            seen = {k: v for k, v in seen.items() if v >= high - self.lookback_ms}
            batch.cursor = {"since": high, "seen": dict(seen)}
            yield tally.count(batch, len(page.records), page.remaining)

    def _won_stages(self) -> set[str]:
        request = streams.DEAL_PIPELINES.first_request().build(self.client)
        reply = self.policy.send(self.client, request, limiter=self.limiter)
        won = set()
        for pipeline in (reply.body or {}).get("results") or []:
            for stage in pipeline.get("stages") or []:
                meta = stage.get("metadata") or {}
                if str(meta.get("probability")) in ("1.0", "1") or stage.get("id") == "closedwon":
                    won.add(str(stage["id"]))
        return won or {"closedwon"}

    def _pull_deals(self, state: dict[str, Any]) -> Iterator[PullBatch]:
        since: int | None = state.get("since")
        seen: dict[str, int] = {k: int(v) for k, v in (state.get("seen") or {}).items()}
        won = self._won_stages()
        floor = None if since is None else since - self.lookback_ms
        high = since or 0
        batch = PullBatch("deals")
        tally = StreamTally("deals")
        read = 0
        # The deal list is unsorted by time: the cursor moves only with the last batch.
        for page in iter_pages(self.client, streams.DEALS, retry_policy=self.policy, limiter=self.limiter):
            read += len(page.records)
            for raw in page.records:
                did = str(raw.get("id"))
                modified = normalize.parse_time(raw.get("updatedAt"))
                stamp = _ms(modified) if modified else 0
                if (floor is not None and stamp < floor) or (did in seen and seen[did] >= stamp):
                    continue
                try:
                    events = normalize.won_deal_events(raw, source=self.settings.name, won_stages=won)
                except BadRecord as bad:
                    batch.bad.append(bad)
                    continue
                seen[did] = stamp
                high = max(high, stamp)
                batch.events.extend(events)
            if not page.is_last:
                yield tally.count(batch, read, None)
                batch, read = PullBatch("deals"), 0
        batch.cursor = {
            "since": high,
            "seen": {k: v for k, v in seen.items() if v >= high - self.lookback_ms},
        }
        yield tally.count(batch, read, 0)

    # --- profile fields -------------------------------------------------------------------

    def profile_fields(self, sample: int = 500) -> list[ProfileField]:
        """Contact properties (hubspot.md §3) and their fill rate over the ``sample`` most recently
        modified contacts (search, §2.5: properties go in the body, no URL length limit)."""
        reply = self.policy.send(
            self.client, self.client.build_request("GET", "/crm/v3/properties/contacts"), limiter=self.limiter
        )
        definitions = [p for p in (reply.body or {}).get("results") or [] if p.get("name")]
        names = [str(p["name"]) for p in definitions]
        filled = dict.fromkeys(names, 0)
        sampled = 0
        body = {
            "filterGroups": [],
            "sorts": [{"propertyName": "lastmodifieddate", "direction": "DESCENDING"}],
            "properties": names,
        }
        for page in iter_pages(
            self.client,
            streams.CONTACT_SEARCH,
            retry_policy=self.policy,
            limiter=self.search_limiter,
            body=body,
        ):
            for raw in page.records[: sample - sampled]:
                sampled += 1
                for name, value in (raw.get("properties") or {}).items():
                    if name in filled and value not in (None, ""):  # §2.7: "" and null mean no value
                        filled[name] += 1
            if sampled >= sample:
                break
        prefix = self.settings.field_prefix
        return [
            ProfileField(
                name=str(p["name"]),
                label=str(p.get("label") or p["name"]),
                type=str(p.get("type") or "?"),
                filled=filled[str(p["name"])],
                sampled=sampled,
                owned=str(p["name"]).startswith(prefix),
                group=p.get("groupName"),
            )
            for p in definitions
        ]

    # --- write-back ------------------------------------------------------------------------

    def ensure_fields(self) -> None:
        """Create the property group and the score properties on first use (hubspot.md §3)."""
        from hubspot.crm.properties import PropertyCreate, PropertyGroupCreate

        prefix = self.settings.field_prefix
        group = writeback.group_name(prefix)
        timeout = self.sdk.timeout
        groups = self.sdk.call(
            "GET",
            "/crm/v3/properties/contacts/groups",
            lambda c: c.crm.properties.groups_api.get_all("contacts", _request_timeout=timeout),
        )
        if group not in {g.name for g in groups.results}:
            self.sdk.call(
                "POST",
                "/crm/v3/properties/contacts/groups",
                lambda c: c.crm.properties.groups_api.create(
                    "contacts",
                    PropertyGroupCreate(name=group, label=writeback.GROUP_LABEL, display_order=-1),
                    _request_timeout=timeout,
                ),
            )
        existing = self.sdk.call(
            "GET",
            "/crm/v3/properties/contacts",
            lambda c: c.crm.properties.core_api.get_all("contacts", _request_timeout=timeout),
        )
        have = {p.name: p for p in existing.results}
        for definition in writeback.field_definitions(prefix):
            current = have.get(definition["name"])
            if current is not None:
                if current.type != definition["type"]:
                    raise ConnectorError(
                        f"{self.settings.name}: HubSpot property {definition['name']!r} exists with type "
                        f"{current.type!r}, leadsync needs {definition['type']!r}; rename it or change field_prefix",
                        source=self.settings.name,
                    )
                continue
            body = {
                "name": definition["name"],
                "label": definition["label"],
                "type": definition["type"],
                "field_type": definition["fieldType"],
                "group_name": definition["groupName"],
                "description": definition["description"],
                "form_field": False,
                "display_order": -1,
                # SDK 12.0.0 PropertyCreate has no numberDisplayHint field (the API default applies)
                "options": definition.get("options"),
            }
            self.sdk.call(
                "POST",
                "/crm/v3/properties/contacts",
                lambda c, b=body: c.crm.properties.core_api.create(
                    "contacts",
                    PropertyCreate(**{k: v for k, v in b.items() if v is not None}),
                    _request_timeout=timeout,
                ),
            )
        self._fields_ready = True

    def lifecycle_order(self) -> list[str]:
        """The account's stage order (hubspot.md §3: stages may be customised; read, don't assume)."""
        if self._stage_order is None:
            prop = self.sdk.call(
                "GET",
                "/crm/v3/properties/contacts/lifecyclestage",
                lambda c: c.crm.properties.core_api.get_by_name(
                    "contacts", "lifecyclestage", _request_timeout=self.sdk.timeout
                ),
            )
            options = sorted(
                prop.options or [], key=lambda o: o.display_order if o.display_order is not None else 0
            )
            self._stage_order = [o.value for o in options if not o.hidden]
        return self._stage_order

    def current_stages(self, ids: Sequence[str]) -> dict[str, str | None]:
        held = self.read_back(ids, ["lifecyclestage"])
        return {remote_id: properties.get("lifecyclestage") or None for remote_id, properties in held.items()}

    def push(self, updates: Sequence[ScoreUpdate]) -> PushReport:
        from hubspot.crm.contacts import BatchInputSimplePublicObjectBatchInput, SimplePublicObjectBatchInput

        report = PushReport()
        if not updates:
            return report
        before = self.sdk.requests
        if not self._fields_ready:
            self.ensure_fields()
        prefix = self.settings.field_prefix
        wanted_stage = {
            u.remote_id: writeback.lifecycle_value(u.lifecycle)
            for u in updates
            if u.lifecycle and self.settings.lifecycle_writeback
        }
        # The stage each contact held at our last pull decides what is forward; only contacts never
        # seen with one are read first (a batch/read a 100, which would halve the push's throughput).
        current = {u.remote_id: u.lifecycle_seen for u in updates if u.remote_id in wanted_stage}
        unknown = sorted(i for i, stage in current.items() if stage is None)
        current.update(self.current_stages(unknown) if unknown else {})
        unverified = {i for i in wanted_stage if i not in unknown}
        order = self.lifecycle_order() if wanted_stage else []
        fields_of = {u.remote_id: writeback.properties_for(u.fields, prefix) for u in updates}

        def properties(remote_id: str) -> dict[str, str]:
            props = dict(fields_of[remote_id])
            target = wanted_stage.get(remote_id)
            if target and writeback.is_forward(current.get(remote_id), target, order):
                props["lifecyclestage"] = target  # hubspot.md §3: forward only
            return props

        pending: dict[str, dict[str, str]] = {}
        for update in updates:
            props = properties(update.remote_id)
            if props:
                pending[update.remote_id] = props
            else:
                report.written.append(update.remote_id)  # nothing of ours to change
        for round_number in range(1, MAX_PUSH_ROUNDS + 1):
            retry_next: dict[str, dict[str, str]] = {}
            recheck: list[str] = []
            ids = list(pending)
            chunks = [ids[start : start + BATCH_SIZE] for start in range(0, len(ids), BATCH_SIZE)]

            def send(chunk: list[str], sent: dict[str, dict[str, str]] = pending) -> Any:
                body = BatchInputSimplePublicObjectBatchInput(
                    inputs=[SimplePublicObjectBatchInput(id=i, properties=sent[i]) for i in chunk]
                )
                return self.sdk.call(
                    "POST",
                    "/crm/v3/objects/contacts/batch/update",
                    lambda c: c.crm.contacts.batch_api.update(
                        batch_input_simple_public_object_batch_input=body, _request_timeout=self.sdk.timeout
                    ),
                )

            # A few batches in flight, so latency does not leave the rate limit unused; the shared
            # limiter paces them (hubspot.md §5), and results are handled in order.
            with ThreadPoolExecutor(self.push_workers, thread_name_prefix="hubspot-push") as pool:
                results = list(pool.map(send, chunks))
            for result in results:
                report.written.extend(str(r.id) for r in result.results or [])
                # hubspot.md §5: a 207 lists failed items with their ids in context.ids
                for err in getattr(result, "errors", None) or []:
                    data = to_dict(err)
                    failed_ids = [str(i) for i in ((data.get("context") or {}).get("ids") or [])]
                    retriable = writeback.retriable_category(data.get("category"))
                    reason = self.redactor.text(f"{data.get('category')}: {data.get('message')}")
                    for fid in failed_ids:
                        if fid not in pending:
                            continue
                        stale_stage = (
                            fid in unverified
                            and "lifecyclestage" in pending[fid]
                            and "lifecyclestage" in str(data.get("message") or "").lower()
                        )
                        if stale_stage and round_number < MAX_PUSH_ROUNDS:
                            # The error names the stage, which may have moved on since our pull
                            # (hubspot.md §3: a backward write is refused or ignored): read it, and
                            # send again without a lifecycle that is no longer forward.
                            recheck.append(fid)
                        elif retriable and round_number < MAX_PUSH_ROUNDS:
                            retry_next[fid] = pending[fid]
                        else:
                            report.failed.append(PushFailure(fid, reason, retriable=retriable))
            if recheck:
                current.update(self.current_stages(recheck))
                unverified.difference_update(recheck)
                retry_next.update({fid: props for fid in recheck if (props := properties(fid))})
                report.written.extend(fid for fid in recheck if fid not in retry_next)
            if not retry_next:
                break
            pending = retry_next
        report.requests = self.sdk.requests - before
        return report

    def read_fields(self, remote_ids: Sequence[str]) -> dict[str, dict[str, str | None]]:
        prefix = self.settings.field_prefix
        names = [f"{prefix}{name}" for name in WRITEBACK_FIELDS]
        held = self.read_back(list(remote_ids), names)
        return {
            remote_id: {name: _plain(properties.get(f"{prefix}{name}")) for name in WRITEBACK_FIELDS}
            for remote_id, properties in held.items()
        }

    def read_back(self, ids: Sequence[str], names: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Properties as HubSpot now holds them (tests and ``leadsync push --verify``)."""
        from hubspot.crm.contacts import BatchReadInputSimplePublicObjectId, SimplePublicObjectId

        out: dict[str, dict[str, Any]] = {}
        for start in range(0, len(ids), BATCH_SIZE):
            body = BatchReadInputSimplePublicObjectId(
                inputs=[SimplePublicObjectId(id=i) for i in ids[start : start + BATCH_SIZE]],
                properties=list(names),
                properties_with_history=[],
            )
            result = self.sdk.call(
                "POST",
                "/crm/v3/objects/contacts/batch/read",
                lambda c, b=body: c.crm.contacts.batch_api.read(
                    batch_read_input_simple_public_object_id=b, _request_timeout=self.sdk.timeout
                ),
            )
            out.update({str(r.id): dict(r.properties or {}) for r in result.results})
        return out


_plain = normalize.plain_value
