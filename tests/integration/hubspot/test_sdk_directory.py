"""Acceptance 3 (HubSpot): the official ``hubspot-api-client`` reads owners, forms, meetings, calls,
lists and pipelines from the sandbox in its default setup, and what it reads matches the world.

hubspot.md §7: the SDK is pointed at the sandbox with ``host=``; the calls are the SDK's own
(``crm.owners``, ``marketing.forms``, ``crm.objects.meetings|calls``, ``crm.lists``,
``crm.pipelines``), no raw requests.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from hubspot import HubSpot

from leadsync.connectors.records import EventType, Platform
from leadsync.sandbox.hubspot.activity import CONVERSIONS, MEETING_OUTCOME, OWNERS
from leadsync.sandbox.hubspot.emulator import SANDBOX_TOKEN, HubSpotEmulator
from leadsync.sandbox.server import SandboxServer
from leadsync.sandbox.world import World, generate_world

HUBSPOT = Platform.HUBSPOT
FORMS = {EventType(kind) for kind in CONVERSIONS}


@pytest.fixture(scope="module")
def world() -> World:
    return generate_world(150, 3)


@pytest.fixture(scope="module")
def client(world: World) -> Iterator[HubSpot]:
    with SandboxServer.for_world(
        world, emulators=[HubSpotEmulator], ports={"hubspot": 0}, rate_limits=False
    ) as server:
        yield HubSpot(access_token=SANDBOX_TOKEN, host=server.base_url("hubspot"))


def _pages(fetch: Any) -> list[Any]:
    """Every record of a paged SDK call (``paging.next.after``)."""
    out, after = [], None
    while True:
        page = fetch(after)
        out.extend(page.results)
        if page.paging is None or page.paging.next is None:
            return out
        after = page.paging.next.after


def _person_of_contact(client: HubSpot, world: World) -> dict[str, str]:
    by_email = {p.email_on(HUBSPOT).lower(): p.id for p in world.persons if HUBSPOT in p.platforms}
    contacts = _pages(
        lambda after: client.crm.contacts.basic_api.get_page(limit=100, after=after, properties=["email"])
    )
    return {c.id: by_email[c.properties["email"].lower()] for c in contacts}


def _world_events(world: World, kind: EventType) -> list[Any]:
    return [e for e in world.iter_events() if e.platform is HUBSPOT and e.type is kind]


def test_given_the_sdk_when_reading_meetings_then_each_person_has_the_world_meetings_and_outcomes(
    client: HubSpot, world: World
) -> None:
    person_of = _person_of_contact(client, world)
    meetings = _pages(
        lambda after: client.crm.objects.meetings.basic_api.get_page(
            limit=100,
            after=after,
            properties=["hs_meeting_outcome", "hs_timestamp"],
            associations=["contacts"],
        )
    )
    read = Counter(
        (
            person_of[m.associations["contacts"].results[0].id],
            m.properties["hs_meeting_outcome"],
            m.properties["hs_timestamp"][:19],
        )
        for m in meetings
    )
    expected = Counter(
        (e.person, MEETING_OUTCOME[e.properties["outcome"]], e.at.strftime("%Y-%m-%dT%H:%M:%S"))
        for e in _world_events(world, EventType.MEETING_BOOKED)
    )
    assert read == expected and sum(expected.values()) > 5


def test_given_the_sdk_when_reading_calls_then_each_person_has_the_world_calls(
    client: HubSpot, world: World
) -> None:
    person_of = _person_of_contact(client, world)
    calls = _pages(
        lambda after: client.crm.objects.calls.basic_api.get_page(
            limit=100, after=after, properties=["hs_call_status", "hs_timestamp"], associations=["contacts"]
        )
    )
    read = Counter(
        (person_of[c.associations["contacts"].results[0].id], c.properties["hs_call_status"]) for c in calls
    )
    expected = Counter(
        (e.person, "COMPLETED" if e.properties["outcome"] == "completed" else "NO_ANSWER")
        for e in _world_events(world, EventType.CALL)
    )
    assert read == expected and sum(expected.values()) > 5


def test_given_the_sdk_when_reading_owners_then_the_sales_team_owns_every_meeting_and_call(
    client: HubSpot,
) -> None:
    owners = client.crm.owners.get_all()
    assert sorted(o.id for o in owners) == sorted(o[0] for o in OWNERS)
    ids = {o.id for o in owners}
    for api in (client.crm.objects.meetings.basic_api, client.crm.objects.calls.basic_api):
        records = _pages(
            lambda after, api=api: api.get_page(limit=100, after=after, properties=["hubspot_owner_id"])
        )
        assert records and {r.properties["hubspot_owner_id"] for r in records} <= ids


def test_given_the_sdk_when_reading_forms_then_they_are_the_forms_the_world_submitted(
    client: HubSpot, world: World
) -> None:
    forms = _pages(lambda after: client.marketing.forms.forms_api.get_page(after=after))
    submitted = {
        (e.properties or {}).get("form") or CONVERSIONS[e.type.value]
        for e in world.iter_events()
        if e.platform is HUBSPOT and e.type in FORMS
    }
    assert {f.name for f in forms} == submitted and all(f.form_type == "hubspot" for f in forms)


def test_given_the_sdk_when_reading_lists_then_their_sizes_are_the_world_counts(
    client: HubSpot, world: World
) -> None:
    found = client.crm.lists.lists_api.do_search(list_search_request={"query": "", "count": 500})
    sizes = {item.name: int(item.additional_properties["hs_list_size"]) for item in found.lists}
    on_hubspot = [p for p in world.persons if HUBSPOT in p.platforms]
    customers = {
        e.person
        for e in world.iter_events()
        if e.platform is HUBSPOT and e.type in (EventType.DEAL_WON, EventType.PURCHASE)
    }
    assert sizes["All contacts"] == len(on_hubspot)
    assert sizes["Customers"] == len(customers) > 0
    demo = {
        e.person
        for e in world.iter_events()
        if e.platform is HUBSPOT and (e.properties or {}).get("form") == "demo-request"
    }
    assert sizes["Form: demo-request"] == len(demo) > 0
    one = client.crm.lists.lists_api.get_by_id("2").list
    members = client.crm.lists.memberships_api.get_page("2", limit=250).results
    assert one.name == "Customers" and one.size == len(members) == len(customers)


def test_given_the_sdk_when_reading_pipelines_then_the_world_won_deals_sit_in_its_won_stage(
    client: HubSpot, world: World
) -> None:
    pipelines = client.crm.pipelines.pipelines_api.get_all("deals").results
    assert [p.id for p in pipelines] == ["default"]
    stages = client.crm.pipelines.pipeline_stages_api.get_all("deals", "default").results
    won = {s.id for s in stages if s.metadata.get("probability") == "1.0"}
    deals = _pages(
        lambda after: client.crm.deals.basic_api.get_page(limit=100, after=after, properties=["dealstage"])
    )
    outcomes = [
        e
        for e in world.iter_events()
        if e.platform is HUBSPOT and e.type in (EventType.DEAL_WON, EventType.PURCHASE)
    ]
    assert won == {"closedwon"}
    assert sum(1 for d in deals if d.properties["dealstage"] in won) == len(outcomes) > 0
    assert client.crm.pipelines.pipelines_api.get_by_id("deals", "default").label == "Sales Pipeline"
