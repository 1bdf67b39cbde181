from __future__ import annotations

from datetime import UTC, datetime

import pytest

from leadsync.connectors.errors import BadRecord
from leadsync.connectors.mailchimp.normalize import (
    activity_events,
    activity_key,
    member_contact,
    member_events,
    order_event,
    proxy_opens,
)
from leadsync.connectors.records import EventType

MEMBER = {
    "id": "a" * 32,
    "list_id": "L1",
    "email_address": " Ana.Ruiz@Acme.io ",
    "status": "subscribed",
    "merge_fields": {
        "FNAME": "Ana",
        "LNAME": "",
        "JOBTITLE": "VP Finance",
        "EMPLOYEES": 800,
        "LEADAFFIN": 71,
    },
    "location": {"country_code": "us"},
    "timestamp_signup": "",
    "timestamp_opt": "2026-05-02T10:00:00+00:00",
    "last_changed": "2026-06-01T09:30:00+00:00",
}


@pytest.mark.parametrize(
    ("change", "field", "expected"),
    [
        ({}, "email", "ana.ruiz@acme.io"),
        ({}, "remote_id", "L1:" + "a" * 32),
        ({}, "last_name", None),  # "" is unset (mailchimp.md §4.2)
        ({}, "company_size", 800),
        ({"merge_fields": {"EMPLOYEES": ""}}, "company_size", None),  # empty number field is ""
        ({}, "country", "US"),
        ({}, "created_at", datetime(2026, 5, 2, 10, tzinfo=UTC)),
        ({}, "updated_at", datetime(2026, 6, 1, 9, 30, tzinfo=UTC)),
    ],
)
def test_given_member_when_normalised_then_field_as_expected(
    change: dict, field: str, expected: object
) -> None:
    contact = member_contact({**MEMBER, **change}, source="mc")
    assert getattr(contact, field) == expected


def test_given_member_when_normalised_then_leadsync_fields_not_in_raw() -> None:
    assert "LEADAFFIN" not in member_contact(MEMBER, source="mc").raw["merge_fields"]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"email_address": ""}, "email"),
        ({"id": None}, "without id"),
        ({"last_changed": ""}, "last_changed"),
        ({"last_changed": "yesterday"}, "unreadable"),
    ],
)
def test_given_broken_member_when_normalised_then_bad_record(change: dict, reason: str) -> None:
    with pytest.raises(BadRecord, match=reason):
        member_contact({**MEMBER, **change}, source="mc")


@pytest.mark.parametrize(
    ("status", "reason", "expected"),
    [
        ("subscribed", "", []),
        ("unsubscribed", "N/A", [EventType.EMAIL_UNSUBSCRIBE]),
        ("unsubscribed", "abuse", [EventType.EMAIL_SPAM_REPORT]),
    ],
)
def test_given_status_when_member_events_then_unsubscribe_or_spam(
    status: str, reason: str, expected: list
) -> None:
    events = member_events({**MEMBER, "status": status, "unsubscribe_reason": reason}, source="mc")
    assert [e.type for e in events] == expected


ITEM = {
    "campaign_id": "C1",
    "list_id": "L1",
    "email_id": "h1",
    "email_address": "ana@acme.io",
    "activity": [
        {"action": "open", "timestamp": "2026-06-02T08:00:01+00:00", "ip": "1.2.3.4"},
        {"action": "open", "timestamp": "2026-06-02T09:00:00+00:00", "ip": "1.2.3.4"},
        {"action": "click", "timestamp": "2026-06-02T09:01:00+00:00", "url": "https://x.io/p"},
        {"action": "bounce", "timestamp": "2026-06-03T00:00:00+00:00", "type": "soft"},
        {"action": "sent", "timestamp": "2026-06-02T08:00:00+00:00"},
    ],
}


def test_given_email_activity_when_normalised_then_events_with_machine_opens_flagged() -> None:
    proxies = frozenset(
        proxy_opens(
            [
                {
                    "email_id": "h1",
                    "opens": [
                        {"timestamp": "2026-06-02T08:00:01+00:00", "is_proxy_open": True},
                        {"timestamp": "2026-06-02T09:00:00+00:00", "is_proxy_open": False},
                    ],
                }
            ]
        )
    )
    events = activity_events(ITEM, source="mc", proxy_opens=proxies)
    assert [e.type for e in events] == [
        EventType.EMAIL_OPEN,
        EventType.EMAIL_OPEN,
        EventType.EMAIL_CLICK,
        EventType.EMAIL_BOUNCE,
    ]
    assert [e.properties.get("machine") for e in events[:2]] == [True, False]
    assert events[2].properties["url"] == "https://x.io/p"
    assert {e.remote_contact_id for e in events} == {"L1:h1"}
    assert len({e.source_id for e in events}) == 4


@pytest.mark.parametrize(
    ("activity", "extra"),
    [
        ({"action": "open", "timestamp": "2026-06-02T08:00:01+00:00"}, {"machine": False}),
        (
            {"action": "click", "timestamp": "2026-06-02T09:01:00+00:00", "url": "https://x.io/p"},
            {"url": "https://x.io/p"},
        ),
        ({"action": "click", "timestamp": "2026-06-02T09:01:00+00:00"}, {"url": None}),
        ({"action": "bounce", "timestamp": "2026-06-03T00:00:00+00:00", "type": "hard"}, {"bounce": "hard"}),
    ],
)
def test_an_activitys_source_id_is_its_activity_key_and_its_properties_name_the_campaign(
    activity, extra
) -> None:
    # the look-back check of a campaign read again (MailchimpConnector._fetch_campaign) and the
    # cursor's seen keys compare activity_key with the events' source_id
    (event,) = activity_events({**ITEM, "activity": [activity]}, source="mc", campaign_title="Spring")
    assert event.source_id == activity_key(
        ITEM["campaign_id"], ITEM["email_id"], activity["action"], activity["timestamp"], activity.get("url")
    )
    assert event.properties == {"campaign": str(ITEM["campaign_id"]), "campaign_title": "Spring", **extra}
    assert event.email == "ana@acme.io" and event.occurred_at.tzinfo is UTC


@pytest.mark.parametrize(
    "activity", [None, "open", 7, {"action": None}, {"action": ["open"]}, {"action": "sent"}]
)
def test_an_activity_leadsync_does_not_score_or_cannot_read_is_skipped(activity) -> None:
    assert activity_events({**ITEM, "activity": [activity]}, source="mc") == []


def test_given_activity_without_timestamp_when_normalised_then_bad_record() -> None:
    with pytest.raises(BadRecord, match="timestamp"):
        activity_events({**ITEM, "activity": [{"action": "open", "timestamp": ""}]}, source="mc")


def test_given_order_when_normalised_then_purchase_of_the_store_audience_member() -> None:
    event = order_event(
        {
            "id": "o1",
            "store_id": "s",
            "order_total": 99.5,
            "currency_code": "USD",
            "processed_at_foreign": "2026-06-05T10:00:00+00:00",
            "customer": {"email_address": "Ana@Acme.io"},
        },
        source="mc",
        list_id="L1",
    )
    assert event.type is EventType.PURCHASE and event.properties["amount"] == 99.5
    assert event.remote_contact_id.startswith("L1:") and event.email == "ana@acme.io"
