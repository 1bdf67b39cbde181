"""KeysetPaginator (id_greater) on hand-built pages, the bulk-import 400 rule, value encoding."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from leadsync.connectors.activecampaign.connector import ac_rules
from leadsync.connectors.activecampaign.writeback import encode_value
from leadsync.connectors.errors import PaginationLoop
from leadsync.connectors.pagination import KeysetPaginator, PageRequest
from leadsync.connectors.retry import Action, RetryPolicy


def test_given_full_pages_when_paging_by_id_then_each_request_asks_after_the_last_id() -> None:
    paginator, request = KeysetPaginator(2), PageRequest("GET", "contacts")
    paginator.init_request(request)
    paginator.update_state(None, {}, [{"id": "1"}, {"id": "5"}])
    paginator.update_request(request)
    assert request.params == {"limit": 2, "id_greater": 5} and paginator.state() == {"id_greater": 5}
    paginator.update_state(None, {}, [{"id": "9"}])
    assert not paginator.has_next_page and paginator.state() is None


def test_given_a_server_that_ignores_id_greater_when_paging_then_pagination_loop() -> None:
    paginator = KeysetPaginator(2)
    paginator.init_request(PageRequest("GET", "contacts"))
    paginator.update_state(None, {}, [{"id": "1"}, {"id": "2"}])
    with pytest.raises(PaginationLoop, match="ignored 'id_greater'"):
        paginator.update_state(None, {}, [{"id": "1"}, {"id": "2"}])


@pytest.mark.parametrize(
    ("body", "action"),
    [
        (
            {"success": 0, "message": "Rate limit exceeded.", "failureReasons": ["Up to 100 imports..."]},
            Action.RATE_LIMITED,
        ),
        ({"success": 0, "message": "JSON payload did not pass validation."}, Action.FAIL),
    ],
)
def test_given_a_bulk_import_400_when_classified_then_only_the_rate_limit_is_retried(body, action) -> None:
    policy = RetryPolicy(source="ac").with_rules(*ac_rules())
    response = httpx.Response(
        400, json=body, request=httpx.Request("POST", "https://x/api/3/import/bulk_import")
    )
    assert policy.classify(response=response).action is action


@pytest.mark.parametrize(
    ("logical", "value", "encoded"),
    [
        ("affinity", 87, "87"),
        ("engagement", 12.5, "12.50"),
        ("engagement", 40.0, "40"),
        ("stage", "decision", "decision"),
        ("scored_at", datetime(2026, 6, 1, 14, 30, tzinfo=UTC), "2026-06-01T14:30:00+00:00"),
        ("reason", None, ""),
    ],
)
def test_given_a_logical_value_when_encoded_then_activecampaign_gets_a_string(
    logical, value, encoded
) -> None:
    assert encode_value(logical, value) == encoded


def test_given_250_contacts_over_400kb_when_batching_then_each_request_body_stays_under_the_cap() -> None:
    import json
    from types import SimpleNamespace

    from leadsync.connectors.activecampaign.writeback import MAX_IMPORT_BYTES, Writer
    from leadsync.connectors.base import ScoreUpdate

    fake = SimpleNamespace(settings=SimpleNamespace(field_prefix="leadsync_", options={}))
    writer = Writer(fake)  # type: ignore[arg-type]
    ids = {"reason": 7}
    updates = [ScoreUpdate(str(n), f"p{n}@example.org", {"reason": "x" * 2_000}) for n in range(250)]
    parts = writer._parts(updates, ids)
    assert len(parts) > 1 and sum(len(p) for p in parts) == 250
    for part in parts:
        body = json.dumps({"contacts": [item for _, item in part]}).encode()
        assert len(body) < MAX_IMPORT_BYTES


def test_given_251_updates_when_batching_then_two_even_imports_and_none_under_the_suggested_minimum() -> None:
    from types import SimpleNamespace

    from leadsync.connectors.activecampaign.writeback import MAX_IMPORT_CONTACTS, MIN_IMPORT_CONTACTS, Writer
    from leadsync.connectors.base import ScoreUpdate

    writer = Writer(SimpleNamespace(settings=SimpleNamespace(field_prefix="leadsync_", options={})))  # type: ignore[arg-type]
    for count, sizes in ((251, [126, 125]), (250, [250]), (501, [167, 167, 167]), (10, [10])):
        updates = [ScoreUpdate(str(n), f"p{n}@example.org", {"grade": "A1"}) for n in range(count)]
        parts = writer._parts(updates, {"grade": 3})
        assert [len(p) for p in parts] == sizes
        assert all(MIN_IMPORT_CONTACTS <= len(p) <= MAX_IMPORT_CONTACTS for p in parts)
        assert [u for p in parts for u, _ in p] == updates
