"""The ActiveCampaign connector (API v3): pull contacts and engagement, write scores back.

Facts: the ActiveCampaign fact sheet, activecampaign.md (cited as "§N" next to the code that depends on
them). Streams, in pull order:

* ``contacts``: ``GET /contacts`` by ``id_greater`` with ``include=fieldValues``, incremental on
  ``filters[updated_after]`` with an overlap, checked and de-duplicated on our side (§2, §11.2);
* ``activities``: the account-wide ``GET /activities`` feed since ``after`` (§5), email events;
* ``tracking_logs``: ``GET /contacts/{id}/trackingLogs`` (§5: no account-wide or date-filtered
  read exists), event-tracking events, one request a contact: each run the contacts that changed,
  and a sweep of every contact under a request budget per run, carried over runs in the cursor;
* ``deals``: won deals (``filters[status]=1``) since ``filters[updated_after]`` (§5).

All HTTP goes through the shared core: one client (``connectors.http``), one retry policy
(``connectors.retry``, with ActiveCampaign's rows in front), one limiter (5 requests/second, §8)
and the one page loop (``connectors.streams``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import httpx

from leadsync.connectors.activecampaign import normalize
from leadsync.connectors.activecampaign.streams import (
    ACTIVITIES,
    CONTACT_IDS,
    CONTACT_TAGS,
    CONTACTS,
    DEALS,
    FIELDS,
    TRACKING_LOGS,
)
from leadsync.connectors.activecampaign.window import Window
from leadsync.connectors.activecampaign.writeback import FIELD_TYPES, Writer
from leadsync.connectors.auth import HeaderToken
from leadsync.connectors.base import (
    CheckResult,
    Connector,
    ProfileField,
    PullBatch,
    PushReport,
    ScoreUpdate,
    SourceSettings,
    StreamTally,
)
from leadsync.connectors.catalog import stream_names
from leadsync.connectors.errors import AuthError, BadRecord, ConfigError, NotFound, RateLimited
from leadsync.connectors.http import build_client, logging_hooks
from leadsync.connectors.ratelimit import (
    UNLIMITED,
    CompositeLimiter,
    Limiter,
    RollingWindowLimiter,
    shared_limiter,
)
from leadsync.connectors.records import EventRecord, EventType, Platform
from leadsync.connectors.redaction import Redactor
from leadsync.connectors.retry import Action, ErrorRule, Reply, RetryPolicy, response_json
from leadsync.connectors.streams import iter_pages

__all__ = ["ActiveCampaignConnector", "API_TOKEN_SECRET", "ac_rules"]

log = logging.getLogger("leadsync.connectors.activecampaign")

API_TOKEN_SECRET = "api_token"
# §1 / §10: peers check the token with GET /users/me (spec:get-user-loggedin).
PROBE_PATH = "users/me"
REQUESTS_PER_SECOND = 5  # §8: 5 requests/second per account, shared by every integration
IMPORTS_PER_MINUTE = 100  # §7: multi-contact bulk imports per minute
# The limiter's slack beyond one window (connectors.ratelimit: stamps are completion times, which
# the server's arrival stamps can never follow, so the margin only absorbs timer and rounding
# granularity). §8 documents a plain 5/s with no burst; at 5 requests a window every 10 ms of
# margin costs 1 % of the budget, so 10 ms rather than the shared 50 ms default.
SAFETY_MARGIN_S = 0.01
DEFAULT_LOOKBACK = timedelta(hours=1)
STREAMS = stream_names(Platform.ACTIVECAMPAIGN)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Recently active contacts remembered in the tracking-log cursor, read first by the next sweep.
HOT_LIMIT = 2000


def _is_bulk_rate_limit(response: httpx.Response) -> bool:
    body = response_json(response)
    return isinstance(body, dict) and "rate limit" in str(body.get("message", "")).lower()


def ac_rules(*, bulk_wait_s: float = 15.0) -> tuple[ErrorRule, ...]:
    """ActiveCampaign's rows in front of the shared classification table."""
    return (
        # §7: the bulk-import limit (100 requests/minute) is answered with HTTP 400, not 429.
        ErrorRule(
            Action.RATE_LIMITED,
            status=400,
            when=_is_bulk_rate_limit,
            error=RateLimited,
            wait_s=bulk_wait_s,
            message="bulk import rate limit (100 imports a minute)",
            name="bulk import rate limit",
        ),
        # §8: older reports of 503 at the limit are covered by the 5xx row; intermittent 403s are
        # NOT retried: a wrong token must fail fast with the variable named (check()).
    )


class ActiveCampaignConnector(Connector):
    platform: ClassVar[Platform] = Platform.ACTIVECAMPAIGN

    def __init__(self, settings: SourceSettings, *, transport: httpx.BaseTransport | None = None) -> None:
        super().__init__(settings, transport=transport)
        if not settings.base_url:
            # §1: never build the URL from the account name; use the "API URL" from
            # Settings → Developer, configured whole (e.g. https://acme.api-us1.com/api/3).
            raise ConfigError(
                "ActiveCampaign needs base_url, the full API URL from Settings > Developer "
                "(for example https://youraccount.api-us1.com/api/3)",
                key=f"sources.{settings.name}.base_url",
            )
        token = settings.secrets.get(API_TOKEN_SECRET)
        if not token:
            raise ConfigError(
                f"source {settings.name!r}: the ActiveCampaign API token is not set "
                f"(environment variable {self.token_variable})",
                key=f"sources.{settings.name}",
            )
        options = settings.options
        self._auth = HeaderToken("Api-Token", token)  # §1
        self.redactor = Redactor(self._auth.secrets())
        self.retry = (
            RetryPolicy(source=settings.name, credential_env=self.token_variable, redactor=self.redactor)
            .with_rules(*ac_rules(bulk_wait_s=float(options.get("bulk_rate_wait_s", 15.0))))
            .configured(options)
        )
        rate = float(options.get("requests_per_second", REQUESTS_PER_SECOND) or 0)
        # activecampaign.md §8: 5 requests/s per account, shared by every client in this process.
        self.limiter: Limiter = (
            shared_limiter(
                ("activecampaign", settings.base_url, settings.name, rate),
                lambda: RollingWindowLimiter(
                    max(1, int(rate)),
                    1.0 if rate >= 1 else 1.0 / rate,
                    safety_margin_s=SAFETY_MARGIN_S,
                    remaining_header="RateLimit-Remaining",
                ),
            )
            if rate > 0
            else UNLIMITED
        )
        # activecampaign.md §7: at most 100 multi-contact imports a minute per account, answered
        # with HTTP 400 beyond; held before the 5/s slot (CompositeLimiter order) by each import.
        self.import_limiter: Limiter = (
            CompositeLimiter(
                shared_limiter(
                    ("activecampaign-imports", settings.base_url, settings.name),
                    lambda: RollingWindowLimiter(IMPORTS_PER_MINUTE, 60.0, name="bulk imports"),
                ),
                self.limiter,
            )
            if rate > 0
            else UNLIMITED
        )
        self.field_ids: dict[str, int] | None = None  # logical -> field id, once ensure_fields ran
        self.lookback = timedelta(seconds=float(options.get("lookback_s", DEFAULT_LOOKBACK.total_seconds())))
        self.profile = {**normalize.PROFILE_PERSTAGS, **dict(options.get("profile_fields") or {})}
        self.activity_table = dict(normalize.ACTIVITY_EVENTS)
        for key, value in (options.get("activity_map") or {}).items():
            kind, _, action = str(key).partition(":")
            self.activity_table[(kind.lower(), action.lower())] = EventType(value)
        self.tracking_names = {
            str(k).lower(): EventType(v) for k, v in (options.get("tracking_map") or {}).items()
        }
        self.clock = time.time  # wall clock for the tracking-log sweep schedule (injectable)
        # What this run's contacts and activities streams delivered: the tracking-log follow-up reads
        # (``_pull_tracking_logs``) start from it instead of walking both again (issue 23).
        self._delivered: dict[str, _Delivered] = {}
        self._client: httpx.Client | None = None
        self._perstags: dict[str, str] | None = None

    # --- plumbing ---------------------------------------------------------------------------

    @property
    def token_variable(self) -> str:
        return self.settings.secret_names.get(API_TOKEN_SECRET, "the api_token secret")

    @property
    def client(self) -> httpx.Client:
        if self._client is None:
            self._client = build_client(
                base_url=str(self.settings.base_url).rstrip("/") + "/",
                auth=self._auth,
                timeout=self.settings.timeout_s,
                max_connections=REQUESTS_PER_SECOND,
                transport=self.transport,
                event_hooks=logging_hooks(log, self.redactor),
            )
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        limiter: Limiter | None = None,
    ) -> Reply:
        """One request through the shared retry policy and limiter (writes and single reads);
        ``limiter`` replaces the account's (bulk imports add the §7 import cap to it)."""
        built = self.client.build_request(method, path, params=dict(params or {}) or None, json=json)
        return self.retry.send(self.client, built, limiter=limiter or self.limiter)

    def _pages(self, spec: Any, **kwargs: Any) -> Iterator[Any]:
        return iter_pages(self.client, spec, retry_policy=self.retry, limiter=self.limiter, **kwargs)

    # --- Connector --------------------------------------------------------------------------

    def check(self) -> CheckResult:
        try:
            reply = self.request("GET", PROBE_PATH)
        except AuthError as exc:
            raise AuthError(
                f"source {self.settings.name!r}: ActiveCampaign refused the API token "
                f"(HTTP {exc.status}); check the environment variable {self.token_variable} "
                "and that its user may use the API",
                source=self.settings.name,
                status=exc.status,
            ) from None
        user = (reply.body or {}).get("user") or {}
        account = user.get("username") or user.get("email")
        return CheckResult(True, f"ActiveCampaign token accepted for user {account}", account=account)

    def streams(self) -> Sequence[str]:
        return STREAMS

    def pull(self, stream: str, cursor: Any, *, full: bool = False) -> Iterator[PullBatch]:
        window = Window.start(cursor, lookback=self.lookback, full=full)
        if stream in FOLLOWED:
            self._delivered[stream] = _Delivered(
                start=_since_of(cursor, full), resumed=window.resume is not None
            )
        if stream == "contacts":
            yield from self._pull_contacts(window)
        elif stream == "activities":
            yield from self._pull_activities(window)
        elif stream == "tracking_logs":
            yield from self._pull_tracking_logs(
                window, cursor if isinstance(cursor, Mapping) and not full else {}
            )
        elif stream == "deals":
            yield from self._pull_deals(window)
        else:
            raise ValueError(f"unknown ActiveCampaign stream {stream!r}; known: {', '.join(STREAMS)}")

    # --- pull -------------------------------------------------------------------------------

    def field_perstags(self, *, refresh: bool = False) -> dict[str, str]:
        """Field id -> personalisation tag (§3: values reference fields by numeric id only)."""
        if self._perstags is None or refresh:
            perstags: dict[str, str] = {}
            for page in self._pages(FIELDS):
                for custom in page.records:
                    perstags[str(custom.get("id"))] = str(custom.get("perstag") or custom.get("title") or "")
            self._perstags = perstags
        return self._perstags

    def _pull_contacts(self, window: Window) -> Iterator[PullBatch]:
        perstags = self.field_perstags(refresh=True)
        params: dict[str, Any] = {}
        if window.bound_text():
            params["filters[updated_after]"] = window.bound_text()
        source = self.settings.name
        tally = StreamTally("contacts")
        for page in self._pages(CONTACTS, params=params, resume_from=window.resume):
            values: dict[str, dict[str, str]] = {}
            for item in (page.body or {}).get("fieldValues") or []:
                if isinstance(item, Mapping) and item.get("contact") is not None:
                    values.setdefault(str(item["contact"]), {})[str(item.get("field"))] = str(
                        item.get("value") or ""
                    )
            tags = _tags_by_contact(page.body or {})
            batch = PullBatch(stream="contacts")
            for raw in page.records:
                try:
                    record = normalize.contact_record(
                        raw,
                        values.get(str(raw.get("id")), {}),
                        source=source,
                        perstag_of=perstags,
                        profile=self.profile,
                        field_prefix=self.settings.field_prefix,
                        tags=tags.get(str(raw.get("id")), []),
                    )
                except BadRecord as bad:
                    batch.bad.append(bad)
                    continue
                window.learn_offset(str(raw.get("udate") or ""))
                assert record.updated_at is not None
                if window.accept(record.remote_id, record.updated_at):
                    batch.contacts.append(record)
            batch.cursor = window.checkpoint(page.state)
            self._delivered["contacts"].add(batch)
            yield tally.count(batch, len(page.records), page.remaining)  # §2: meta.total
        self._log_window("contacts", window)

    def _pull_activities(self, window: Window) -> Iterator[PullBatch]:
        params: dict[str, Any] = {}
        if window.bound_text():
            params["after"] = window.bound_text()
        source = self.settings.name
        tally = StreamTally("activities")
        for page in self._pages(ACTIVITIES, params=params, resume_from=window.resume):
            batch = PullBatch(stream="activities")
            for raw in page.records:
                self._accept_event(
                    batch,
                    window,
                    raw,
                    "tstamp",
                    lambda r: normalize.activity_event(r, source=source, table=self.activity_table),
                )
            batch.cursor = window.checkpoint(page.state)
            self._delivered["activities"].add(batch)
            yield tally.count(batch, len(page.records), page.remaining)
        self._log_window("activities", window)

    def _pull_tracking_logs(self, window: Window, cursor: Mapping[str, Any]) -> Iterator[PullBatch]:
        """§5: tracking logs exist only per contact, with no date filter (one request a contact).

        Each run first reads the contacts that changed (``filters[updated_after]``) or have new
        activities (``after``) since the window (``_follow_up_candidates``, issue 23); the window
        drops what earlier runs emitted. Whether a tracked event alone bumps ``udate`` is
        unconfirmed (§11.6), which is what the *sweep* is for: every contact read once, started on
        the first run and again when the last one began ``tracking_sweep_hours`` ago (24).

        A sweep advances under a request budget per run (``tracking_sweep_requests``; by default
        half of what the source's interval allows at the rate cap, the other half left to the
        incremental work) and carries on in the next run from where its cursor says (issue 23):
        first the contacts that were recently active (activities or tracked events: the most
        likely to have new tracked events), then every contact by id (``id_greater``), skipping
        those the sweep already read. So no run holds the source past its interval however large
        the account.

        Runs between sweeps move ``since`` past the events of contacts they did not read, so a
        sweep accepts from ``floor``: a stamp before which every event existed when the previous
        sweep began (so that sweep emitted them). Re-emitted events are upserts by source id.
        """
        now = self.clock()
        swept_at = cursor.get("swept_at")
        sweep = dict(cursor["sweep"]) if isinstance(cursor.get("sweep"), Mapping) else None
        sweep_every = float(self.settings.options.get("tracking_sweep_hours", 24)) * 3600
        hot: dict[str, str] = dict(cursor.get("hot") or {})
        if sweep is None and (swept_at is None or now - float(swept_at) >= sweep_every):
            sweep = self._new_sweep(window, cursor, hot, now)
        tally = StreamTally("contacts")
        if window.since is not None:
            candidates = self._follow_up_candidates(window, cursor)
            batch = PullBatch(stream="tracking_logs")
            self._tracking_logs_of(sorted(candidates, key=_id_order), window, batch)
            batch.cursor = self._tracking_cursor(window, cursor, sweep, hot, swept_at, batch)
            yield tally.count(batch, len(candidates), None if sweep else 0)
        if sweep is not None:
            yield from self._sweep(window, cursor, sweep, hot, tally)
        self._log_window("tracking_logs", window)

    def _new_sweep(
        self, window: Window, cursor: Mapping[str, Any], hot: Mapping[str, str], now: float
    ) -> dict[str, Any]:
        """A sweep's progress, kept in the cursor until every contact has been read once."""
        swept_from = cursor.get("swept_from")
        return {
            "started": now,
            # the first sweep accepts everything; a later one from where the previous one began
            "floor": swept_from or (None if window.since is None else _iso(EPOCH)),
            "since_at_start": _iso(window.since) if window.since else None,
            "hot": sorted(hot, key=lambda c: (hot[c], _id_order(c)), reverse=True),
            "read_hot": [],
            "after_id": None,
        }

    def _sweep(
        self,
        window: Window,
        cursor: Mapping[str, Any],
        sweep: dict[str, Any],
        hot: dict[str, str],
        tally: StreamTally,
    ) -> Iterator[PullBatch]:
        """Advance the sweep by this run's budget: the recently active first, then everyone by id
        (a page of ids at a time, each page's progress committed with its events)."""
        budget = self._sweep_budget()
        floor = datetime.fromisoformat(sweep["floor"]) - self.lookback if sweep.get("floor") else None
        swept_at = cursor.get("swept_at")
        while sweep["hot"] and budget > 0:  # a page's worth at a time, each committed with its progress
            batch = PullBatch(stream="tracking_logs")
            taken = sweep["hot"][: min(budget, CONTACT_IDS.page_size)]
            for contact_id in taken:
                self._sweep_contact(contact_id, window, floor, batch)
            budget -= len(taken)
            del sweep["hot"][: len(taken)]
            sweep["read_hot"].extend(taken)
            batch.cursor = self._tracking_cursor(window, cursor, sweep, hot, swept_at, batch)
            yield tally.count(batch, len(taken), None)
        read_hot = set(sweep["read_hot"])
        while not sweep["hot"] and budget > 0:
            params = {"id_greater": sweep["after_id"]} if sweep["after_id"] else None
            page = next(iter(self._pages(CONTACT_IDS, params=params, max_pages=1)), None)
            budget -= 1
            ids = [str(c.get("id")) for c in (page.records if page is not None else [])]
            batch = PullBatch(stream="tracking_logs")
            read = 0
            for contact_id in ids:
                if contact_id not in read_hot:
                    if budget <= 0:
                        break
                    self._sweep_contact(contact_id, window, floor, batch)
                    budget -= 1
                read += 1
                sweep["after_id"] = contact_id
            if read == len(ids) and len(ids) < CONTACT_IDS.page_size:  # the last page, read whole
                swept_at = sweep["started"]
                batch.cursor = self._tracking_cursor(window, cursor, None, hot, swept_at, batch)
                floor_next = self._sweep_began_at(
                    datetime.fromisoformat(sweep["since_at_start"]) if sweep["since_at_start"] else None,
                    batch.cursor,
                    float(sweep["started"]),
                )
                if floor_next is not None:
                    batch.cursor["swept_from"] = floor_next
                yield tally.count(batch, read, 0)
                return
            batch.cursor = self._tracking_cursor(window, cursor, sweep, hot, swept_at, batch)
            yield tally.count(batch, read, page.remaining if page is not None else None)

    def _sweep_budget(self) -> int:
        """Requests a run's sweep may make: ``tracking_sweep_requests``, else half the interval's
        worth at the rate cap (§8: 5/s), the other half left to the incremental work."""
        configured = self.settings.options.get("tracking_sweep_requests")
        if configured:
            return int(configured)
        rate = float(self.settings.options.get("requests_per_second", REQUESTS_PER_SECOND) or 0)
        if rate <= 0:  # no client-side rate cap (a sandbox on loopback): no budget either
            return 2**62
        return max(1, int(self.settings.interval_s * rate / 2))

    def _sweep_contact(
        self, contact_id: str, window: Window, floor: datetime | None, batch: PullBatch
    ) -> None:
        """One contact's tracking logs for the sweep: every event from the sweep's floor on."""
        source = self.settings.name
        try:
            pages = list(self._pages(TRACKING_LOGS, path_params={"id": contact_id}))
        except NotFound:  # a recently active contact deleted since
            return
        for logs in pages:
            for raw in logs.records:
                try:
                    event = normalize.tracking_event(raw, source=source, names=self.tracking_names)
                except BadRecord as bad:
                    batch.bad.append(bad)
                    continue
                if event is None:
                    continue
                window.learn_offset(str(raw.get("tstamp") or ""))
                try:
                    stamp = normalize.parse_ac_time(raw.get("tstamp")) or event.occurred_at
                except ValueError:
                    stamp = event.occurred_at
                # older than the floor: emitted by the previous sweep at the latest
                if window.accept_from(event.source_id, stamp, floor):
                    batch.events.append(event)

    def _tracking_cursor(
        self,
        window: Window,
        cursor: Mapping[str, Any],
        sweep: dict[str, Any] | None,
        hot: dict[str, str],
        swept_at: Any,
        batch: PullBatch,
    ) -> dict[str, Any]:
        """The cursor committed with ``batch``: the window, the last complete sweep, the sweep
        under way (if any) and the recently active contacts (the next sweep reads them first:
        those with tracked events in this run, and those of this run's activities)."""
        stamp = _iso(datetime.fromtimestamp(self.clock(), UTC))
        activities = self._delivered.get("activities")
        for contact_id in (activities.contacts if activities is not None else set()) | {
            str(e.remote_contact_id) for e in batch.events if e.remote_contact_id
        }:
            hot[str(contact_id)] = stamp
        if len(hot) > HOT_LIMIT:  # the most recent only
            for contact_id in sorted(hot, key=lambda c: hot[c])[: len(hot) - HOT_LIMIT]:
                del hot[contact_id]
        state: dict[str, Any] = {**window.final(), "hot": dict(hot)}
        if swept_at is not None:
            state["swept_at"] = swept_at
        if cursor.get("swept_from"):
            state["swept_from"] = cursor["swept_from"]
        if sweep is not None:
            state["sweep"] = {**sweep, "hot": list(sweep["hot"]), "read_hot": list(sweep["read_hot"])}
            state["sweep_started"] = sweep["started"]
        self._note_followed(state)
        return state

    def _follow_up_candidates(self, window: Window, cursor: Mapping[str, Any]) -> set[str]:
        """The contacts whose tracking logs a run between sweeps reads (issue 23 changed this).

        When this run's contacts and activities streams each ran whole, from exactly where they
        were when the last tracking step finished (``followed`` in the cursor), what they delivered
        is every change since: the contacts they brought, less the echoes of leadsync's own writes
        (``note_echoes``), and the contacts of the new activities they brought. Otherwise (a stream
        deselected, failed or resumed, or a tracking step that did not finish) both are walked
        again from the window's bound, as before, still less the echoes.
        """
        followed = cursor.get("followed") or {}
        runs = {name: self._delivered.get(name) for name in FOLLOWED}
        if all(
            run is not None and run.complete and not run.resumed and run.start == followed.get(name)
            for name, run in runs.items()
        ):
            return (runs["contacts"].contacts - self.echoes) | runs["activities"].contacts  # type: ignore[union-attr]
        candidates: set[str] = set()
        bound = window.bound_text()
        for page in self._pages(CONTACT_IDS, params={"filters[updated_after]": bound} if bound else None):
            candidates.update(str(c.get("id")) for c in page.records if str(c.get("id")) not in self.echoes)
        for page in self._pages(ACTIVITIES, params={"after": bound} if bound else None):
            candidates.update(str(a.get("subscriberid")) for a in page.records if a.get("subscriberid"))
        return candidates

    def _note_followed(self, final: dict[str, Any]) -> None:
        """A finished tracking step records where the contacts and activities streams stood."""
        runs = [self._delivered.get(name) for name in FOLLOWED]
        if all(run is not None and run.complete and not run.resumed for run in runs):
            final["followed"] = {name: run.end for name, run in zip(FOLLOWED, runs, strict=True)}  # type: ignore[union-attr]

    def _sweep_began_at(self, since: datetime | None, final: Mapping[str, Any], started: float) -> str | None:
        """A platform stamp no later than when a sweep began, as late as we can tell.

        Two lower bounds, the later wins: the ``since`` the sweep started from (the newest stamp
        seen before it), and the newest stamp seen at its end less its wall-clock duration (an
        event made after the sweep began, and so perhaps missed, is stamped after it began).
        Platform stamps are creation times (§5 ``tstamp``); the next sweep also subtracts the lookback.
        """
        bounds: list[datetime] = []
        if since is not None and since > EPOCH:
            bounds.append(since)
        if final.get("since"):
            elapsed = max(self.clock() - started, 0.0)
            bounds.append(datetime.fromisoformat(str(final["since"])) - timedelta(seconds=elapsed))
        return max(bounds).isoformat(timespec="seconds") if bounds else None

    def _tracking_logs_of(self, contact_ids: Sequence[Any], window: Window, batch: PullBatch) -> None:
        source = self.settings.name
        for contact_id in contact_ids:
            if contact_id in (None, "", "0"):
                continue
            for logs in self._pages(TRACKING_LOGS, path_params={"id": contact_id}):
                for raw in logs.records:
                    self._accept_event(
                        batch,
                        window,
                        raw,
                        "tstamp",
                        lambda r: normalize.tracking_event(r, source=source, names=self.tracking_names),
                    )

    def _pull_deals(self, window: Window) -> Iterator[PullBatch]:
        params: dict[str, Any] = {}
        if window.bound_text():
            params["filters[updated_after]"] = window.bound_text()
        source = self.settings.name
        tally = StreamTally("deals")
        for page in self._pages(DEALS, params=params, resume_from=window.resume):
            batch = PullBatch(stream="deals")
            for raw in page.records:
                if str(raw.get("status")) != "1":  # never trust the filter: only won deals (§11.2)
                    continue
                self._accept_event(
                    batch, window, raw, "mdate", lambda r: normalize.deal_event(r, source=source)
                )
            batch.cursor = window.checkpoint(page.state)
            yield tally.count(batch, len(page.records), page.remaining)
        self._log_window("deals", window)

    def _accept_event(self, batch: PullBatch, window: Window, raw: Any, stamp_key: str, convert: Any) -> None:
        try:
            event: EventRecord | None = convert(raw)
        except BadRecord as bad:
            batch.bad.append(bad)
            return
        if event is None:
            return
        window.learn_offset(str(raw.get(stamp_key) or ""))
        # The window key is the record's own id; its stamp is the time the filter applies to.
        try:
            stamp = normalize.parse_ac_time(raw.get(stamp_key)) or event.occurred_at
        except ValueError:
            stamp = event.occurred_at
        if window.accept(event.source_id, stamp):
            batch.events.append(event)

    def fetch_contact(self, remote_id: str) -> PullBatch | None:
        """The contact as the contacts stream reads it (one keyset page from ``id_greater`` =
        id - 1, with its field values and tags side-loaded), its latest activities
        (``contact``, the docs' own filter, §5) and its tracking logs (per contact, §5)."""
        if not remote_id.isdigit():
            return None
        perstags = self.field_perstags()
        params = {**CONTACTS.params, "id_greater": str(int(remote_id) - 1), "limit": 1}
        body = self.request("GET", "contacts", params=params).body or {}
        raws = [r for r in body.get("contacts") or [] if str(r.get("id")) == remote_id]
        if not raws:
            return None
        values: dict[str, str] = {
            str(item.get("field")): str(item.get("value") or "")
            for item in body.get("fieldValues") or []
            if isinstance(item, Mapping) and str(item.get("contact")) == remote_id
        }
        batch = PullBatch(stream="contacts")
        try:
            batch.contacts.append(
                normalize.contact_record(
                    raws[0],
                    values,
                    source=self.settings.name,
                    perstag_of=perstags,
                    profile=self.profile,
                    field_prefix=self.settings.field_prefix,
                    tags=_tags_by_contact(body).get(remote_id, []),
                )
            )
        except BadRecord as bad:
            batch.bad.append(bad)
            return batch
        window = Window.start(None, lookback=self.lookback, full=True)
        recent = self.request(
            "GET", "activities", params={"contact": remote_id, "orders[tstamp]": "DESC", "limit": 100}
        ).body
        source = self.settings.name
        for raw in (recent or {}).get("activities") or []:
            self._accept_event(
                batch,
                window,
                raw,
                "tstamp",
                lambda r: normalize.activity_event(r, source=source, table=self.activity_table),
            )
        self._tracking_logs_of([remote_id], window, batch)
        return batch

    def _log_window(self, stream: str, window: Window) -> None:
        if window.dropped_old:
            log.info(
                "%s: %s: dropped %d record(s) older than the requested window (the filter was not applied)",
                self.settings.name,
                stream,
                window.dropped_old,
            )

    def read_owned(self, remote_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """``read_fields`` plus leadsync's tags on each contact (``GET /contacts/{id}/contactTags``, §4)."""

        held: dict[str, dict[str, Any]] = {k: dict(v) for k, v in self.read_fields(remote_ids).items()}
        writer = Writer(self)
        prefix = self.settings.field_prefix.lower()
        for remote_id in remote_ids:
            names = [
                writer._tag_name(str(row.get("tag")))
                for page in self._pages(CONTACT_TAGS, path_params={"id": remote_id})
                for row in page.records
            ]
            held.setdefault(remote_id, {})["tags"] = sorted(n for n in names if n and n.startswith(prefix))
        return held

    # --- profile fields --------------------------------------------------------------------

    def profile_fields(self, sample: int = 500) -> list[ProfileField]:
        """Custom fields (§3) and their fill rate over the first ``sample`` contacts (by id: the
        keyset walk of §2), whose values come side-loaded with ``include=fieldValues``."""
        definitions = [custom for page in self._pages(FIELDS) for custom in page.records]
        filled = {str(custom.get("id")): 0 for custom in definitions}
        sampled = 0
        params = {"include": "fieldValues"}
        for page in self._pages(CONTACTS, params=params):
            wanted = {str(c.get("id")) for c in page.records[: sample - sampled]}
            sampled += len(wanted)
            holding: dict[str, set[str]] = {}
            for value in (page.body or {}).get("fieldValues") or []:
                contact, field_id = str(value.get("contact")), str(value.get("field"))
                if contact in wanted and field_id in filled and str(value.get("value") or "").strip():
                    holding.setdefault(field_id, set()).add(contact)
            for field_id, contacts in holding.items():
                filled[field_id] += len(contacts)
            if sampled >= sample:
                break
        prefix = self.settings.field_prefix.upper()
        return [
            ProfileField(
                name=str(custom.get("perstag") or custom.get("id")),
                label=str(custom.get("title") or custom.get("perstag") or ""),
                type=str(custom.get("type") or "?"),
                filled=filled[str(custom.get("id"))],
                sampled=sampled,
                owned=str(custom.get("perstag") or "").upper().startswith(prefix),
            )
            for custom in definitions
        ]

    # --- push -------------------------------------------------------------------------------

    def ensure_fields(self) -> None:

        Writer(self).ensure_fields()

    def push(self, updates: Sequence[ScoreUpdate]) -> PushReport:

        return Writer(self).push(updates)

    def read_fields(self, remote_ids: Sequence[str]) -> dict[str, dict[str, str | None]]:
        """Custom field values as ActiveCampaign holds them, one ``fieldValues`` GET per contact."""

        writer = Writer(self)
        field_of = {str(field_id): logical for logical, field_id in writer.ensure_fields().items()}
        out: dict[str, dict[str, str | None]] = {}
        for remote_id in remote_ids:
            held = {name: None for name in FIELD_TYPES}
            body = self.request("GET", f"contacts/{remote_id}/fieldValues").body or {}
            for value in body.get("fieldValues") or []:
                logical = field_of.get(str(value.get("field")))
                if logical is not None:
                    held[logical] = value.get("value") or None
            out[remote_id] = held
        return out


# The streams whose deliveries a tracking step follows up (``_follow_up_candidates``).
FOLLOWED = ("contacts", "activities")


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def _id_order(contact_id: str) -> int:
    return int(contact_id) if contact_id.isdigit() else 0


def _since_of(cursor: Any, full: bool) -> str | None:
    return None if full or not isinstance(cursor, Mapping) else cursor.get("since")


@dataclass
class _Delivered:
    """What one run of the contacts or activities stream delivered: the contacts it brought (or the
    contacts of the activities it brought), from which ``since`` to which, and whether it ran whole."""

    start: str | None
    resumed: bool
    end: str | None = None
    contacts: set[str] = field(default_factory=set)
    complete: bool = False

    def add(self, batch: PullBatch) -> None:
        self.contacts.update(contact.remote_id for contact in batch.contacts)
        self.contacts.update(event.remote_contact_id for event in batch.events)
        if isinstance(batch.cursor, Mapping) and "resume" not in batch.cursor:
            self.end, self.complete = batch.cursor.get("since"), True


def _tags_by_contact(body: Mapping[str, Any]) -> dict[str, list[str]]:
    """Tag names per contact id from a page's side-loaded ``contactTags`` and ``tags`` (§2, §4)."""
    names = {str(tag.get("id")): str(tag.get("tag") or "") for tag in body.get("tags") or []}
    found: dict[str, list[str]] = {}
    for row in body.get("contactTags") or []:
        name = names.get(str(row.get("tag")))
        if name:
            found.setdefault(str(row.get("contact")), []).append(name)
    return found
