from __future__ import annotations

import pytest

from leadsync.connectors.errors import BadRecord
from leadsync.connectors.hubspot import normalize, writeback
from leadsync.connectors.records import EventType

ORDER = [
    "subscriber",
    "lead",
    "marketingqualifiedlead",
    "salesqualifiedlead",
    "opportunity",
    "customer",
    "evangelist",
]


@pytest.mark.parametrize(
    ("current", "target", "forward"),
    [
        (None, "lead", True),
        ("", "lead", True),
        ("lead", "customer", True),
        ("customer", "lead", False),
        ("customer", "customer", False),
        ("mystery_custom", "lead", False),
        ("lead", "not_a_stage", False),
    ],
)
def test_lifecycle_moves_only_forward_in_the_account_order(current, target, forward):
    assert writeback.is_forward(current, target, ORDER) is forward


@pytest.mark.parametrize(
    ("kind", "raw", "expected"),
    [
        ("OPEN", {}, EventType.EMAIL_OPEN),
        ("CLICK", {"url": "u"}, EventType.EMAIL_CLICK),
        ("DELIVERED", {}, EventType.EMAIL_SENT),
        ("BOUNCE", {}, EventType.EMAIL_BOUNCE),
        ("SPAMREPORT", {}, EventType.EMAIL_SPAM_REPORT),
        ("STATUSCHANGE", {"portalSubscriptionStatus": "UNSUBSCRIBED"}, EventType.EMAIL_UNSUBSCRIBE),
        ("PROCESSED", {}, None),
    ],
)
def test_email_event_types_map_to_normalised_types(kind, raw, expected):
    event = normalize.email_event(
        {"id": "x", "created": 1700000000000, "type": kind, **raw}, source="s", contact_id="1"
    )
    assert (event.type if event else None) is expected


def test_a_counter_increase_becomes_one_event_per_step_with_stable_ids():
    raw = {
        "id": "7",
        "properties": {
            "hs_analytics_num_page_views": "5",
            "hs_analytics_last_timestamp": "2026-05-01T10:00:00.000Z",
            "num_conversion_events": "1",
            "recent_conversion_date": "2026-05-01T09:00:00.000Z",
            "recent_conversion_event_name": "Request a demo",
        },
    }
    events, counts = normalize.counter_events(raw, (3, 0), source="s", page_views=True)
    assert [e.source_id for e in events] == ["pv:7:4", "pv:7:5", "form:7:1"]
    assert events[-1].type is EventType.DEMO_REQUEST and counts == (5, 1)
    assert normalize.counter_events(raw, counts, source="s", page_views=True)[0] == []


def test_a_contact_without_id_is_a_bad_record():
    with pytest.raises(BadRecord):
        normalize.contact({"properties": {}}, source="s")


@pytest.mark.parametrize(
    ("logical", "value", "wire"),
    [
        ("affinity", 42.0, "42"),
        ("engagement", 12.345, "12.35"),
        ("stage", "decision", "decision"),
        ("reason", None, ""),
    ],
)
def test_values_are_written_as_strings(logical, value, wire):
    assert writeback.encode_value(logical, value) == wire
