"""End-to-end pulls over loopback HTTP against the emulator (rate limits off)."""

from __future__ import annotations

from datetime import datetime

from leadsync.connectors.records import EventType, Platform
from tests.integration.activecampaign.conftest import admin, pull_all


def _expected(server):
    emulator = server.state.hosts["activecampaign"].emulator
    state = emulator.state
    return state


def test_given_a_fresh_account_when_pulling_everything_then_every_contact_and_event_arrives_once(
    server, connector_for
) -> None:
    state = _expected(server)
    batches, _ = pull_all(connector_for())
    contacts = [c for b in batches["contacts"] for c in b.contacts]
    assert sorted(int(c.remote_id) for c in contacts) == sorted(state.contacts)
    by_id = {c.remote_id: c for c in contacts}
    some = next(iter(state.contacts.values()))
    assert by_id[str(some.id)].email == some.email.lower()
    person = server.state.world.person(some.person_id)
    assert by_id[str(some.id)].job_title == person.job_title
    assert by_id[str(some.id)].company_size == person.company_size
    activities = [e for b in batches["activities"] for e in b.events]
    assert len(activities) == len(state.activities) == len({e.source_id for e in activities})
    tracking = [e for b in batches["tracking_logs"] for e in b.events]
    assert len(tracking) == sum(len(v) for v in state.tracking_logs.values())
    deals = [e for b in batches["deals"] for e in b.events]
    assert {e.type for e in deals} <= {EventType.DEAL_WON} and len(deals) == len(state.deals)
    assert all(e.platform is Platform.ACTIVECAMPAIGN for e in activities + tracking + deals)
    assert not any(b.bad for bs in batches.values() for b in bs)


def test_given_nothing_changed_when_pulling_again_then_zero_records(server, connector_for) -> None:
    connector = connector_for()
    _, cursors = pull_all(connector)
    again, _ = pull_all(connector, cursors)
    assert sum(len(b.contacts) + len(b.events) for bs in again.values() for b in bs) == 0


def test_given_new_activity_after_a_pull_when_pulling_again_then_only_the_new_records_arrive(
    server, connector_for
) -> None:
    connector = connector_for()
    _, cursors = pull_all(connector)
    state = _expected(server)
    before_activities = len(state.activities)
    admin(server, "POST", "/_sandbox/clock/advance", json={"days": 28})
    new_activities = len(state.activities) - before_activities
    assert new_activities > 0
    again, _ = pull_all(connector, cursors)
    got = [e for b in again["activities"] for e in b.events]
    assert len(got) == new_activities


def test_given_a_run_that_died_half_way_when_resuming_from_the_last_cursor_then_nothing_is_lost_or_doubled(
    server, connector_for
) -> None:
    connector = connector_for()
    first = connector.pull("activities", None)
    seen = []
    cursor = None
    for _ in range(3):
        batch = next(first)
        seen.extend(e.source_id for e in batch.events)
        cursor = batch.cursor
    first.close()  # the run dies here; the cursor of the last committed page survives
    for batch in connector.pull("activities", cursor):
        seen.extend(e.source_id for e in batch.events)
    assert len(seen) == len(set(seen)) == len(_expected(server).activities)


def test_given_tracking_logs_between_sweeps_when_pulling_then_only_active_contacts_are_read_and_a_sweep_catches_the_rest(
    server, connector_for
) -> None:
    state = _expected(server)
    connector = connector_for()
    _, cursors = pull_all(connector)
    before = sum(len(v) for v in state.tracking_logs.values())
    admin(server, "POST", "/_sandbox/clock/advance", json={"days": 28})
    new_logs = sum(len(v) for v in state.tracking_logs.values()) - before
    assert new_logs > 0
    requests_before = server.stats()["activecampaign"]["by_route"].get(
        "GET /api/3/contacts/{id}/trackingLogs", 0
    )
    between = [e for b in connector.pull("tracking_logs", cursors["tracking_logs"]) for e in b.events]
    read = (
        server.stats()["activecampaign"]["by_route"]["GET /api/3/contacts/{id}/trackingLogs"]
        - requests_before
    )
    assert read < len(state.contacts)  # only contacts that changed or have new activities
    swept = connector_for(tracking_sweep_hours=0)
    rest = [e for b in swept.pull("tracking_logs", cursors["tracking_logs"]) for e in b.events]
    ids = [e.source_id for e in between] + [
        e.source_id for e in rest if e.source_id not in {x.source_id for x in between}
    ]
    assert len(ids) == len(set(ids)) == new_logs


def test_given_an_incremental_run_moved_the_cursor_when_the_next_sweep_runs_then_it_still_catches_what_that_run_missed(
    server, connector_for
) -> None:
    # §11.6: a tracked event alone may not bump udate, so a run between sweeps does not read a
    # contact with no other change; its cursor moves past that contact's new events all the same.
    # The next sweep must still emit them: it reads from where the previous sweep began.
    from leadsync.sandbox.activecampaign.state import TrackingLog

    state = _expected(server)
    connector = connector_for()
    _, cursors = pull_all(connector)
    old_since = datetime.fromisoformat(cursors["tracking_logs"]["since"])
    admin(server, "POST", "/_sandbox/clock/advance", json={"days": 28})
    bound = old_since - connector.lookback
    active = {a.contact for a in state.activities if a.tstamp >= bound}
    quiet = next(c for c in state.contacts.values() if c.udate < bound and c.id not in active)
    with state.lock:  # a tracked event on a contact nothing else changed (udate not bumped)
        missed = TrackingLog(state.next_id("trackingLog"), quiet.id, "webinar_attended", "", old_since)
        state.tracking_logs.setdefault(quiet.id, []).append(missed)
    between = list(connector.pull("tracking_logs", cursors["tracking_logs"]))
    assert f"tracking:{missed.id}" not in {e.source_id for b in between for e in b.events}
    moved_to = datetime.fromisoformat(between[-1].cursor["since"])
    assert missed.tstamp < moved_to - connector.lookback  # the cursor moved past it
    swept = connector_for(tracking_sweep_hours=0)
    rest = list(swept.pull("tracking_logs", between[-1].cursor))
    assert f"tracking:{missed.id}" in {e.source_id for b in rest for e in b.events}
    # The sweep after that one re-reads only from where this one began (less the overlap): what is
    # older was emitted by this sweep at the latest.
    again = [e for b in swept.pull("tracking_logs", rest[-1].cursor) for e in b.events]
    assert all(e.occurred_at >= moved_to - connector.lookback for e in again)
