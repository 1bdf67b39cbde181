from __future__ import annotations

import dataclasses

import pytest

from leadsync.connectors.mailchimp import streams as S
from leadsync.connectors.records import EventType
from leadsync.sandbox.server import SandboxServer
from tests.integration.mailchimp.conftest import connector_for, emulator_of, pull_all


def _expected(server: SandboxServer) -> tuple[set[str], int, int, int]:
    state = emulator_of(server).state
    members = {f"{a.id}:{key}" for a in state.audiences.values() for key, m in a.members.items()}
    activity = sum(len(acts) for c in state.campaigns.values() for acts in c.activity.values())
    proxy = sum(1 for c in state.campaigns.values() for acts in c.activity.values() for a in acts if a.proxy)
    return members, activity, proxy, len(state.orders)


def test_given_world_when_full_pull_then_every_member_activity_and_order_arrive(
    server: SandboxServer,
) -> None:
    members, activity, proxy, orders = _expected(server)
    with connector_for(server) as connector:
        batches, _ = pull_all(connector)
    contacts = [c for b in batches["members"] for c in b.contacts]
    assert {c.remote_id for c in contacts} == members
    assert len(contacts) == len(members)  # no duplicates across pages
    events = [e for b in batches["email_activity"] for e in b.events]
    assert len(events) == activity
    assert len({e.source_id for e in events}) == activity
    opens = [e for e in events if e.type is EventType.EMAIL_OPEN]
    assert sum(1 for e in opens if e.properties["machine"]) == proxy > 0
    assert len([e for b in batches["orders"] for e in b.events]) == orders > 0
    assert not any(b.bad for bs in batches.values() for b in bs)


def test_given_pulled_when_pulled_again_with_nothing_changed_then_zero_records(server: SandboxServer) -> None:
    with connector_for(server) as connector:
        _, cursors = pull_all(connector)
        again, _ = pull_all(connector, cursors)
    assert sum(len(b.contacts) + len(b.events) + len(b.bad) for bs in again.values() for b in bs) == 0


def test_given_pulled_when_clock_advances_then_only_new_activity_arrives(server: SandboxServer) -> None:
    with connector_for(server) as connector:
        first, cursors = pull_all(connector)
        seen = {e.source_id for bs in first.values() for b in bs for e in b.events}
        server.state.advance(days=3)
        second, _ = pull_all(connector, cursors)
    new_events = [e for bs in second.values() for b in bs for e in b.events]
    assert new_events, "three days of activity should bring events"
    assert not {e.source_id for e in new_events} & seen


def test_given_one_list_configured_when_pull_then_only_its_members(server: SandboxServer) -> None:
    audiences = list(emulator_of(server).state.audiences.values())
    wanted = audiences[1]
    with connector_for(server, lists=[wanted.id]) as connector:
        batches = list(connector.pull("members", None))
    assert {c.remote_id.split(":")[0] for b in batches for c in b.contacts} == {wanted.id}
    assert sum(len(b.contacts) for b in batches) == len(wanted.members)


def test_given_activity_pages_of_seven_when_full_pull_then_every_activity_and_proxy_open_arrives_once(
    server: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # small pages: every campaign spans several, requested side by side once the first gives the total
    monkeypatch.setattr(S, "EMAIL_ACTIVITY", dataclasses.replace(S.EMAIL_ACTIVITY, page_size=7))
    monkeypatch.setattr(S, "OPEN_DETAILS", dataclasses.replace(S.OPEN_DETAILS, page_size=7))
    _, activity, proxy, _ = _expected(server)
    host = server.state.hosts["mailchimp"]
    with connector_for(server) as connector:
        batches = list(connector.pull("email_activity", None))
    events = [e for b in batches for e in b.events]
    assert len(events) == len({e.source_id for e in events}) == activity
    assert sum(1 for e in events if e.properties.get("machine")) == proxy > 0
    routes = host.stats.snapshot()["by_route"]
    assert routes["GET /3.0/reports/{campaign_id}/email-activity"] > 2 * len(batches)  # several pages each
    assert host.stats.snapshot()["connections_peak"] <= connector.concurrency


def test_given_pulled_when_activity_pulled_again_with_nothing_new_then_no_open_details_are_asked(
    server: SandboxServer,
) -> None:
    host = server.state.hosts["mailchimp"]
    with connector_for(server) as connector:
        _, cursors = pull_all(connector)
        before = host.stats.snapshot()["by_route"]
        again = list(connector.pull("email_activity", cursors["email_activity"]))
    after = host.stats.snapshot()["by_route"]
    route = "GET /3.0/reports/{campaign_id}/open-details"
    assert not any(b.events for b in again)
    assert after.get(route, 0) == before.get(route, 0)  # asked for beside the activity on a first read only


def test_given_orders_and_carts_pulled_by_one_connector_then_the_stores_are_read_once(
    server: SandboxServer,
) -> None:
    host = server.state.hosts["mailchimp"]
    before = host.stats.snapshot()["by_route"].get("GET /3.0/ecommerce/stores", 0)
    with connector_for(server) as connector:
        orders = [e for b in connector.pull("orders", None) for e in b.events]
        carts = [e for b in connector.pull("carts", None) for e in b.events]
    assert orders and carts
    assert host.stats.snapshot()["by_route"]["GET /3.0/ecommerce/stores"] - before == 1
