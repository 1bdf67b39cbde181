"""Webhook bodies as deliveries: HubSpot's JSON arrays, Mailchimp's and ActiveCampaign's
form-encoded PHP-bracket bodies; malformed bodies and event types leadsync does not act on."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlencode

import pytest

from leadsync.connectors.mailchimp.normalize import subscriber_hash
from leadsync.connectors.records import Platform
from leadsync.sync.webhooks.parse import AC_KNOWN, Malformed, parse

SPECS = Path(__file__).resolve().parents[4] / "shared" / "specs"


def test_hubspot_array_gives_one_delivery_per_contact_event() -> None:
    body = (
        b'[{"eventId":11,"subscriptionType":"contact.propertyChange","objectId":123,'
        b'"propertyName":"hs_analytics_num_page_views","propertyValue":"7","changeSource":"ANALYTICS"},'
        b'{"eventId":12,"subscriptionType":"deal.creation","objectId":9}]'
    )
    parsed = parse(Platform.HUBSPOT, body)
    assert [(d.event_id, d.kind, d.remote_id) for d in parsed.deliveries] == [
        ("11", "contact.propertyChange", "123")
    ]
    assert parsed.deliveries[0].payload["propertyName"] == "hs_analytics_num_page_views"
    assert parsed.ignored == ["deal.creation"]


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"{not json",
        b"[]",
        b'"text"',
        b"[1]",
        b'[{"objectId":1}]',
        b'[{"eventId":1,"subscriptionType":"contact.creation"}]',
    ],
)
def test_hubspot_malformed_bodies_are_refused(body: bytes) -> None:
    with pytest.raises(Malformed):
        parse(Platform.HUBSPOT, body)


def test_mailchimp_form_body_names_the_member() -> None:
    body = urlencode(
        {
            "type": "unsubscribe",
            "fired_at": "2026-12-04 06:00:00",
            "data[id]": "8a25ff1d98",
            "data[list_id]": "a6b5da1054",
            "data[email]": "Ana@Acme.io",
            "data[merges][FNAME]": "Ana",
            "data[reason]": "manual",
        }
    ).encode()
    (delivery,) = parse(Platform.MAILCHIMP, body).deliveries
    assert delivery.kind == "unsubscribe"
    assert delivery.email == "ana@acme.io"
    assert delivery.remote_id == f"a6b5da1054:{subscriber_hash('ana@acme.io')}"
    assert delivery.payload["merges"] == {"FNAME": "Ana"}
    assert parse(Platform.MAILCHIMP, body).deliveries[0].event_id == delivery.event_id  # same body, same id


@pytest.mark.parametrize(
    "body", [b"", b"data%5Bemail%5D=a%40b.io", b"type=profile&data%5Blist_id%5D=x", b"\xff\xfe", b"a&&=b=&"]
)
def test_mailchimp_malformed_bodies_are_refused(body: bytes) -> None:
    with pytest.raises(Malformed):
        parse(Platform.MAILCHIMP, body)


def test_mailchimp_campaign_event_is_ignored() -> None:
    parsed = parse(Platform.MAILCHIMP, b"type=campaign&data%5Bid%5D=c1")
    assert parsed.deliveries == [] and parsed.ignored == ["campaign"]


def test_activecampaign_click_names_the_contact() -> None:
    body = urlencode(
        {
            "type": "click",
            "date_time": "2026-12-04T06:00:00-06:00",
            "initiated_from": "public",
            "contact[id]": "42",
            "contact[email]": "bo@corp.example",
            "contact[fields][leadsync_affinity]": "55",
            "link[url]": "https://example.com/pricing",
            "campaign[id]": "3",
        }
    ).encode()
    (delivery,) = parse(Platform.ACTIVECAMPAIGN, body).deliveries
    assert (delivery.kind, delivery.remote_id, delivery.email) == ("click", "42", "bo@corp.example")
    assert delivery.payload["link[url]"] == "https://example.com/pricing"


def test_activecampaign_deal_event_names_the_deal_contact() -> None:
    body = urlencode({"type": "deal_update", "date_time": "2026-12-04", "deal[contactid]": "7"}).encode()
    assert parse(Platform.ACTIVECAMPAIGN, body).deliveries[0].remote_id == "7"


def test_activecampaign_unknown_type_is_ignored_and_contactless_event_is_malformed() -> None:
    assert parse(Platform.ACTIVECAMPAIGN, b"type=sent&date_time=x").ignored == ["sent"]
    assert parse(Platform.ACTIVECAMPAIGN, b"type=brand_new_event").ignored == ["brand_new_event"]
    with pytest.raises(Malformed):
        parse(Platform.ACTIVECAMPAIGN, b"type=click&date_time=x")


def test_every_activecampaign_asyncapi_message_is_known() -> None:
    spec = SPECS / "activecampaign" / "activecampaign-webhooks.asyncapi.yml"
    if not spec.is_file():
        pytest.skip(f"the ActiveCampaign AsyncAPI description is not at {spec} (it lives in ../shared/specs)")
    names = set(re.findall(r"^\s{6}name: (\w+)$", spec.read_text(encoding="utf-8"), flags=re.M))
    assert names and names <= AC_KNOWN, sorted(names - AC_KNOWN)
