"""The one page loop: specs as data, limiter and retry around each request, resumable pages."""

from __future__ import annotations

import threading
import time
from functools import partial
from typing import Any

import httpx
import pytest

from leadsync.connectors.errors import FatalError, RetriableError
from leadsync.connectors.pagination import CursorAfterPaginator, OffsetPaginator, SearchOffsetPaginator
from leadsync.connectors.ratelimit import ConcurrencyLimiter, RollingWindowLimiter
from leadsync.connectors.retry import RetryPolicy
from leadsync.connectors.streams import (
    Page,
    StreamSpec,
    iter_offset_pages_concurrently,
    iter_pages,
    iter_records,
)

from .conftest import FakeClock, make_client

CONTACTS = StreamSpec(
    name="contacts",
    path="/crm/v3/objects/contacts",
    records_path="results",
    paginator_factory=CursorAfterPaginator,
    page_size=100,
    params={"properties": "email,lifecyclestage"},
    cursor_field="updatedAt",
)
MEMBERS = StreamSpec(
    name="members",
    path="/lists/{list_id}/members",
    records_path="members",
    paginator_factory=partial(OffsetPaginator, limit_param="count", total_path="total_items"),
    page_size=1000,
    cursor_field="last_changed",
)


def retry_policy(clock: FakeClock, **kwargs: Any) -> RetryPolicy:
    return RetryPolicy(source="test", clock=clock, sleep=clock.sleep, rand=lambda: 0.5, **kwargs)


class HubSpotContacts:
    """Just enough of a HubSpot list endpoint: ids 1..n, ``after`` = next id (hubspot.md §2.1)."""

    def __init__(self, n: int, fail_once_at: str | None = None) -> None:
        self.n = n
        self.fail_once_at = fail_once_at
        self.params: list[dict[str, str]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/crm/v3/objects/contacts", f"Unexpected request: {request.url}"
        params = dict(request.url.params)
        self.params.append(params)
        after = int(params.get("after", "1"))
        if self.fail_once_at is not None and params.get("after") == self.fail_once_at:
            self.fail_once_at = None
            return httpx.Response(503)
        limit = int(params["limit"])
        ids = list(range(after, min(after + limit, self.n + 1)))
        body: dict[str, Any] = {"results": [{"id": str(i), "properties": {}} for i in ids]}
        if ids and ids[-1] < self.n:
            body["paging"] = {"next": {"after": str(ids[-1] + 1)}}
        return httpx.Response(200, json=body)


def test_a_spec_makes_a_fresh_paginator_with_its_page_size() -> None:
    first, second = CONTACTS.new_paginator(), CONTACTS.new_paginator()
    assert first is not second and first.page_size == 100
    assert MEMBERS.new_paginator().page_size == 1000


def test_given_250_contacts_then_three_pages_each_with_the_state_to_resume_after_it(clock: FakeClock) -> None:
    api = HubSpotContacts(250)
    pages = list(iter_pages(make_client(api), CONTACTS, retry_policy=retry_policy(clock)))
    assert [len(p.records) for p in pages] == [100, 100, 50]
    assert [p.number for p in pages] == [1, 2, 3]
    assert [p.state for p in pages] == [{"after": "101"}, {"after": "201"}, None]
    assert pages[-1].is_last and pages[0].stream == "contacts"
    assert api.params[0] == {"properties": "email,lifecyclestage", "limit": "100"}
    assert api.params[2]["after"] == "201"


def test_resuming_from_a_committed_state_reads_only_the_pages_after_it(clock: FakeClock) -> None:
    api = HubSpotContacts(250)
    pages = list(
        iter_pages(make_client(api), CONTACTS, retry_policy=retry_policy(clock), resume_from={"after": "201"})
    )
    assert [r["id"] for r in pages[0].records][:1] == ["201"]
    assert len(pages) == 1 and len(api.params) == 1


def test_a_failing_page_is_retried_inside_the_loop_and_the_limiter_gates_every_attempt(
    clock: FakeClock,
) -> None:
    api = HubSpotContacts(250, fail_once_at="101")
    limiter = RollingWindowLimiter(100, 10.0, clock=clock, sleep=clock.sleep)
    records = list(
        iter_records(make_client(api), CONTACTS, retry_policy=retry_policy(clock), limiter=limiter)
    )
    assert [r["id"] for r in records] == [str(i) for i in range(1, 251)]
    assert limiter.stats.acquired == 4  # three pages and one retry
    assert clock.sleeps == [0.75]


def test_the_caller_adds_params_per_run_without_changing_the_spec(clock: FakeClock) -> None:
    api = HubSpotContacts(5)
    list(
        iter_pages(make_client(api), CONTACTS, retry_policy=retry_policy(clock), params={"archived": "false"})
    )
    assert api.params[0]["archived"] == "false"
    assert CONTACTS.params == {"properties": "email,lifecyclestage"}


def test_max_pages_stops_early(clock: FakeClock) -> None:
    api = HubSpotContacts(1000)
    pages = list(iter_pages(make_client(api), CONTACTS, retry_policy=retry_policy(clock), max_pages=2))
    assert len(pages) == 2 and len(api.params) == 2


def test_nothing_is_requested_for_a_page_the_caller_does_not_ask_for(clock: FakeClock) -> None:
    api = HubSpotContacts(1000)
    pages = iter_pages(make_client(api), CONTACTS, retry_policy=retry_policy(clock))
    next(pages)
    pages.close()
    assert len(api.params) == 1


def test_a_response_without_the_records_path_is_an_error_not_an_empty_stream(clock: FakeClock) -> None:
    client = make_client(lambda request: httpx.Response(200, json={"status": "error"}))
    with pytest.raises(FatalError, match="stream 'contacts': the response has no 'results'"):
        list(iter_pages(client, CONTACTS, retry_policy=retry_policy(clock)))


def test_path_params_are_filled_and_quoted() -> None:
    assert MEMBERS.format_path({"list_id": "a/b c"}) == "/lists/a%2Fb%20c/members"


def test_a_post_search_stream_pages_through_its_json_body(clock: FakeClock) -> None:
    bodies: list[dict[str, Any]] = []

    def search(request: httpx.Request) -> httpx.Response:
        import json

        body = json.loads(request.content)
        bodies.append(body)
        after = int(body.get("after", "0"))
        ids = range(after, min(after + body["limit"], 450))
        page: dict[str, Any] = {"total": 450, "results": [{"id": str(i)} for i in ids]}
        if after + body["limit"] < 450:
            page["paging"] = {"next": {"after": str(after + body["limit"])}}
        return httpx.Response(200, json=page)

    spec = StreamSpec(
        name="contacts_search",
        path="/crm/v3/objects/contacts/search",
        method="POST",
        records_path="results",
        paginator_factory=SearchOffsetPaginator,
        page_size=200,
        body={"sorts": [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}]},
    )
    filters = {
        "filterGroups": [{"filters": [{"propertyName": "lastmodifieddate", "operator": "GTE", "value": "0"}]}]
    }
    records = list(iter_records(make_client(search), spec, retry_policy=retry_policy(clock), body=filters))
    assert len(records) == 450
    assert [b.get("after") for b in bodies] == [None, "200", "400"]
    assert all(b["filterGroups"] == filters["filterGroups"] and b["limit"] == 200 for b in bodies)
    assert spec.body == {"sorts": [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}]}


# -- concurrent offset pages (Mailchimp: 10 simultaneous connections, mailchimp.md §9) ------------


class MailchimpMembers:
    """A thread-safe members endpoint that counts how many requests run at once."""

    def __init__(self, total: int, *, delay_s: float = 0.005, grow_to: int | None = None) -> None:
        self.total = total
        self.grow_to = grow_to
        self.delay_s = delay_s
        self.lock = threading.Lock()
        self.running = 0
        self.peak = 0
        self.offsets: list[int] = []
        self.fail_offsets: set[int] = set()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/lists/l1/members", f"Unexpected request: {request.url}"
        offset, count = int(request.url.params["offset"]), int(request.url.params["count"])
        with self.lock:
            self.running += 1
            self.peak = max(self.peak, self.running)
            self.offsets.append(offset)
            total = self.total
            if self.grow_to is not None and len(self.offsets) == 2:
                self.total = total = self.grow_to
        try:
            time.sleep(self.delay_s)
            if offset in self.fail_offsets:
                return httpx.Response(500)
            members = [{"id": f"m{i}"} for i in range(offset, min(offset + count, total))]
            return httpx.Response(200, json={"members": members, "list_id": "l1", "total_items": total})
        finally:
            with self.lock:
                self.running -= 1


def concurrent(api: MailchimpMembers, clock: FakeClock, **kwargs: Any) -> list[Page]:
    limiter = ConcurrencyLimiter(4)
    spec = StreamSpec(
        name="members",
        path="/lists/{list_id}/members",
        records_path="members",
        paginator_factory=partial(OffsetPaginator, limit_param="count", total_path="total_items"),
        page_size=kwargs.pop("page_size", 100),
    )
    client = make_client(api, max_connections=4)
    return list(
        iter_offset_pages_concurrently(
            client, spec, retry_policy=retry_policy(clock, max_attempts=2), limiter=limiter,
            concurrency=4, path_params={"list_id": "l1"}, **kwargs,
        )
    )  # fmt: skip


def test_offset_pages_are_fetched_in_parallel_and_yielded_in_order(clock: FakeClock) -> None:
    api = MailchimpMembers(1050)
    pages = concurrent(api, clock)
    ids = [r["id"] for p in pages for r in p.records]
    assert ids == [f"m{i}" for i in range(1050)]
    assert [p.number for p in pages] == list(range(1, 12))
    assert [p.state for p in pages][:2] == [{"offset": 100}, {"offset": 200}]
    assert pages[-1].state is None
    assert 1 < api.peak <= 4
    assert sorted(api.offsets) == list(range(0, 1100, 100))


def test_records_added_during_the_run_are_still_fetched(clock: FakeClock) -> None:
    api = MailchimpMembers(250, grow_to=520)
    pages = concurrent(api, clock)
    assert sum(len(p.records) for p in pages) == 520


def test_a_failing_middle_page_stops_the_stream_at_that_page(clock: FakeClock) -> None:
    api = MailchimpMembers(1000)
    api.fail_offsets = {500}
    seen: list[Page] = []

    def run() -> None:
        limiter = ConcurrencyLimiter(4)
        spec = StreamSpec(
            name="members", path="/lists/l1/members", records_path="members",
            paginator_factory=partial(OffsetPaginator, limit_param="count", total_path="total_items"), page_size=100,
        )  # fmt: skip
        for page in iter_offset_pages_concurrently(
            make_client(api),
            spec,
            retry_policy=retry_policy(clock, max_attempts=2),
            limiter=limiter,
            concurrency=4,
        ):
            seen.append(page)

    with pytest.raises(RetriableError, match="500"):
        run()
    assert [p.state for p in seen][-1] == {"offset": 500}  # commit up to here, resume at 500


def test_resuming_concurrent_paging_starts_at_the_saved_offset(clock: FakeClock) -> None:
    api = MailchimpMembers(1000)
    pages = concurrent(api, clock, resume_from={"offset": 700})
    assert min(api.offsets) == 700
    assert sum(len(p.records) for p in pages) == 300


def test_without_a_total_concurrent_paging_falls_back_to_one_page_at_a_time(clock: FakeClock) -> None:
    def no_total(request: httpx.Request) -> httpx.Response:
        offset = int(request.url.params["offset"])
        return httpx.Response(200, json={"items": [{"id": i} for i in range(offset, min(offset + 10, 25))]})

    spec = StreamSpec(
        name="x", path="/x", records_path="items", paginator_factory=OffsetPaginator, page_size=10
    )
    pages = list(
        iter_offset_pages_concurrently(
            make_client(no_total), spec, retry_policy=retry_policy(clock), concurrency=4
        )
    )
    assert [len(p.records) for p in pages] == [10, 10, 5]
    assert [p.number for p in pages] == [1, 2, 3]


def test_concurrent_paging_needs_an_offset_paginator(clock: FakeClock) -> None:
    with pytest.raises(TypeError, match="does not page by offset"):
        next(
            iter_offset_pages_concurrently(
                make_client(HubSpotContacts(1)), CONTACTS, retry_policy=retry_policy(clock), concurrency=2
            )
        )
