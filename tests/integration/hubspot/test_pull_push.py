"""End to end over loopback HTTP: the connector against the HubSpot sandbox (rate limits off)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, timedelta
from types import SimpleNamespace

import httpx
import pytest

from leadsync.connectors.base import ScoreUpdate
from leadsync.connectors.hubspot.connector import HubSpotConnector
from leadsync.connectors.records import EventType, Platform
from leadsync.sandbox.hubspot.emulator import HubSpotEmulator
from leadsync.sandbox.server import SandboxServer
from leadsync.sandbox.world.model import Event
from tests.integration.hubspot.conftest import settings_for
from tests.integration.hubspot.worlds import NOW, tiny_world


def pull_all(connector: HubSpotConnector, cursors: dict[str, object]) -> tuple[list, list, list]:
    contacts, events, bad = [], [], []
    for stream in connector.streams():
        for batch in connector.pull(stream, cursors.get(stream)):
            contacts += batch.contacts
            events += batch.events
            bad += batch.bad
            if batch.cursor is not None:
                cursors[stream] = batch.cursor
    return contacts, events, bad


@pytest.fixture(params=["free", "enterprise"])
def server(request) -> Iterator[SandboxServer]:
    with SandboxServer.for_world(
        tiny_world(),
        emulators=[HubSpotEmulator],
        ports={"hubspot": 0},
        rate_limits=False,
        extra={"hubspot": {"tier": request.param}},
    ) as s:
        yield s


def connector_for(server: SandboxServer, **options: object) -> HubSpotConnector:
    tier = server.state.hosts["hubspot"].emulator.tier
    return HubSpotConnector(settings_for(server.base_url("hubspot"), tier=tier, rate_limit=False, **options))


def test_given_a_fresh_portal_when_pulling_everything_then_contacts_and_events_arrive_and_a_second_pull_brings_nothing(
    server,
):
    with connector_for(server) as connector:
        cursors: dict[str, object] = {}
        contacts, events, bad = pull_all(connector, cursors)
        assert len(contacts) == 6 and not bad
        by_type: dict[EventType, int] = {}
        for e in events:
            by_type[e.type] = by_type.get(e.type, 0) + 1
        assert by_type[EventType.EMAIL_SENT] == 6 and by_type[EventType.EMAIL_OPEN] == 6
        assert by_type[EventType.EMAIL_CLICK] == 3 and by_type[EventType.PAGE_VIEW] == 6
        assert by_type[EventType.FORM_SUBMIT] == 2 and by_type[EventType.DEAL_WON] == 1
        assert by_type[EventType.EMAIL_BOUNCE] == 1 and by_type[EventType.EMAIL_UNSUBSCRIBE] == 1
        assert any(e.properties.get("machine") for e in events if e.type is EventType.EMAIL_OPEN)
        if server.state.hosts["hubspot"].emulator.tier == "enterprise":
            assert all(e.properties.get("url") for e in events if e.type is EventType.PAGE_VIEW)
        assert len({e.source_id for e in events}) == len(events)

        again = pull_all(connector, cursors)
        assert again == ([], [], [])


def test_given_new_activity_after_a_clock_advance_when_pulling_then_exactly_the_changed_contacts_and_new_events_arrive(
    server,
):
    emulator: HubSpotEmulator = server.state.hosts["hubspot"].emulator
    world = server.state.world
    with connector_for(server) as connector:
        cursors: dict[str, object] = {}
        pull_all(connector, cursors)
        later = NOW + timedelta(days=1)
        p1, p3 = world.persons[0], world.persons[2]
        delta = SimpleNamespace(
            persons=[],
            changes=[],
            events=[
                Event(
                    "n1",
                    p1.id,
                    Platform.HUBSPOT,
                    EventType.PAGE_VIEW,
                    later,
                    url="https://example.com/pricing",
                ),
                Event(
                    "n2",
                    p3.id,
                    Platform.HUBSPOT,
                    EventType.EMAIL_OPEN,
                    later + timedelta(minutes=1),
                    campaign="hs-may-newsletter",
                ),
            ],
        )
        emulator.apply_delta(delta)
        server.state.clock.advance(timedelta(days=1, minutes=5))
        contacts, events, bad = pull_all(connector, cursors)
        assert sorted(c.email for c in contacts) == sorted([p1.email, p3.email])
        assert sorted(e.type.value for e in events) == ["email_open", "page_view"]
        assert pull_all(connector, cursors) == ([], [], [])


def test_given_scores_for_every_contact_when_pushing_then_batches_of_100_write_values_that_read_back(server):
    emulator: HubSpotEmulator = server.state.hosts["hubspot"].emulator
    # more than one batch: add contacts straight into the portal
    for i in range(250):
        emulator.state.create("contacts", {"email": f"extra{i}@bulk.io", "lifecyclestage": "lead"}, NOW)
    ids = sorted(emulator.state.objects["contacts"], key=int)
    scored = NOW.replace(tzinfo=UTC)
    updates = [
        ScoreUpdate(
            remote_id=i,
            email="",
            fields={
                "affinity": n % 100,
                "engagement": 12.5,
                "stage": "decision",
                "grade": "B2",
                "reason": "pricing page x3",
                "scored_at": scored,
            },
            lifecycle="marketingqualifiedlead",
        )
        for n, i in enumerate(ids)
    ]
    with connector_for(server) as connector:
        before = server.stats()["hubspot"]["by_route"].get(
            "POST /crm/v3/objects/{objectType}/batch/update", 0
        )
        report = connector.push(updates)
        after = server.stats()["hubspot"]["by_route"]["POST /crm/v3/objects/{objectType}/batch/update"]
        assert after - before == math.ceil(len(ids) / 100)
        assert not report.failed and sorted(report.written, key=int) == ids
        back = connector.read_back(
            ids, ["leadsync_affinity", "leadsync_stage", "leadsync_scored_at", "lifecyclestage"]
        )
        assert back[ids[5]]["leadsync_affinity"] == "5" and back[ids[5]]["leadsync_stage"] == "decision"
        assert back[ids[0]]["leadsync_scored_at"].startswith("2026-06-01T12:00:00")
        customer = emulator.state.contact_by_email(server.state.world.persons[3].email)
        assert customer is not None and back[customer.id]["lifecyclestage"] == "customer"  # never lowered
        assert emulator.state.backward_lifecycle_attempts == []
        assert back[ids[-1]]["lifecyclestage"] == "marketingqualifiedlead"


def test_given_a_contact_at_customer_when_pushing_a_lower_stage_then_lifecycle_is_not_sent(server):
    emulator: HubSpotEmulator = server.state.hosts["hubspot"].emulator
    customer = emulator.state.contact_by_email(server.state.world.persons[3].email)
    assert customer is not None and customer.properties["lifecyclestage"] == "customer"
    with connector_for(server) as connector:
        report = connector.push([ScoreUpdate(customer.id, "", {"affinity": 50}, lifecycle="lead")])
    assert report.written == [customer.id] and not report.failed
    assert customer.properties["lifecyclestage"] == "customer"
    assert emulator.state.backward_lifecycle_attempts == []


def test_given_the_stage_seen_at_pull_when_pushing_a_lifecycle_then_nothing_is_read_first(server):
    emulator: HubSpotEmulator = server.state.hosts["hubspot"].emulator
    ids = sorted(emulator.state.objects["contacts"], key=int)
    lower = [
        i for i in ids if emulator.state.objects["contacts"][i].properties["lifecyclestage"] == "subscriber"
    ]
    assert lower, "the world has no subscriber to move forward: the test proves nothing"
    updates = [
        ScoreUpdate(
            i, "", {"affinity": 50}, lifecycle="marketing_qualified_lead", lifecycle_seen="subscriber"
        )
        for i in lower
    ]
    read_route = "POST /crm/v3/objects/{objectType}/batch/read"
    with connector_for(server) as connector:
        before = server.stats()["hubspot"]["by_route"].get(read_route, 0)
        report = connector.push(updates)
        assert server.stats()["hubspot"]["by_route"].get(read_route, 0) == before
    assert sorted(report.written, key=int) == lower and not report.failed
    # leadsync's level is written as HubSpot's internal value (hubspot.md §3)
    assert {emulator.state.objects["contacts"][i].properties["lifecyclestage"] for i in lower} == {
        "marketingqualifiedlead"
    }


def test_given_a_stage_moved_on_since_the_pull_when_pushing_then_the_contact_is_read_and_not_lowered(server):
    emulator: HubSpotEmulator = server.state.hosts["hubspot"].emulator
    customer = emulator.state.contact_by_email(server.state.world.persons[3].email)
    assert customer is not None and customer.properties["lifecyclestage"] == "customer"
    update = ScoreUpdate(
        customer.id, "", {"affinity": 77}, lifecycle="sales_qualified_lead", lifecycle_seen="lead"
    )
    with connector_for(server) as connector:
        report = connector.push([update])
    assert report.written == [customer.id] and not report.failed
    assert customer.properties["lifecyclestage"] == "customer"
    assert customer.properties["leadsync_affinity"] == "77"  # the rest of the update still went out


def test_given_forced_item_failures_when_pushing_then_good_items_are_written_and_bad_ones_reported(server):
    base = server.base_url("hubspot")
    httpx.post(
        f"{base}/_sandbox/hubspot/item-failures", json={"ids": ["102"], "category": "VALIDATION_ERROR"}
    )
    httpx.post(
        f"{base}/_sandbox/hubspot/item-failures",
        json={"ids": ["103"], "category": "INTERNAL_ERROR", "times": 1},
    )
    ids = ["101", "102", "103", "104"]
    with connector_for(server) as connector:
        report = connector.push([ScoreUpdate(i, "", {"engagement": 40}) for i in ids])
        assert sorted(report.written) == ["101", "103", "104"]  # 103 failed once, retriable, then written
        assert [(f.remote_id, f.retriable) for f in report.failed] == [("102", False)]
        back = connector.read_back(ids, ["leadsync_engagement"])
    assert back["101"]["leadsync_engagement"] == "40" and back["102"]["leadsync_engagement"] in (None, "")
