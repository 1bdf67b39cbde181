"""Who the next re-score picks up (``ChangedPerson``), and how the store hands events to scoring."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import event as sa_event
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError
from sqlmodel import SQLModel

import leadsync.sync.ingest as ingest_module
import leadsync.sync.rescore as rescore_module
from leadsync.config.scoring_model import load_model, parse_model
from leadsync.connectors.base import PullBatch
from leadsync.connectors.records import ContactRecord, EventRecord, EventType, Platform
from leadsync.scoring import EventColumns
from leadsync.sync.ingest import ingest_batch
from leadsync.sync.rescore import persons_to_score, rescore
from leadsync.sync.scorebatch import FEW, load_event_columns
from leadsync.sync.store import make_engine
from leadsync.sync.store.marklock import MarkedContacts
from leadsync.sync.store.models import ChangedPerson, Event, Person, Score, ScoreHistory

NOW = datetime(2026, 11, 1, tzinfo=UTC)


def contact(remote_id: str, email: str) -> ContactRecord:
    return ContactRecord(source="hs", platform=Platform.HUBSPOT, remote_id=remote_id, email=email)


def event(source_id: str, remote_id: str, kind: EventType, at: datetime, **properties: object) -> EventRecord:
    return EventRecord(
        source="hs",
        platform=Platform.HUBSPOT,
        source_id=source_id,
        type=kind,
        occurred_at=at,
        remote_contact_id=remote_id,
        properties=dict(properties),
    )


def changed(engine) -> dict[str, datetime]:  # noqa: ANN001
    with engine.connect() as connection:
        rows = connection.execute(
            select(Person.email, ChangedPerson.changed_at).join(Person, Person.id == ChangedPerson.person_id)
        )
        return {email: at for email, at in rows}


@pytest.fixture
def engine(store_url):  # noqa: ANN001, ANN201
    engine = make_engine(store_url)
    contacts = [contact("1", "ana@acme.io"), contact("2", "bo@acme.io"), contact("3", "cy@acme.io")]
    ingest_batch(engine, PullBatch("contacts", contacts=contacts), source="hs", now=NOW)
    yield engine
    engine.dispose()


def test_the_migration_builds_exactly_the_tables_and_indexes_of_the_models(store_url):
    engine = make_engine(store_url)
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)
    assert differences == []


def test_given_new_contacts_when_ingested_then_each_person_is_marked_changed(engine):
    assert changed(engine) == {"ana@acme.io": NOW, "bo@acme.io": NOW, "cy@acme.io": NOW}


def test_given_a_scored_store_when_events_arrive_then_only_their_persons_are_marked(engine):
    rescore(engine, load_model("default"), now=NOW)
    assert changed(engine) == {}
    later = NOW + timedelta(hours=1)
    events = [event("e1", "2", EventType.EMAIL_OPEN, NOW), event("e2", "2", EventType.PAGE_VIEW, NOW)]
    ingest_batch(engine, PullBatch("events", events=events), source="hs", now=later)
    assert changed(engine) == {"bo@acme.io": later}
    with engine.connect() as connection:
        ids = persons_to_score(connection, "unchanged model", now=NOW, everyone=False)
    assert len(ids) == 3  # the model fingerprint differs: everyone
    rescore(engine, load_model("default"), now=later)
    assert changed(engine) == {}


@pytest.mark.parametrize("hours", [2, -1], ids=["a later page", "a page stamped earlier"])
def test_given_a_pending_mark_when_more_pages_land_then_it_keeps_the_time_of_the_first(engine, hours):
    # the fixture's contacts marked everyone at NOW, and no re-score has claimed the marks since
    ingest_batch(
        engine,
        PullBatch("events", events=[event("e1", "1", EventType.EMAIL_OPEN, NOW)]),
        source="hs",
        now=NOW + timedelta(hours=hours),
    )
    with engine.connect() as connection:
        versions = dict(connection.execute(select(ChangedPerson.person_id, ChangedPerson.version)).all())
    assert changed(engine)["ana@acme.io"] == NOW
    assert set(versions.values()) == {1}  # not rewritten


def test_given_a_page_committed_while_the_rescore_reads_then_its_mark_stays_for_the_next_run(
    engine, monkeypatch
):
    rescore(engine, load_model("default"), now=NOW)
    ingest_batch(
        engine,
        PullBatch("events", events=[event("e1", "3", EventType.EMAIL_OPEN, NOW)]),
        source="hs",
        now=NOW,
    )
    read_events = rescore_module.load_event_columns

    # stamped earlier than the claimed mark, as a pull whose `now` was taken before the rescore began
    earlier = NOW - timedelta(hours=1)

    def a_page_lands_meanwhile(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        # after the rescore claimed and read cy's mark, before it scored her
        late = PullBatch("events", events=[event("e2", "3", EventType.PAGE_VIEW, NOW)])
        ingest_batch(engine, late, source="hs", now=earlier)
        return read_events(*args, **kwargs)

    monkeypatch.setattr(rescore_module, "load_event_columns", a_page_lands_meanwhile)
    rescore(engine, load_model("default"), now=NOW)
    assert changed(engine) == {"cy@acme.io": earlier}  # kept: the page took back the rescore's claim
    monkeypatch.undo()
    rescore(engine, load_model("default"), now=NOW)
    assert changed(engine) == {}


def opened(source_id: str, remote_id: str) -> PullBatch:
    return PullBatch("events", events=[event(source_id, remote_id, EventType.EMAIL_OPEN, NOW)])


@pytest.mark.parametrize(
    ("remembered_at", "read_now", "contacts", "to_mark", "kept"),
    [
        (None, None, {"a", "b"}, {"a", "b"}, set()),  # no claim count: nothing is ever skipped
        (3, 3, {"a", "b"}, {"b"}, {"a"}),  # the same count: a's mark is still there
        (3, 4, {"a", "b"}, {"a", "b"}, set()),  # a claim since: everything is marked again
    ],
    ids=["no count", "same count", "claimed since"],
)
def test_marked_contacts_skip_only_what_was_marked_at_the_same_claim_count(
    remembered_at, read_now, contacts, to_mark, kept
):
    marked = MarkedContacts()
    marked.unmarked(remembered_at, set())
    marked.remember(remembered_at, {"a"})
    assert marked.unmarked(read_now, contacts) == to_mark
    assert marked.remote_ids == kept


def test_marked_contacts_stop_growing_at_their_limit():
    marked = MarkedContacts(limit=2)
    marked.unmarked(0, set())
    marked.remember(0, ["a", "b", "c"])
    assert len(marked.remote_ids) == 2
    marked.remember(1, ["d"])  # a count this page did not read under the lock: ignored
    assert "d" not in marked.remote_ids


def test_a_pull_marks_a_person_once_until_a_rescore_claims_the_marks(engine):
    sent: list[str] = []

    @sa_event.listens_for(engine, "before_cursor_execute")
    def count(conn, cursor, statement, *args):  # noqa: ANN001, ANN002, ANN202
        if statement.lstrip().upper().startswith("INSERT INTO CHANGEDPERSON"):
            sent.append(statement)

    marked = MarkedContacts()
    ingest_batch(engine, opened("e1", "1"), source="hs", now=NOW, marked=marked)
    ingest_batch(engine, opened("e2", "1"), source="hs", now=NOW, marked=marked)
    assert len(sent) == 1  # the second page knew ana's mark was there
    rescore(engine, load_model("default"), now=NOW)
    assert changed(engine) == {}
    later = NOW + timedelta(hours=1)
    ingest_batch(engine, opened("e3", "1"), source="hs", now=later, marked=marked)
    assert changed(engine) == {"ana@acme.io": later}  # the claim moved the count: marked again
    assert len(sent) == 2


def test_a_pull_marks_again_a_person_whose_mark_a_rescore_claimed_while_it_ran(engine, monkeypatch):
    marked = MarkedContacts()
    ingest_batch(engine, opened("e1", "3"), source="hs", now=NOW, marked=marked)
    assert "3" in marked.remote_ids
    read_events = rescore_module.load_event_columns
    later = NOW + timedelta(hours=1)

    def a_page_lands_meanwhile(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        # after the rescore claimed cy's mark, before it scored her: the pull's next page
        ingest_batch(engine, opened("e2", "3"), source="hs", now=later, marked=marked)
        return read_events(*args, **kwargs)

    monkeypatch.setattr(rescore_module, "load_event_columns", a_page_lands_meanwhile)
    rescore(engine, load_model("default"), now=NOW)
    assert changed(engine) == {"cy@acme.io": later}  # not skipped: her mark had been claimed


def test_a_page_that_rolled_back_is_not_remembered_as_marked(engine, monkeypatch):
    rescore(engine, load_model("default"), now=NOW)
    marked = MarkedContacts()
    page = PullBatch("events", events=[event("e1", "2", EventType.EMAIL_OPEN, NOW)], cursor={"page": 1})

    def cursor_write_fails(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise RuntimeError("the cursor could not be written")

    monkeypatch.setattr(ingest_module, "upsert", cursor_write_fails)  # after the marks, before commit
    with pytest.raises(RuntimeError):
        ingest_batch(engine, page, source="hs", now=NOW, marked=marked)
    assert marked.remote_ids == set()
    assert changed(engine) == {}
    monkeypatch.undo()
    ingest_batch(engine, page, source="hs", now=NOW, marked=marked)
    assert changed(engine) == {"bo@acme.io": NOW}


def test_given_an_email_change_when_ingested_then_the_person_left_behind_is_marked_too(engine):
    rescore(engine, load_model("default"), now=NOW)
    later = NOW + timedelta(hours=1)
    ingest_batch(
        engine, PullBatch("contacts", contacts=[contact("1", "ana@other.io")]), source="hs", now=later
    )
    assert changed(engine) == {"ana@acme.io": later, "ana@other.io": later}


on_postgresql = pytest.mark.parametrize(
    "store_url", [pytest.param("postgresql", marks=pytest.mark.postgresql)], indirect=True
)


@on_postgresql
def test_a_page_marking_persons_already_marked_neither_locks_nor_waits_for_their_marks(engine):
    engine.dispose()

    @sa_event.listens_for(engine, "connect")
    def wait_at_most_2_s(dbapi_connection, _record):  # noqa: ANN001, ANN202
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '2s'")

    # another transaction holds every mark's row lock: a page that had to lock them would wait
    with engine.connect() as holder, holder.begin():
        holder.execute(select(ChangedPerson.person_id).with_for_update()).all()
        ingest_batch(
            engine,
            PullBatch("events", events=[event("e1", "1", EventType.EMAIL_OPEN, NOW)]),
            source="hs",
            now=NOW + timedelta(hours=1),
        )
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(Event)).scalar() == 1
    assert changed(engine)["ana@acme.io"] == NOW


@on_postgresql
def test_a_claim_waits_for_a_page_that_is_marking_and_then_reads_its_events(engine):
    from sqlalchemy import text

    from leadsync.sync.ingest import mark_persons_changed
    from leadsync.sync.rescore import claim_marks

    with engine.connect() as page, page.begin():
        mark_persons_changed(page, [1], NOW)  # already marked: skipped, but the page is in flight
        with engine.connect() as claimer, claimer.begin():
            claimer.execute(text("SET LOCAL lock_timeout = '200ms'"))
            with pytest.raises(OperationalError, match="lock timeout"):
                claim_marks(claimer)
    with engine.begin() as claimer:  # the page committed: the claim goes through
        claim_marks(claimer)
        assert set(claimer.execute(select(ChangedPerson.version)).scalars()) == {0}


@pytest.mark.parametrize(
    "extra_persons", [0, FEW + 1], ids=["few persons: filtered in SQL", "many: in numpy"]
)
def test_the_event_columns_of_the_store_equal_those_built_from_the_records(store_url, extra_persons):
    engine = make_engine(store_url)
    emails = ["ana@acme.io", "bo@acme.io", *(f"p{i}@acme.io" for i in range(extra_persons))]
    contacts = [contact(str(i), email) for i, email in enumerate(emails)]
    ingest_batch(engine, PullBatch("contacts", contacts=contacts), source="hs", now=NOW)
    at = NOW - timedelta(days=3, microseconds=250_001)
    per_person = [
        [
            event("e0", "0", EventType.EMAIL_SENT, at, campaign="c1"),
            event("e1", "0", EventType.EMAIL_OPEN, at + timedelta(seconds=1), campaign="c1", machine=True),
            event("e2", "0", EventType.EMAIL_BOUNCE, at, bounce_type="HARD_BOUNCE"),
        ],
        [
            event("e3", "1", EventType.PAGE_VIEW, at, url="https://example.com/pricing"),
            event("e4", "1", EventType.EMAIL_BOUNCE, at, bounce_type="soft"),
        ],
    ]
    stranger = event("e5", "nobody", EventType.PAGE_VIEW, at)  # no identity: no person
    too_late = event("e6", "1", EventType.PAGE_VIEW, NOW + timedelta(seconds=1))
    events = [*per_person[0], *per_person[1], stranger, too_late]
    ingest_batch(engine, PullBatch("events", events=events), source="hs", now=NOW)
    with engine.connect() as connection:
        ids = list(connection.execute(select(Person.id).order_by(Person.id)).scalars())
        # persons asked for in reverse: the person column is the position in the list asked for
        wanted = [ids[1], ids[0], *ids[2:]]
        got = load_event_columns(connection, wanted, NOW).sorted_by_person()  # the store's order is its own
    engine.dispose()
    want = EventColumns.from_records([per_person[1], per_person[0]])
    assert len(got) == len(want) == 5
    assert np.array_equal(got.person, want.person)
    assert np.array_equal(got.kind, want.kind)
    assert np.array_equal(got.at, want.at)  # exactly: microseconds survive the store
    assert np.array_equal(got.flags, want.flags)
    assert [got.urls[u] if u >= 0 else None for u in got.url] == [
        want.urls[u] if u >= 0 else None for u in want.url
    ]
    assert np.array_equal(got.campaign >= 0, want.campaign >= 0)


def test_given_decay_alone_a_later_rescore_keeps_the_stored_engagement_and_adds_no_history(engine):
    # a click worth 10, half-life 30 days: 9.12 four days later, still within a point of 10
    clicks = parse_model(
        'version = 1\nname = "clicks"\n[engagement]\ncurve = "linear"\nscale = 100\n'
        "[engagement.events.email_click]\npoints = 10\nhalf_life_days = 30\n",
        file="clicks.toml",
    )
    ingest_batch(
        engine,
        PullBatch("events", events=[event("e1", "1", EventType.EMAIL_CLICK, NOW)]),
        source="hs",
        now=NOW,
    )

    def stored() -> tuple[float, int]:
        with engine.connect() as connection:
            (engagement,) = connection.execute(
                select(Score.engagement)
                .join(Person, Person.id == Score.person_id)
                .where(Person.email == "ana@acme.io")
            ).one()
            return engagement, connection.execute(select(func.count()).select_from(ScoreHistory)).scalar_one()

    rescore(engine, clicks, now=NOW)
    first = stored()
    rescore(engine, clicks, now=NOW + timedelta(days=4), everyone=True)
    assert stored() == first == (10, 3)  # three persons scored once each, nothing changed since
    rescore(engine, clicks, now=NOW + timedelta(days=5), everyone=True)  # 8.91: a point away
    assert stored() == (9, 4)
