"""Meetings, calls and carts in the store (issue 21): a re-read whose record changed (a meeting's
outcome, a cart filled again) replaces the stored event; other events are written once; and the
re-score reads each meeting's and call's outcome back from the stored properties."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from leadsync.connectors.base import PullBatch
from leadsync.connectors.records import ContactRecord, EventRecord, EventType, Platform
from leadsync.sync.ingest import ingest_batch
from leadsync.sync.rescore import load_event_columns
from leadsync.sync.store import make_engine
from leadsync.sync.store.models import Event, Person

NOW = datetime(2026, 11, 1, tzinfo=UTC)


def _event(kind: EventType, source_id: str, at: datetime, **properties: object) -> EventRecord:
    return EventRecord("hubspot", Platform.HUBSPOT, source_id, kind, at, "101", None, dict(properties))


@pytest.fixture
def engine(store_url):
    engine = make_engine(store_url)
    contact = ContactRecord("hubspot", Platform.HUBSPOT, "101", "ana@acme.io")
    ingest_batch(engine, PullBatch("contacts", contacts=[contact]), source="hubspot", now=NOW)
    return engine


@pytest.mark.parametrize(
    ("kind", "first", "second", "replaced"),
    [
        (EventType.MEETING_BOOKED, {"outcome": "scheduled"}, {"outcome": "completed"}, True),
        (EventType.CALL, {"outcome": "not_connected"}, {"outcome": "completed"}, True),
        (EventType.CART_ABANDONED, {"amount": 588}, {"amount": 1188}, True),
        (EventType.EMAIL_OPEN, {"campaign": "c1"}, {"campaign": "c2"}, False),
    ],
)
def test_given_a_stored_event_when_read_again_changed_then_only_records_that_change_are_replaced(
    engine, kind: EventType, first: dict, second: dict, replaced: bool
) -> None:
    earlier, later = NOW - timedelta(days=3), NOW - timedelta(days=1)
    for at, props in ((earlier, first), (later, second)):
        batch = PullBatch("s", events=[_event(kind, "x:1", at, **props)])
        ingest_batch(engine, batch, source="hubspot", now=NOW)
    with engine.connect() as connection:
        rows = connection.execute(select(Event.occurred_at, Event.campaign, Event.properties)).all()
    assert len(rows) == 1
    (at, campaign, properties) = rows[0]
    got = {**properties, **({"campaign": campaign} if campaign else {})}
    assert (at.replace(tzinfo=UTC), got) == ((later, second) if replaced else (earlier, first))


def test_given_stored_meetings_and_calls_when_rescored_then_their_outcomes_are_read_back(engine) -> None:
    events = [
        _event(EventType.MEETING_BOOKED, "m:1", NOW, outcome="completed"),
        _event(EventType.MEETING_BOOKED, "m:2", NOW, outcome="no_show"),
        _event(EventType.MEETING_BOOKED, "m:3", NOW, outcome="cancelled"),
        _event(EventType.MEETING_BOOKED, "m:4", NOW, outcome="scheduled"),
        _event(EventType.CALL, "c:1", NOW, outcome="not_connected"),
        _event(EventType.CALL, "c:2", NOW, outcome="completed"),
    ]
    ingest_batch(engine, PullBatch("s", events=events), source="hubspot", now=NOW)
    with engine.connect() as connection:
        (pid,) = connection.execute(select(Person.id)).one()
        columns = load_event_columns(connection, [pid], NOW)
    assert sorted(columns.flags.tolist()) == sorted([4, 8, 16, 0, 32, 0])
