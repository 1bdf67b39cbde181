"""How many records the platform says are left after each page (the progress bars' totals):
HubSpot search ``total`` (hubspot.md §2.5), Mailchimp ``total_items`` (mailchimp.md §4.1),
ActiveCampaign ``meta.total`` (activecampaign.md §2), a string there. Paginators that get no total
say None until the last page, then 0."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from leadsync.connectors.base import PullBatch, StreamTally
from leadsync.connectors.pagination import (
    HasMoreOffsetPaginator,
    KeysetPaginator,
    OffsetPaginator,
    PageRequest,
    Paginator,
    SearchOffsetPaginator,
    get_path,
)


def remaining_after_each_page(paginator: Paginator, pages: list[dict[str, Any]], records_path: str) -> list:
    request = PageRequest("GET", "/x", params={})
    paginator.init_request(request)
    left = []
    for body in pages:
        records = get_path(body, records_path)
        paginator.update_state(httpx.Response(200, json=body), body, records)
        left.append(paginator.remaining(body, records))
        if paginator.has_next_page:
            paginator.update_request(request)
    return left


def rows(start: int, count: int) -> list[dict[str, Any]]:
    return [{"id": str(i)} for i in range(start, start + count)]


CASES = [
    (
        "Mailchimp offset/count with total_items",
        OffsetPaginator(2, limit_param="count", total_path="total_items"),
        [
            {"members": rows(1, 2), "total_items": 5},
            {"members": rows(3, 2), "total_items": 5},
            {"members": rows(5, 1), "total_items": 5},
        ],
        "members",
        [3, 1, 0],
    ),
    (
        "ActiveCampaign offset/limit with meta.total as a string",
        OffsetPaginator(2, limit_param="limit", total_path="meta.total"),
        [{"deals": rows(1, 2), "meta": {"total": "3"}}, {"deals": rows(3, 1), "meta": {"total": "3"}}],
        "deals",
        [1, 0],
    ),
    (
        "ActiveCampaign id_greater: meta.total counts the contacts past the id sent",
        KeysetPaginator(2, total_path="meta.total"),
        [
            {"contacts": rows(1, 2), "meta": {"total": "5"}},
            {"contacts": rows(3, 2), "meta": {"total": "3"}},
            {"contacts": rows(5, 1), "meta": {"total": "1"}},
        ],
        "contacts",
        [3, 1, 0],
    ),
    (
        "HubSpot search: total less the next offset",
        SearchOffsetPaginator(2),
        [
            {"results": rows(1, 2), "total": 5, "paging": {"next": {"after": "2"}}},
            {"results": rows(3, 2), "total": 5, "paging": {"next": {"after": "4"}}},
            {"results": rows(5, 1), "total": 5},
        ],
        "results",
        [3, 1, 0],
    ),
    (
        "a total that cannot be read is unknown, not an error",
        KeysetPaginator(2, total_path="meta.total"),
        [{"contacts": rows(1, 2), "meta": {"total": "n/a"}}, {"contacts": rows(3, 1), "meta": {}}],
        "contacts",
        [None, 0],
    ),
    (
        "HubSpot email events: no total, only hasMore",
        HasMoreOffsetPaginator(),
        [{"events": rows(1, 2), "hasMore": True, "offset": "a"}, {"events": rows(3, 1), "hasMore": False}],
        "events",
        [None, 0],
    ),
    (
        "the total is read again on every page (records added during the run count)",
        OffsetPaginator(2, total_path="total_items"),
        [
            {"members": rows(1, 2), "total_items": 7},
            {"members": rows(3, 2), "total_items": 9},
            {"members": [], "total_items": 9},
        ],
        "members",
        [5, 5, 0],
    ),
]


@pytest.mark.parametrize(("name", "paginator", "pages", "path", "expected"), CASES, ids=[c[0] for c in CASES])
def test_remaining_records_after_each_page(name, paginator, pages, path, expected) -> None:
    assert remaining_after_each_page(paginator, pages, path) == expected


def test_a_stream_tally_gives_each_batch_what_it_read_and_the_stream_total_as_far_as_known() -> None:
    tally = StreamTally("contacts")
    first = tally.count(PullBatch("contacts"), 200, 300)
    unknown = tally.count(PullBatch("contacts"), 100, None)
    last = tally.count(PullBatch("contacts"), 200, 0)
    assert (first.read, first.expected, first.unit) == (200, 500, "contacts")
    assert (unknown.read, unknown.expected) == (100, None)
    assert (last.read, last.expected) == (200, 500)
