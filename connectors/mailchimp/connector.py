"""The Mailchimp connector (Marketing API 3.0 through ``mailchimp-marketing`` 3.0.80).

Every request is performed by the SDK (``sdk.SdkTransport``: a pooled ``requests.Session`` with
timeouts) and driven by the shared core: the one page loop (``connectors.streams``), the one
retry policy (``connectors.retry``) and a ``ConcurrencyLimiter`` of the configured concurrency
(at most 10, mailchimp.md §9). Facts cited as "mailchimp.md §N".

Streams:

* ``members``: every member of every configured audience (all by default), incrementally with
  ``since_last_changed`` sorted by ``last_changed`` ASC; cursor per audience.
* ``email_activity``: opens, clicks and bounces per sent campaign (``/reports/{id}/email-activity``
  with ``since``), opens flagged as machine from ``open-details``' ``is_proxy_open``; cursor per
  campaign.
* ``orders``, ``carts``: each store's e-commerce orders and abandoned carts as ``purchase`` and
  ``cart_abandoned`` events of the member of the store's audience with the customer's email (no
  server-side time filter exists, so each collection is read whole and filtered against the
  cursor; a cart that changes is read again). An order or cart whose email is no member of that
  audience is quarantined; stores of audiences outside the configured ``lists`` are skipped.

Incremental reads go back :data:`LOOKBACK` before the cursor and drop what was already delivered
(the cursor keeps the keys seen inside that window), so a second pull with nothing changed
brings nothing, whether Mailchimp's ``since`` filters are inclusive or not (UNCONFIRMED, §4.1).
"""

from __future__ import annotations

import copy
import logging
import threading
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import urlsplit

import httpx

from leadsync.connectors._jsonpath import get_path
from leadsync.connectors.base import (
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
from leadsync.connectors.catalog import stream_names
from leadsync.connectors.errors import (
    BadRecord,
    ConfigError,
    ConnectorError,
    FatalError,
    NotFound,
    RateLimited,
)
from leadsync.connectors.http import build_client, logging_hooks
from leadsync.connectors.mailchimp import streams as S
from leadsync.connectors.mailchimp.normalize import (
    activity_events,
    activity_key,
    cart_event,
    member_contact,
    member_events,
    order_event,
    parse_time,
    plain_merge_value,
    proxy_opens,
    subscriber_hash,
)
from leadsync.connectors.mailchimp.sdk import SdkTransport, build_sdk_client
from leadsync.connectors.mailchimp.writeback import (
    MAX_MERGE_FIELDS,
    FieldDef,
    ValueRefused,
    field_defs,
    merge_value,
    owned_tag,
)
from leadsync.connectors.pagination import OffsetPaginator
from leadsync.connectors.pools import ContextPool, PriorityPool, Submitter
from leadsync.connectors.ratelimit import ConcurrencyLimiter, shared_limiter
from leadsync.connectors.records import EventRecord, Platform
from leadsync.connectors.redaction import Redactor
from leadsync.connectors.retry import Action, ErrorRule, RetryPolicy, response_json
from leadsync.connectors.streams import StreamSpec, iter_offset_pages_concurrently, iter_records

__all__ = ["LOOKBACK", "MailchimpConnector"]

log = logging.getLogger("leadsync.connectors.mailchimp")

API_KEY_SECRET = "api_key"
# mailchimp.md §9: 10 simultaneous connections per user; never more.
MAX_CONCURRENCY = 10
# mailchimp.md §8.2: batch subscribe takes up to 500 members a request.
BATCH_SIZE = 500
LOOKBACK = timedelta(seconds=10)
STREAMS = stream_names(Platform.MAILCHIMP)


def _fmt(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def _bodiless(response: httpx.Response) -> bool:
    return response_json(response) is None


# mailchimp.md §9: "at exceptionally high volumes you may receive an HTTP 429 or 403 without a
# JSON body": a bodiless 403 is the connection limit, not a permission problem.
MAILCHIMP_RULES = (
    ErrorRule(
        Action.RATE_LIMITED,
        status=403,
        when=_bodiless,
        error=RateLimited,
        message="403 without a body: Mailchimp's connection limit (mailchimp.md §9)",
        name="bodiless 403",
    ),
)


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
        self.concurrency = max(
            1, min(MAX_CONCURRENCY, int(settings.options.get("concurrency") or MAX_CONCURRENCY))
        )
        self.bulk_tags = bool(settings.options.get("bulk_tags", False))
        self._tag_ids: dict[tuple[str, str], int] = {}  # (list id, tag name) -> tag (segment) id
        self._tag_lock = threading.Lock()
        self.sdk = build_sdk_client(
            api_key=api_key,
            host=settings.base_url,
            max_connections=self.concurrency,
            timeout_s=settings.timeout_s,
        )
        host = self.sdk.api_client.host.replace("server", self.sdk.api_client.server)
        self.redactor = Redactor([api_key])
        self.client = build_client(
            base_url=host.rstrip("/") + "/",
            auth=None,  # the SDK authenticates (Basic, username "user", §1)
            timeout=settings.timeout_s,
            max_connections=self.concurrency,
            transport=transport or SdkTransport(self.sdk, prefix=urlsplit(host).path),
            event_hooks=logging_hooks(log, self.redactor),
        )
        self._base = str(self.client.base_url)
        # mailchimp.md §9: 10 simultaneous connections per user, shared by every client in this process.
        self.limiter = shared_limiter(
            ("mailchimp", settings.base_url, settings.name, self.concurrency),
            lambda: ConcurrencyLimiter(self.concurrency, name=f"mailchimp:{settings.name}"),
        )
        self.policy = (
            RetryPolicy(source=settings.name, credential_env=self._key_variable(), redactor=self.redactor)
            .with_rules(*MAILCHIMP_RULES)
            .configured(settings.options)
        )
        self.fields = field_defs(settings.field_prefix)
        self._field_lock = threading.Lock()
        self._ready_lists: set[str] = set()
        self._member_cache: dict[str, dict[str, bool]] = {}  # list id -> subscriber hash -> a member
        self._store_lists: dict[str, str] | None = None  # store id -> audience, read once (_stores)

    def __repr__(self) -> str:
        return f"MailchimpConnector(source={self.settings.name!r})"

    def _key_variable(self) -> str:
        return self.settings.secret_names.get(API_KEY_SECRET, "the api_key secret")

    # --- requests ---------------------------------------------------------------------------

    def _send(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: dict[str, Any] | None = None,
    ) -> Any:
        # An absolute URL: httpx parses it once, where a path relative to base_url costs it three
        # parses (a push writes tags one member a request: that was a sixth of its CPU).
        request = self.client.build_request(method, self._base + path, params=params, json=json)
        return self.policy.send(self.client, request, limiter=self.limiter).body

    def _list_ids(self) -> list[str]:
        configured = list(self.settings.options.get("lists") or [])
        if configured:
            return configured
        return [
            str(item["id"])
            for item in iter_records(self.client, S.LISTS, retry_policy=self.policy, limiter=self.limiter)
        ]

    # --- Connector --------------------------------------------------------------------------

    def check(self) -> CheckResult:
        # mailchimp.md §1: GET /ping is the health check; a bad key answers 401 "API Key Invalid",
        # raised by the retry policy as AuthError naming the source and the key's variable.
        body = self._send("GET", "ping") or {}
        return CheckResult(ok=True, detail=str(body.get("health_status", "ok")))

    def streams(self) -> Sequence[str]:
        return STREAMS

    def pull(self, stream: str, cursor: Any, *, full: bool = False) -> Iterator[PullBatch]:
        state = {} if full or not isinstance(cursor, dict) else copy.deepcopy(cursor)
        if stream == "members":
            return self._pull_members(state)
        if stream == "email_activity":
            return self._pull_activity(state)
        if stream == "orders":
            return self._pull_store_records("orders", S.STORE_ORDERS, state)
        if stream == "carts":
            return self._pull_store_records("carts", S.STORE_CARTS, state)
        raise ValueError(f"unknown Mailchimp stream {stream!r}; streams: {', '.join(STREAMS)}")

    # --- members ---

    def _pull_members(self, state: dict[str, Any]) -> Iterator[PullBatch]:
        lists_state: dict[str, Any] = state.setdefault("lists", {})
        owned_tags = {logical: definition.tag for logical, definition in self.fields.items()}
        list_ids = self._list_ids()
        tally = StreamTally("members")
        for number, list_id in enumerate(list_ids, start=1):
            part = lists_state.get(list_id) or {}
            since = parse_time(part.get("since"))
            seen: dict[str, str] = dict(part.get("seen") or {})
            params = {"since_last_changed": _fmt(since - LOOKBACK)} if since else {}
            newest = since
            for page in iter_offset_pages_concurrently(
                self.client,
                S.MEMBERS,
                retry_policy=self.policy,
                limiter=self.limiter,
                concurrency=self.concurrency,
                params=params,
                path_params={"list_id": list_id},
            ):
                batch = PullBatch("members")
                # §4: a member's id is its subscriber hash; a member read here needs no GET when an
                # order or cart of this run names it (``_members_exist``)
                known = self._member_cache.setdefault(list_id, {})
                for member in page.records:
                    key, changed = str(member.get("id")), str(member.get("last_changed"))
                    known[key] = True
                    if seen.get(key) == changed:
                        continue  # delivered by an earlier page or run (lookback overlap)
                    if not self._add_member(batch, member, owned_tags):
                        continue
                    moment = parse_time(changed)
                    seen[key] = changed
                    if moment is not None and (newest is None or moment > newest):
                        newest = moment
                if newest is not None:
                    floor = newest - LOOKBACK
                    seen = {k: v for k, v in seen.items() if (parse_time(v) or newest) >= floor}
                    lists_state[list_id] = {"since": _fmt(newest), "seen": seen}
                batch.cursor = copy.deepcopy(state)
                # §4.1: total_items per audience; the whole stream's total is known in the last one
                left = page.remaining if number == len(list_ids) else None
                yield tally.count(batch, len(page.records), left)

    def fetch_contact(self, remote_id: str) -> PullBatch | None:
        """``GET /lists/{list_id}/members/{subscriber_hash}`` (mailchimp.md §4): the member and the
        events its state implies (an unsubscribe), as ``_pull_members`` reads them."""
        list_id, _, member_id = remote_id.partition(":")
        if not list_id or not member_id:
            return None
        try:
            member = self._send("GET", f"lists/{list_id}/members/{member_id}")
        except NotFound:
            return None
        owned_tags = {logical: definition.tag for logical, definition in self.fields.items()}
        batch = PullBatch("members")
        self._add_member(batch, member, owned_tags)
        return batch

    def _add_member(self, batch: PullBatch, member: dict[str, Any], owned_tags: dict[str, str]) -> bool:
        """``member`` normalised into ``batch``: its contact and the events its state implies; False
        (the record kept in ``batch.bad``) when it cannot be normalised."""
        try:
            batch.contacts.append(
                member_contact(
                    member,
                    source=self.settings.name,
                    field_prefix=self.settings.field_prefix,
                    owned_tags=owned_tags,
                )
            )
            batch.events.extend(member_events(member, source=self.settings.name))
        except BadRecord as bad:
            batch.bad.append(bad)
            return False
        return True

    # --- email activity ---

    def _campaigns(self) -> list[dict[str, Any]]:
        lists = set(self.settings.options.get("lists") or [])
        found = list(iter_records(self.client, S.CAMPAIGNS, retry_policy=self.policy, limiter=self.limiter))
        return [c for c in found if not lists or (c.get("recipients") or {}).get("list_id") in lists]

    def _page(
        self, spec: StreamSpec, params: dict[str, Any], path_params: dict[str, Any], offset: int
    ) -> tuple[list[Any], int | None]:
        """One page of an offset collection: its records and ``total_items`` (§4.1)."""
        paginator = spec.new_paginator()
        assert isinstance(paginator, OffsetPaginator)
        request = spec.first_request(params=params, path_params=path_params)
        paginator.apply_offset(request, offset)
        body = self.policy.send(self.client, request.build(self.client), limiter=self.limiter).body
        total = get_path(body, "total_items")
        return spec.extract(body), (int(total) if isinstance(total, int) else None)

    def _collection(
        self,
        pages: Submitter,
        spec: StreamSpec,
        params: dict[str, Any],
        path_params: dict[str, Any],
        first: Future[tuple[list[Any], int | None]],
    ) -> list[Any]:
        """Every record of a collection whose first page is ``first``: once its ``total_items`` is
        known, the other pages are all requested at once (on ``pages``), and read in order."""
        records, total = first.result()
        records = list(records)
        size = spec.page_size or len(records) or 1
        offset = size
        if total is None:  # no total: page on until a short page
            last = records
            while len(last) >= size:
                last, _ = self._page(spec, params, path_params, offset)
                records.extend(last)
                offset += size
            return records
        while offset < total:
            batch = [
                pages.submit(self._page, spec, params, path_params, o) for o in range(offset, total, size)
            ]
            offset = max(offset, total)
            for future in batch:
                found, now_total = future.result()
                records.extend(found)
                if now_total is not None:  # records added meanwhile are read too
                    total = max(total, now_total)
        return records

    def _fetch_campaign(
        self,
        campaign: dict[str, Any],
        since: datetime,
        pages: Submitter,
        seen: frozenset[str] | None,
    ) -> tuple[list[Any], set[tuple[str, str]]]:
        """Every ``emails[]`` item after ``since``, and the proxy opens among them (one worker,
        whose page requests run on ``pages``). A campaign read for the first time (``seen`` None)
        has opens as a rule, so its open-details are asked for beside its email activity, not
        after it; a campaign read again asks for them only for an open not delivered yet (the
        look-back window re-reads the last ones)."""
        first_read = seen is None
        path = {"campaign_id": str(campaign["id"])}
        params = {"since": _fmt(since)}
        activity = pages.submit(self._page, S.EMAIL_ACTIVITY, params, path, 0)
        details = pages.submit(self._page, S.OPEN_DETAILS, params, path, 0) if first_read else None
        items = self._collection(pages, S.EMAIL_ACTIVITY, params, path, activity)
        proxies: set[tuple[str, str]] = set()
        if any(
            a.get("action") == "open"
            and activity_key(item.get("campaign_id"), item.get("email_id"), "open", a.get("timestamp"))
            not in (seen or ())
            for item in items
            for a in item.get("activity") or []
        ):
            if details is None:
                details = pages.submit(self._page, S.OPEN_DETAILS, params, path, 0)
            proxies = proxy_opens(self._collection(pages, S.OPEN_DETAILS, params, path, details))
        elif details is not None:
            details.result()  # asked for, not needed: its errors still count
        return items, proxies

    def _pull_activity(self, state: dict[str, Any]) -> Iterator[PullBatch]:
        parts: dict[str, Any] = state.setdefault("campaigns", {})
        campaigns = self._campaigns()

        def since_of(campaign: dict[str, Any]) -> datetime:
            last = parse_time((parts.get(str(campaign["id"])) or {}).get("since"))
            if last is not None:
                return last - LOOKBACK
            sent = parse_time(campaign.get("send_time"))
            # Nothing can happen before the send: starting there skips recipients without activity.
            return (sent - timedelta(seconds=1)) if sent else datetime(2000, 1, 1, tzinfo=UTC)

        tally = StreamTally("campaigns")
        # Every page request runs on one pool of `concurrency` workers (the limiter holds them to §9's
        # 10 connections); campaigns are assembled by a second pool, whose workers only wait on
        # pages, and handed over in order. So no campaign's pages wait on one another beyond their
        # first, and small campaigns still keep `concurrency` requests in flight. A page is read by
        # its campaign's place in that order (PriorityPool): the campaign handed over next is not
        # held up by the first pages of the campaigns after it.
        pages = PriorityPool(max_workers=self.concurrency, thread_name_prefix="mc-pages")
        window = 2 * self.concurrency
        assembly = ContextPool(max_workers=window, thread_name_prefix="mc-activity")
        try:
            pending: deque[tuple[dict[str, Any], Future[tuple[list[Any], set[tuple[str, str]]]]]] = deque()
            queue = deque(enumerate(campaigns))
            while queue or pending:
                while queue and len(pending) < window:
                    place, campaign = queue.popleft()
                    part = parts.get(str(campaign["id"]))
                    seen = None if part is None else frozenset((part.get("seen") or {}).keys())
                    pending.append(
                        (
                            campaign,
                            assembly.submit(
                                self._fetch_campaign, campaign, since_of(campaign), pages.at(place), seen
                            ),
                        )
                    )
                campaign, future = pending.popleft()
                items, proxies = future.result()
                batch = self._activity_batch(state, parts, campaign, items, frozenset(proxies))
                done = len(campaigns) - len(queue) - len(pending)
                yield tally.count(batch, 1, len(campaigns) - done)
        finally:
            assembly.shutdown(wait=False, cancel_futures=True)
            pages.shutdown(wait=True, cancel_futures=True)
            assembly.shutdown(wait=True)

    def _activity_batch(
        self,
        state: dict[str, Any],
        parts: dict[str, Any],
        campaign: dict[str, Any],
        items: list[Any],
        proxies: frozenset[tuple[str, str]],
    ) -> PullBatch:
        cid = str(campaign["id"])
        part = parts.get(cid) or {}
        seen: dict[str, str] = dict(part.get("seen") or {})
        newest = parse_time(part.get("since"))
        title = (campaign.get("settings") or {}).get("title")
        batch = PullBatch("email_activity")
        delivered: dict[str, datetime] = {}
        for item in items:
            try:
                events = activity_events(
                    item, source=self.settings.name, campaign_title=title, proxy_opens=proxies
                )
            except BadRecord as exc:
                batch.bad.append(exc)
                continue
            for event in events:
                if event.source_id in seen or event.source_id in delivered:
                    continue
                delivered[event.source_id] = event.occurred_at
                batch.events.append(event)
                if newest is None or event.occurred_at > newest:
                    newest = event.occurred_at
        if newest is not None:
            # the cursor keeps the keys inside the next run's overlap: formatted only those
            floor = newest - LOOKBACK
            kept = {k: v for k, v in seen.items() if (parse_time(v) or floor) >= floor}
            kept.update((k, _fmt(at)) for k, at in delivered.items() if at >= floor)
            parts[cid] = {"since": _fmt(newest), "seen": kept}
        # A campaign's part is replaced, never changed in place, so copying the two outer levels
        # keeps this batch's cursor as it is now; a deep copy per campaign cost O(campaigns²).
        batch.cursor = {**state, "campaigns": dict(parts)}
        return batch

    # --- e-commerce: orders and carts ---

    def _stores(self) -> dict[str, str]:
        """Store id -> its audience, for the stores of the audiences this source pulls: read once
        per connector (one pull of the source), so the carts stream does not ask again what the
        orders stream just read."""
        if self._store_lists is None:
            lists = set(self.settings.options.get("lists") or [])
            self._store_lists = {
                str(store["id"]): str(store.get("list_id") or "")
                for store in iter_records(
                    self.client, S.STORES, retry_policy=self.policy, limiter=self.limiter
                )
                if not lists or store.get("list_id") in lists
            }
        return dict(self._store_lists)

    def _pull_store_records(
        self, stream: str, spec: StreamSpec, state: dict[str, Any]
    ) -> Iterator[PullBatch]:
        """Every store's orders (``purchase``) or carts (``cart_abandoned``), one batch a page; the
        cursor moves with the last page only (the collections are not sorted by time)."""
        since = parse_time(state.get("since"))
        seen: dict[str, str] = dict(state.get("seen") or {})
        newest = since
        stores = self._stores()
        pages = [
            (store_id, list_id, page)
            for store_id, list_id in stores.items()
            for page in iter_offset_pages_concurrently(
                self.client,
                spec,
                retry_policy=self.policy,
                limiter=self.limiter,
                concurrency=self.concurrency,
                path_params={"store_id": store_id},
            )
        ]
        # Orders and carts cannot be filtered by time on the server; the cursor moves once all are read.
        tally = StreamTally(stream)
        if not pages:
            yield PullBatch(stream, cursor=copy.deepcopy(state) if state else None)
            return
        for number, (store_id, list_id, page) in enumerate(pages, start=1):
            batch = PullBatch(stream)
            fresh: list[EventRecord] = []
            for record in page.records:
                try:
                    if stream == "carts":
                        event = cart_event(
                            record, source=self.settings.name, store_id=store_id, list_id=list_id
                        )
                    else:
                        event = order_event(
                            {**record, "store_id": store_id}, source=self.settings.name, list_id=list_id
                        )
                except BadRecord as exc:
                    batch.bad.append(exc)
                    continue
                stamp = _fmt(event.occurred_at)
                if since is not None and event.occurred_at < since - LOOKBACK:
                    continue
                if seen.get(event.source_id) == stamp:
                    continue  # delivered already (a cart read again only once it changed)
                fresh.append(event)
            members = self._members_exist(list_id, {e.remote_contact_id.split(":", 1)[1] for e in fresh})
            for event in fresh:
                if not members.get(event.remote_contact_id.split(":", 1)[1], False):
                    what = "cart" if stream == "carts" else "order"
                    batch.bad.append(
                        BadRecord(
                            f"{what} {event.properties.get(what + '_id')} of store {store_id}: its customer's "
                            f"email is no member of audience {list_id}",
                            record=dict(event.properties),
                            remote_id=event.source_id,
                        )
                    )
                    continue
                seen[event.source_id] = _fmt(event.occurred_at)
                batch.events.append(event)
                if newest is None or event.occurred_at > newest:
                    newest = event.occurred_at
            if number == len(pages):
                if newest is not None:
                    floor = newest - LOOKBACK
                    state = {
                        "since": _fmt(newest),
                        "seen": {k: v for k, v in seen.items() if parse_time(v) >= floor},
                    }
                batch.cursor = copy.deepcopy(state)
            yield tally.count(batch, len(page.records), page.remaining)  # §4.1: total_items

    # --- profile fields --------------------------------------------------------------------

    def profile_fields(self, sample: int = 500) -> list[ProfileField]:
        """Every audience's merge fields (mailchimp.md §5) and their fill rate over the ``sample``
        most recently changed members of that audience."""
        found: list[ProfileField] = []
        owned = {definition.name for definition in self.fields.values()}
        for list_id in self._list_ids():
            definitions = self._existing_fields(list_id)
            filled = {str(f.get("tag")): 0 for f in definitions}
            body = self._send(
                "GET",
                f"lists/{list_id}/members",
                params={
                    "count": min(sample, 1000),  # §4.1: at most 1000 a page
                    "sort_field": "last_changed",
                    "sort_dir": "DESC",
                    "fields": "members.merge_fields",
                },
            )
            members = (body or {}).get("members") or []
            for member in members:
                for tag, value in (member.get("merge_fields") or {}).items():
                    if tag in filled and _filled(value):
                        filled[tag] += 1
            found.extend(
                ProfileField(
                    name=str(f.get("tag")),
                    label=str(f.get("name") or f.get("tag")),
                    type=str(f.get("type") or "?"),
                    filled=filled[str(f.get("tag"))],
                    sampled=len(members),
                    owned=f.get("name") in owned,
                    group=list_id,
                )
                for f in definitions
            )
        return found

    def _members_exist(self, list_id: str, hashes: set[str]) -> dict[str, bool]:
        """Whether each subscriber hash is a member of ``list_id`` (§4: GET the member; 404 = none),
        asked side by side within the connection limit and remembered for the run."""
        known = self._member_cache.setdefault(list_id, {})
        todo = sorted(h for h in hashes if h not in known)

        def exists(subscriber_hash: str) -> bool:
            request = S.MEMBER.first_request(
                path_params={"list_id": list_id, "subscriber_hash": subscriber_hash}
            )
            try:
                self.policy.send(self.client, request.build(self.client), limiter=self.limiter)
            except NotFound:
                return False
            return True

        if todo:
            with ContextPool(min(self.concurrency, len(todo)), thread_name_prefix="mailchimp-member") as pool:
                known.update(zip(todo, pool.map(exists, todo), strict=True))
        return {h: known[h] for h in hashes}

    # --- write-back -------------------------------------------------------------------------

    def ensure_fields(self, list_ids: Sequence[str] | None = None) -> None:
        """Create leadsync's merge fields on each audience on first use (mailchimp.md §5)."""
        for list_id in list_ids if list_ids is not None else self._list_ids():
            with self._field_lock:
                if list_id in self._ready_lists:
                    continue
                self._ensure_list_fields(list_id)
                self._ready_lists.add(list_id)

    def _existing_fields(self, list_id: str) -> list[dict[str, Any]]:
        return list(
            iter_records(
                self.client,
                S.MERGE_FIELDS,
                retry_policy=self.policy,
                limiter=self.limiter,
                path_params={"list_id": list_id},
            )
        )

    def _ensure_list_fields(self, list_id: str) -> None:
        existing = self._existing_fields(list_id)
        by_name = {f.get("name"): f for f in existing}
        by_tag = {f.get("tag"): f for f in existing}
        missing: list[FieldDef] = []
        for definition in self.fields.values():
            found = by_name.get(definition.name)
            if found is not None:
                if found.get("tag") != definition.tag:  # created by hand with another tag: use it
                    self.fields = {
                        **self.fields,
                        definition.logical: FieldDef(
                            definition.logical, definition.name, str(found.get("tag")), definition.type
                        ),
                    }
                continue
            clash = by_tag.get(definition.tag)
            if clash is not None:
                raise FatalError(
                    f"{self.settings.name}: audience {list_id} already has a merge field tagged {definition.tag} "
                    f"({clash.get('name')!r}) that leadsync does not own; rename it or change the field prefix",
                    source=self.settings.name,
                )
            missing.append(definition)
        if len(existing) + len(missing) > MAX_MERGE_FIELDS:
            raise FatalError(
                f"{self.settings.name}: audience {list_id} has {len(existing)} of its {MAX_MERGE_FIELDS} merge "
                f"fields (mailchimp.md §5); leadsync needs {len(missing)} more "
                f"({', '.join(d.name for d in missing)}). Delete unused audience fields and run again",
                source=self.settings.name,
            )
        for definition in missing:
            try:
                self._send("POST", f"lists/{list_id}/merge-fields", json=definition.create_body())
            except FatalError:
                # A retried POST whose first attempt went through answers "already exists".
                if definition.name not in {f.get("name") for f in self._existing_fields(list_id)}:
                    raise

    def push(self, updates: Sequence[ScoreUpdate]) -> PushReport:
        report = PushReport()
        by_list: dict[str, list[tuple[ScoreUpdate, str]]] = {}
        for update in updates:
            list_id, sep, member_id = update.remote_id.partition(":")
            if not sep or not list_id or not member_id:
                report.failed.append(
                    PushFailure(update.remote_id, "not a Mailchimp member id (<list_id>:<hash>)")
                )
                continue
            by_list.setdefault(list_id, []).append((update, member_id))
        self.ensure_fields(list(by_list))

        jobs: list[tuple[str, Any]] = []
        bulk: list[tuple[str, str, list[ScoreUpdate], list[ScoreUpdate]]] = []  # list, tag, add, remove
        for list_id, items in by_list.items():
            rows: list[tuple[ScoreUpdate, dict[str, Any]]] = []
            for update, _ in items:
                try:
                    values = {
                        self.fields[k].tag: merge_value(self.fields[k], v)
                        for k, v in update.fields.items()
                        if k in self.fields
                    }
                except ValueRefused as exc:
                    report.failed.append(PushFailure(update.remote_id, f"quarantined: {exc}"))
                    continue
                if values:
                    rows.append((update, {"email_address": update.email, "merge_fields": values}))
            for start in range(0, len(rows), BATCH_SIZE):
                jobs.append(("batch", (list_id, rows[start : start + BATCH_SIZE])))
            by_tag: dict[str, tuple[list[ScoreUpdate], list[ScoreUpdate]]] = {}
            for update, member_id in items:
                tags = self._tag_changes(update)
                if tags and self.bulk_tags and update.email:
                    for tag in tags:
                        by_tag.setdefault(tag["name"], ([], []))[tag["status"] != "active"].append(update)
                elif tags:
                    jobs.append(("tags", (list_id, member_id, update, tags)))
            bulk.extend((list_id, name, adding, removing) for name, (adding, removing) in by_tag.items())
        if bulk:
            with ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="mc-tags") as pool:
                # each tag's id is looked up (or the tag created) side by side, before its writes
                for segment_jobs in pool.map(lambda args: self._segment_jobs(*args, report), bulk):
                    jobs.extend(segment_jobs)

        failed_ids = {f.remote_id for f in report.failed}
        results: dict[str, str | None] = {}
        lock = threading.Lock()

        def run(job: tuple[str, Any]) -> None:
            kind, args = job
            write = {"batch": self._write_batch, "tags": self._write_tags, "segment": self._write_segment}[
                kind
            ]
            outcome = write(*args)
            with lock:
                report.requests += 1
                for remote_id, error in outcome.items():
                    if error is not None or remote_id not in results:
                        results[remote_id] = error if error is not None else results.get(remote_id)

        with ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="mc-push") as pool:
            for future in [pool.submit(run, job) for job in jobs]:
                future.result()
        for update in updates:
            if update.remote_id in failed_ids:
                continue
            error = results.get(update.remote_id)
            if error is None and update.remote_id in results:
                report.written.append(update.remote_id)
            elif error is not None:
                report.failed.append(
                    PushFailure(update.remote_id, error, retriable=error.startswith("retriable"))
                )
            elif update.remote_id not in results:
                report.written.append(update.remote_id)  # nothing leadsync may write was left
        return report

    def _tag_changes(self, update: ScoreUpdate) -> list[dict[str, str]]:
        prefix = self.settings.field_prefix
        tags = [{"name": t, "status": "active"} for t in update.tags_add]
        for name in update.tags_remove:
            if owned_tag(name, prefix):
                tags.append({"name": name, "status": "inactive"})
            else:  # never remove a tag leadsync did not create
                log.warning(
                    "%s: not removing tag %r: it does not start with %r", self.settings.name, name, prefix
                )
        return tags

    def _write_batch(
        self, list_id: str, rows: list[tuple[ScoreUpdate, dict[str, Any]]]
    ) -> dict[str, str | None]:
        # mailchimp.md §8.2: batch subscribe, update_existing. No "status": an existing member keeps
        # theirs (whether omitting it does so is UNCONFIRMED, §8.2; sending one could resubscribe
        # people who left), and an address that is not a member comes back as an error, not a signup.
        body = {"members": [member for _, member in rows], "update_existing": True}
        try:
            answer = self._send("POST", f"lists/{list_id}", json=body) or {}
        except ConnectorError as exc:
            reason = f"{'retriable' if not isinstance(exc, FatalError) else 'failed'}: {exc}"
            return {update.remote_id: reason for update, _ in rows}
        by_email = {update.email.lower(): update.remote_id for update, _ in rows}
        out: dict[str, str | None] = {}
        for error in answer.get("errors") or []:
            remote_id = by_email.get(str(error.get("email_address", "")).lower())
            if remote_id is not None:
                detail = error.get("field_message") or error.get("error") or error.get("error_code")
                field = f" ({error.get('field')})" if error.get("field") else ""
                out[remote_id] = f"Mailchimp refused{field}: {detail}"
        for member in (answer.get("updated_members") or []) + (answer.get("new_members") or []):
            remote_id = by_email.get(str(member.get("email_address", "")).lower())
            if remote_id is not None and remote_id not in out:
                out[remote_id] = None
        for update, _ in rows:
            out.setdefault(update.remote_id, "Mailchimp did not report this member as updated")
        return out

    def _write_tags(
        self, list_id: str, member_id: str, update: ScoreUpdate, tags: list[dict[str, str]]
    ) -> dict[str, str | None]:
        # mailchimp.md §6: only the named tags change; is_syncing keeps tag automations from firing;
        # the answer is 204 with no body. The hash of the current address wins over a stale id.
        key = subscriber_hash(update.email) if update.email else member_id
        try:
            self._send("POST", f"lists/{list_id}/members/{key}/tags", json={"tags": tags, "is_syncing": True})
        except ConnectorError as exc:
            return {
                update.remote_id: f"{'retriable' if not isinstance(exc, FatalError) else 'failed'}: {exc}"
            }
        return {update.remote_id: None}

    def _segment_jobs(
        self,
        list_id: str,
        name: str,
        adding: list[ScoreUpdate],
        removing: list[ScoreUpdate],
        report: PushReport,
    ) -> list[tuple[str, Any]]:
        """Bulk tag writes (option ``bulk_tags``): one request per 500 members to add and 500 to
        remove. A tag that does not exist yet is created, unless it is only being removed."""
        try:
            tag_id = self._tag_id(list_id, name, create=bool(adding))
        except ConnectorError as exc:
            reason = f"{'retriable' if not isinstance(exc, FatalError) else 'failed'}: tag {name!r}: {exc}"
            with self._tag_lock:
                known = {f.remote_id for f in report.failed}
                report.failed.extend(
                    PushFailure(u.remote_id, reason, retriable=not isinstance(exc, FatalError))
                    for u in adding + removing
                    if u.remote_id not in known
                )
            return []
        if tag_id is None:  # nobody has it: nothing to remove
            return []
        return [
            (
                "segment",
                (
                    list_id,
                    tag_id,
                    name,
                    adding[start : start + BATCH_SIZE],
                    removing[start : start + BATCH_SIZE],
                ),
            )
            for start in range(0, max(len(adding), len(removing)), BATCH_SIZE)
        ]

    def _tag_id(self, list_id: str, name: str, *, create: bool) -> int | None:
        """The id of tag ``name`` on the list (mailchimp.md §6: tags are static segments, looked up
        with tag-search, which matches names by prefix); created as an empty static segment."""
        key = (list_id, name)
        if key not in self._tag_ids:
            found = self._send("GET", f"lists/{list_id}/tag-search", params={"name": name}) or {}
            for tag in found.get("tags") or []:
                if tag.get("name") == name:
                    self._tag_ids[key] = int(tag["id"])
            if key not in self._tag_ids and create:
                created = self._send(
                    "POST", f"lists/{list_id}/segments", json={"name": name, "static_segment": []}
                )
                self._tag_ids[key] = int((created or {})["id"])
        return self._tag_ids.get(key)

    def _write_segment(
        self, list_id: str, tag_id: int, name: str, adding: list[ScoreUpdate], removing: list[ScoreUpdate]
    ) -> dict[str, str | None]:
        # mailchimp.md §6: at most 500 each way; emails not on the list are ignored; no is_syncing
        body = {"members_to_add": [u.email for u in adding], "members_to_remove": [u.email for u in removing]}
        try:
            answer = self._send("POST", f"lists/{list_id}/segments/{tag_id}", json=body) or {}
        except NotFound as exc:  # the tag was deleted since it was looked up: look again next push
            self._tag_ids.pop((list_id, name), None)
            return {u.remote_id: f"retriable: tag {name!r} is gone: {exc}" for u in adding + removing}
        except ConnectorError as exc:
            reason = f"{'retriable' if not isinstance(exc, FatalError) else 'failed'}: tag {name!r}: {exc}"
            return {u.remote_id: reason for u in adding + removing}
        by_email = {u.email.lower(): u.remote_id for u in adding + removing}
        out: dict[str, str | None] = {u.remote_id: None for u in adding + removing}
        for error in answer.get("errors") or []:
            for email in error.get("email_addresses") or []:
                remote_id = by_email.get(str(email).lower())
                if remote_id is not None:
                    out[remote_id] = (
                        f"Mailchimp refused tag {name!r}: {error.get('error') or 'no reason given'}"
                    )
        return out

    def read_fields(self, remote_ids: Sequence[str]) -> dict[str, dict[str, str | None]]:
        """Merge fields as Mailchimp holds them, one member GET each (``<list id>:<hash>`` ids)."""
        out: dict[str, dict[str, str | None]] = {}
        for remote_id in remote_ids:
            list_id, _, member = remote_id.partition(":")
            body = self._send("GET", f"lists/{list_id}/members/{member}", params={"fields": "merge_fields"})
            merge = (body or {}).get("merge_fields") or {}
            out[remote_id] = {
                logical: None
                if merge.get(definition.tag) in (None, "")
                else _plain_number(merge[definition.tag])
                for logical, definition in self.fields.items()
            }
        return out

    def read_owned(self, remote_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Merge fields and leadsync's member tags as Mailchimp holds them, one member GET each."""
        prefix = self.settings.field_prefix
        out: dict[str, dict[str, Any]] = {}
        for remote_id in remote_ids:
            list_id, _, member = remote_id.partition(":")
            body = self._send(
                "GET", f"lists/{list_id}/members/{member}", params={"fields": "merge_fields,tags"}
            )
            merge = (body or {}).get("merge_fields") or {}
            held: dict[str, Any] = {
                logical: None
                if merge.get(definition.tag) in (None, "")
                else _plain_number(merge[definition.tag])
                for logical, definition in self.fields.items()
            }
            names = [str(t.get("name")) for t in (body or {}).get("tags") or [] if isinstance(t, dict)]
            held["tags"] = sorted(name for name in names if name.startswith(prefix))
            out[remote_id] = held
        return out

    def close(self) -> None:
        self.client.close()
        self.sdk.api_client.close()


_plain_number = plain_merge_value


def _filled(value: Any) -> bool:
    """§4.2: an unset merge field is "" (an address: a dict of "" parts)."""
    if isinstance(value, dict):
        return any(part not in (None, "") for part in value.values())
    return value not in (None, "")
