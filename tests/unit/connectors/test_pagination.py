"""Each paginator on hand-built responses: where the next page is, when to stop, loops, resuming."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from leadsync.connectors.errors import FatalError, PaginationLoop
from leadsync.connectors.pagination import (
    CursorAfterPaginator,
    HasMoreOffsetPaginator,
    KeysetPaginator,
    OffsetPaginator,
    PageRequest,
    Paginator,
    SearchOffsetPaginator,
    SinglePagePaginator,
    get_path,
)


def feed(paginator: Paginator, request: PageRequest, body: dict[str, Any], records_path: str) -> None:
    """What the page loop does with one answer."""
    paginator.update_state(httpx.Response(200, json=body), body, get_path(body, records_path))
    if paginator.has_next_page:
        paginator.update_request(request)


# -- HubSpot list: paging.next.after (hubspot.md §2.1) -------------------------------------------


def hubspot_page(ids: list[int], after: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {"results": [{"id": str(i)} for i in ids]}
    if after is not None:
        body["paging"] = {"next": {"after": after, "link": "https://api.hubapi.com/..."}}
    return body


def test_cursor_after_follows_paging_next_after_until_a_page_has_no_paging() -> None:
    paginator = CursorAfterPaginator(100)
    request = PageRequest("GET", "/crm/v3/objects/contacts")
    paginator.init_request(request)
    assert request.params == {"limit": 100}

    feed(paginator, request, hubspot_page([1, 2], "3"), "results")
    assert paginator.has_next_page and request.params == {"limit": 100, "after": "3"}
    assert paginator.state() == {"after": "3"}

    feed(paginator, request, hubspot_page([3], None), "results")
    assert not paginator.has_next_page
    assert paginator.state() is None


def test_cursor_after_follows_a_short_page_that_still_has_a_cursor() -> None:
    paginator = CursorAfterPaginator(100)
    request = PageRequest("GET", "/x")
    feed(paginator, request, hubspot_page([1], "2"), "results")
    assert paginator.has_next_page


def test_cursor_after_refuses_a_token_it_has_already_followed() -> None:
    paginator = CursorAfterPaginator(100)
    request = PageRequest("GET", "/x")
    feed(paginator, request, hubspot_page([1], "2"), "results")
    feed(paginator, request, hubspot_page([2], "3"), "results")
    with pytest.raises(PaginationLoop, match="Loop detected in pagination.*'2'"):
        feed(paginator, request, hubspot_page([3], "2"), "results")


def test_cursor_after_resumes_from_a_saved_state_and_treats_it_as_followed() -> None:
    paginator = CursorAfterPaginator(50)
    paginator.restore({"after": "900"})
    request = PageRequest("GET", "/x")
    paginator.init_request(request)
    assert request.params == {"limit": 50, "after": "900"}
    with pytest.raises(PaginationLoop):
        feed(paginator, request, hubspot_page([1], "900"), "results")


def test_a_fresh_paginator_forgets_the_tokens_of_the_last_run() -> None:
    for _ in range(2):
        paginator = CursorAfterPaginator(100)
        feed(paginator, PageRequest("GET", "/x"), hubspot_page([1], "2"), "results")


# -- offsets with a total: Mailchimp and ActiveCampaign ------------------------------------------


def mailchimp_page(n: int, total: int) -> dict[str, Any]:
    return {"members": [{"id": i} for i in range(n)], "list_id": "l1", "total_items": total}


def activecampaign_page(n: int, total: Any) -> dict[str, Any]:
    return {"contacts": [{"id": str(i)} for i in range(n)], "meta": {"total": total, "page_input": {}}}


def test_mailchimp_offsets_move_by_count_and_stop_at_total_items() -> None:
    # mailchimp.md §4.1: offset/count ≤ 1000, total_items.
    paginator = OffsetPaginator(1000, limit_param="count", total_path="total_items")
    request = PageRequest("GET", "/lists/l1/members")
    paginator.init_request(request)
    assert request.params == {"count": 1000, "offset": 0}
    feed(paginator, request, mailchimp_page(1000, 2500), "members")
    assert request.params["offset"] == 1000 and paginator.total == 2500
    feed(paginator, request, mailchimp_page(1000, 2500), "members")
    assert paginator.state() == {"offset": 2000}
    feed(paginator, request, mailchimp_page(500, 2500), "members")
    assert not paginator.has_next_page and paginator.state() is None


@pytest.mark.parametrize("total", ["250", 250], ids=["string (as sent)", "int (pagination docs)"])
def test_activecampaign_meta_total_is_read_whether_string_or_number(total: Any) -> None:
    # activecampaign.md §1: "meta":{"total":"2"}; the pagination page shows an int.
    paginator = OffsetPaginator(100, limit_param="limit", total_path="meta.total")
    request = PageRequest("GET", "/api/3/contacts")
    feed(paginator, request, activecampaign_page(100, total), "contacts")
    feed(paginator, request, activecampaign_page(100, total), "contacts")
    assert paginator.total == 250 and request.params["offset"] == 200
    feed(paginator, request, activecampaign_page(50, total), "contacts")
    assert not paginator.has_next_page


def test_an_offset_page_clamped_by_the_server_moves_by_what_arrived_not_what_was_asked() -> None:
    # activecampaign.md §11.3: limit is clamped to 100; asking for 500 must not skip records.
    paginator = OffsetPaginator(500, total_path="meta.total")
    request = PageRequest("GET", "/api/3/contacts")
    feed(paginator, request, activecampaign_page(100, "250"), "contacts")
    assert request.params["offset"] == 100 and paginator.has_next_page


def test_without_a_total_a_short_page_is_the_last() -> None:
    paginator = OffsetPaginator(10)
    request = PageRequest("GET", "/x")
    feed(paginator, request, {"items": list(range(10))}, "items")
    assert paginator.has_next_page
    feed(paginator, request, {"items": list(range(3))}, "items")
    assert not paginator.has_next_page


def test_an_empty_page_ends_offset_paging_even_if_the_total_says_more() -> None:
    paginator = OffsetPaginator(100, limit_param="count", total_path="total_items")
    request = PageRequest("GET", "/x")
    feed(paginator, request, mailchimp_page(0, 5000), "members")
    assert not paginator.has_next_page


def test_an_unreadable_total_is_an_error_not_a_guess() -> None:
    paginator = OffsetPaginator(100, total_path="meta.total")
    with pytest.raises(FatalError, match="expected a number at 'meta.total'"):
        feed(paginator, PageRequest("GET", "/x"), activecampaign_page(1, "lots"), "contacts")


def test_offset_paging_resumes_from_a_saved_offset() -> None:
    paginator = OffsetPaginator(100, limit_param="count", total_path="total_items")
    paginator.restore({"offset": 300})
    request = PageRequest("GET", "/x")
    paginator.init_request(request)
    assert request.params == {"count": 100, "offset": 300}


# -- HubSpot legacy email events: hasMore + offset (hubspot.md §4.1) ------------------------------


def events_page(n: int, has_more: bool, offset: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {"hasMore": has_more, "events": [{"id": f"e{i}"} for i in range(n)]}
    if offset is not None:
        body["offset"] = offset
    return body


def test_has_more_follows_the_offset_token_until_has_more_is_false() -> None:
    paginator = HasMoreOffsetPaginator(1000)
    request = PageRequest("GET", "/email/public/v1/events", params={"startTimestamp": 1})
    paginator.init_request(request)
    assert request.params == {"startTimestamp": 1, "limit": 1000}
    feed(paginator, request, events_page(1000, True, "c2VjcmV0"), "events")
    assert request.params["offset"] == "c2VjcmV0" and paginator.state() == {"offset": "c2VjcmV0"}
    feed(paginator, request, events_page(10, False, "bGFzdA"), "events")
    assert not paginator.has_next_page and paginator.state() is None


def test_has_more_with_a_repeated_offset_is_a_loop() -> None:
    paginator = HasMoreOffsetPaginator()
    request = PageRequest("GET", "/x")
    feed(paginator, request, events_page(1, True, "a"), "events")
    with pytest.raises(PaginationLoop):
        feed(paginator, request, events_page(1, True, "a"), "events")


def test_has_more_without_an_offset_is_an_error_not_an_end() -> None:
    with pytest.raises(FatalError, match="hasMore=true but carries no 'offset'"):
        feed(HasMoreOffsetPaginator(), PageRequest("GET", "/x"), events_page(1, True, None), "events")


# -- HubSpot search: numeric after in the body, 10k cap (hubspot.md §2.5) -------------------------


def search_page(ids: range, after: int | None, total: int = 20_000) -> dict[str, Any]:
    body: dict[str, Any] = {
        "total": total,
        "results": [
            {"id": str(i), "properties": {"lastmodifieddate": f"2026-01-01T00:00:{i % 60:02d}Z"}} for i in ids
        ],
    }
    if after is not None:
        body["paging"] = {"next": {"after": str(after)}}
    return body


def search_request() -> PageRequest:
    return PageRequest("POST", "/crm/v3/objects/contacts/search", json={"filterGroups": [], "sorts": []})


def test_search_pages_by_a_numeric_after_in_the_json_body() -> None:
    paginator = SearchOffsetPaginator(200)
    request = search_request()
    paginator.init_request(request)
    assert request.json == {"filterGroups": [], "sorts": [], "limit": 200}
    feed(paginator, request, search_page(range(200), 200), "results")
    assert request.json["after"] == "200" and request.params == {}
    feed(paginator, request, search_page(range(200, 300), None), "results")
    assert not paginator.has_next_page


def test_search_reaching_the_10k_cap_re_anchors_and_restarts_at_offset_zero() -> None:
    floors: list[str] = []

    def on_cap(records: Any) -> dict[str, Any]:
        floor = records[-1]["id"]
        floors.append(floor)
        return {
            "filterGroups": [
                {"filters": [{"propertyName": "hs_object_id", "operator": "GT", "value": floor}]}
            ]
        }

    paginator = SearchOffsetPaginator(200, on_cap=on_cap)
    request = search_request()
    paginator.init_request(request)
    feed(paginator, request, search_page(range(9600, 9800), 9800), "results")
    assert request.json["after"] == "9800"  # 9800 + 200 = 10,000: still allowed
    feed(paginator, request, search_page(range(9800, 10_000), 10_000), "results")
    assert floors == ["9999"] and paginator.restarts == 1
    assert "after" not in request.json
    assert request.json["filterGroups"][0]["filters"][0]["value"] == "9999"
    assert paginator.state() == {"after": "0", "anchor": {"filterGroups": request.json["filterGroups"]}}


def test_search_reaching_the_cap_without_a_re_anchor_raises_instead_of_dropping_records() -> None:
    paginator = SearchOffsetPaginator(200)
    with pytest.raises(FatalError, match="10,000-result cap"):
        feed(paginator, search_request(), search_page(range(200), 10_000), "results")


def test_search_re_anchoring_to_the_same_place_twice_is_a_loop() -> None:
    # e.g. more than 10k records share one lastmodifieddate: re-anchoring on it cannot progress.
    paginator = SearchOffsetPaginator(200, max_results=400, on_cap=lambda records: {"floor": "same"})
    request = search_request()
    feed(paginator, request, search_page(range(200), 400), "results")
    feed(paginator, request, search_page(range(200), 200), "results")
    with pytest.raises(PaginationLoop):
        feed(paginator, request, search_page(range(200), 400), "results")


def test_search_resumes_with_its_anchor() -> None:
    paginator = SearchOffsetPaginator(200)
    paginator.restore({"after": "400", "anchor": {"floor": "7"}})
    request = search_request()
    paginator.init_request(request)
    assert request.json == {"filterGroups": [], "sorts": [], "limit": 200, "floor": "7", "after": "400"}


def test_a_single_page_endpoint_has_no_next_page() -> None:
    paginator = SinglePagePaginator()
    paginator.update_state(None, {"lists": []}, [])
    assert not paginator.has_next_page and paginator.state() is None


@pytest.mark.parametrize(
    ("path", "expected"),
    [("", {"a": [1]}), ("a", [1]), ("a.0", 1), ("a.1", None), ("b.c", None), ("a.x", None)],
)
def test_dotted_paths(path: str, expected: Any) -> None:
    assert get_path({"a": [1]}, path) == expected


# -- keyset: ActiveCampaign contacts by id_greater (activecampaign.md §2) -------------------------


def ac_contacts(ids: list[int]) -> dict[str, Any]:
    return {"contacts": [{"id": str(i)} for i in ids], "meta": {"total": "999"}}


def test_keyset_asks_for_ids_greater_than_the_largest_seen_until_a_short_page() -> None:
    paginator = KeysetPaginator(3)
    request = PageRequest("GET", "/api/3/contacts", params={"orders[id]": "ASC"})
    paginator.init_request(request)
    assert request.params == {"orders[id]": "ASC", "limit": 3}
    feed(paginator, request, ac_contacts([4, 7, 9]), "contacts")
    assert request.params["id_greater"] == 9 and paginator.state() == {"id_greater": 9}
    feed(paginator, request, ac_contacts([12]), "contacts")
    assert not paginator.has_next_page and paginator.state() is None


def test_keyset_notices_a_platform_that_ignored_the_bound() -> None:
    # activecampaign.md §11.2: unsupported filters are silently ignored and the same page returns.
    paginator = KeysetPaginator(2)
    request = PageRequest("GET", "/api/3/contacts")
    feed(paginator, request, ac_contacts([1, 2]), "contacts")
    with pytest.raises(PaginationLoop, match="ignored 'id_greater'"):
        feed(paginator, request, ac_contacts([1, 2]), "contacts")


def test_keyset_resumes_after_a_saved_id() -> None:
    paginator = KeysetPaginator(100)
    paginator.restore({"id_greater": "41"})
    request = PageRequest("GET", "/api/3/contacts")
    paginator.init_request(request)
    assert request.params == {"limit": 100, "id_greater": 41}
