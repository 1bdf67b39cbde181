"""Pure normalisers, table-driven (activecampaign.md §1, §3, §5)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from leadsync.connectors.activecampaign.normalize import (
    activity_event,
    contact_record,
    deal_event,
    parse_ac_time,
    tracking_event,
)
from leadsync.connectors.errors import BadRecord
from leadsync.connectors.records import EventType

T = datetime(2026, 6, 1, 14, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-06-01T09:30:00-05:00", T),  # §1: the account's offset
        ("2026-06-01T14:30:00Z", T),
        ("2026-06-01 14:30:00", T),  # *_utc_timestamp form
        ("0000-00-00 00:00:00", None),  # §1: empty dates
        ("0000-00-00", None),
        ("", None),
        (None, None),
    ],
)
def test_given_an_ac_time_when_parsed_then_it_is_utc_or_none(text, expected) -> None:
    assert parse_ac_time(text) == expected


def test_given_a_contact_with_side_loaded_values_when_normalised_then_profile_fields_come_from_perstags() -> (
    None
):
    raw = {
        "id": "7",
        "email": " Ana@Acme.IO ",
        "firstName": "Ana",
        "lastName": "",
        "udate": "2026-06-01T09:30:00-05:00",
        "cdate": "0000-00-00 00:00:00",
        "phone": "",
    }
    record = contact_record(
        raw,
        {"1": "VP Finance", "4": "800", "9": "gold"},
        source="ac",
        perstag_of={"1": "JOB_TITLE", "4": "COMPANY_SIZE", "9": "TIER"},
    )
    assert (record.remote_id, record.email, record.first_name, record.last_name) == (
        "7",
        "ana@acme.io",
        "Ana",
        None,
    )
    assert (record.job_title, record.company_size, record.updated_at, record.created_at) == (
        "VP Finance",
        800,
        T,
        None,
    )
    assert record.raw == {"fields": {"TIER": "gold"}}


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ({"email": "a@b.io", "udate": "2026-06-01T09:30:00-05:00"}, "without an id"),
        ({"id": "1", "email": "a@b.io", "udate": "0000-00-00 00:00:00"}, "no udate"),
        ({"id": "1", "email": "a@b.io", "udate": "yesterday"}, "unreadable udate"),
    ],
)
def test_given_a_broken_contact_when_normalised_then_bad_record_says_why(raw, reason) -> None:
    with pytest.raises(BadRecord, match=reason):
        contact_record(raw, {}, source="ac", perstag_of={})


@pytest.mark.parametrize(
    ("kind", "action", "expected"),
    [
        ("Log", "sent", EventType.EMAIL_SENT),
        ("Log", "open", EventType.EMAIL_OPEN),
        ("Link", "click", EventType.EMAIL_CLICK),
        ("Bounce", "bounce", EventType.EMAIL_BOUNCE),
        ("ContactList", "unsubscribe", EventType.EMAIL_UNSUBSCRIBE),
        ("Log", "abuse", EventType.EMAIL_SPAM_REPORT),
        ("SubscriberEmail", "", None),  # a 1:1 sales email (the spec example): not scored here
        ("Note", "add", None),
    ],
)
def test_given_an_activity_when_normalised_then_its_reference_gives_the_event_type(
    kind, action, expected
) -> None:
    raw = {
        "id": "865",
        "tstamp": "2026-06-01T09:30:00-05:00",
        "subscriberid": "4",
        "reference_type": kind,
        "reference_action": action,
        "jsonData": '{"campaign": {"id": "3", "name": "June"}, "url": "https://x.io/p"}',
    }
    event = activity_event(raw, source="ac")
    if expected is None:
        assert event is None
    else:
        assert (event.type, event.source_id, event.remote_contact_id, event.occurred_at) == (
            expected,
            "activity:865",
            "4",
            T,
        )
        assert event.properties == {"campaign": "June", "url": "https://x.io/p"}


@pytest.mark.parametrize(
    ("name", "value", "expected_type", "props"),
    [
        (
            "page_view",
            "https://www.example.com/pricing",
            EventType.PAGE_VIEW,
            {"url": "https://www.example.com/pricing"},
        ),
        ("purchase", '{"amount": 49.0}', EventType.PURCHASE, {"amount": 49.0}),
        ("webinar_attended", "spring-launch", EventType.WEBINAR_ATTENDED, {"value": "spring-launch"}),
        ("custom_thing", "x", None, None),
    ],
)
def test_given_a_tracking_log_when_normalised_then_the_event_name_is_the_type(
    name, value, expected_type, props
) -> None:
    raw = {"id": "3", "contact": "4", "type": name, "value": value, "tstamp": "2026-06-01T09:30:00-05:00"}
    event = tracking_event(raw, source="ac")
    if expected_type is None:
        assert event is None
    else:
        assert (event.type, event.properties, event.source_id) == (expected_type, props, "tracking:3")


@pytest.mark.parametrize(("status", "won"), [("1", True), ("0", False), ("2", False)])
def test_given_a_deal_when_normalised_then_only_won_deals_are_events(status, won) -> None:
    raw = {
        "id": "9",
        "contact": "4",
        "status": status,
        "mdate": "2026-06-01T09:30:00-05:00",
        "value": "494227",
        "currency": "usd",
    }
    event = deal_event(raw, source="ac")
    assert (event is not None) == won
    if won:
        assert (event.type, event.occurred_at, event.properties["amount"]) == (EventType.DEAL_WON, T, 4942.27)


def test_given_an_empty_udate_when_normalised_then_the_creation_time_stands_in() -> None:
    raw = {"id": "7", "email": "a@b.io", "cdate": "2026-06-01T09:30:00-05:00", "udate": "0000-00-00 00:00:00"}
    record = contact_record(raw, {"3": "1,200"}, source="ac", perstag_of={"3": "COMPANY_SIZE"})
    assert record.updated_at == record.created_at == datetime(2026, 6, 1, 14, 30, tzinfo=UTC)
    assert record.company_size == 1200
