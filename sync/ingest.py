"""Ingest: write one pulled batch into the store, with its cursor, in one transaction.

Either the rows and the cursor that covers them are both committed, or neither is: a run killed at
any point resumes from the last committed cursor and, since every write is an idempotent upsert,
re-reading a page neither loses nor double counts anything (DESIGN.md "Sync state").

Concurrent writers (the three sources are pulled at once) take their row locks in one order, so they
wait for each other but never deadlock (issue 20: the first sync of 5,000 contacts on PostgreSQL
deadlocked in the changed-person upsert). The only rows two sources share are ``person`` and
``changedperson``; every transaction locks them in this order and no other:

1. ``person`` rows, by email ascending (one upsert of the page's sorted emails);
2. the marks lock, shared (``sync.store.marklock``), then the ``changedperson`` rows of persons
   not marked yet (or claimed by a re-score), by person id ascending, in ONE statement per page,
   last in the transaction (``_mark_changed``: the persons of the page's contacts and of its events
   together, ``ORDER BY person_id``; PostgreSQL inserts, and locks, in the order the SELECT gives).

The re-score claims marks under the marks lock, exclusive, and claims and clears them in person id
order too (``sync.rescore.claim_marks``, ``sync.scorebatch``). A deadlock (SQLSTATE 40P01) is therefore not expected; should one happen all
the same, the page's transaction is retried, as a backstop, and counted (``IngestCounts.deadlock_retries``,
in the pull's run record). A page whose connection was lost (the server restarted, the backend was
terminated) is retried the same way for up to ``STORE_OUTAGE_S``: what was committed stays, and the
pull resumes when the store is back.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, Insert, bindparam, exists, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_delay, wait_exponential

from leadsync.connectors.base import PullBatch
from leadsync.connectors.errors import BadRecord
from leadsync.connectors.gcpause import collector_paused
from leadsync.connectors.records import ContactRecord, EventRecord, EventType
from leadsync.sync.identity import ATTRIBUTE_FIELDS, checked_email
from leadsync.sync.observed import ECHO_STATE_FIELDS, content_digest, is_echo
from leadsync.sync.store import upsert
from leadsync.sync.store.idlists import bound_ids, in_ids
from leadsync.sync.store.marklock import MarkedContacts, claim_count, lock_marks
from leadsync.sync.store.models import (
    Attributes,
    ChangedPerson,
    Event,
    Identity,
    Person,
    Quarantine,
    SyncCursor,
    WritebackState,
)
from leadsync.sync.store.upsert import insert_new_columns, upsert_columns

__all__ = ["MUTABLE_TYPES", "STORE_OUTAGE_S", "IngestCounts", "event_columns", "ingest_batch", "jsonable"]

log = logging.getLogger("leadsync.ingest")

STORE_OUTAGE_S = 120.0  # how long a page waits for a lost store connection to come back
DEADLOCK_ATTEMPTS = 5  # tries of one page that keeps deadlocking (the backstop; see above)


@dataclass
class IngestCounts:
    """What one batch stored. ``changed``: contacts whose scoring inputs changed (or new ones);
    ``echoes``: the remote ids of contacts whose only change was leadsync's own write
    (``sync.observed``), which the pipeline passes on to the connector (no follow-up reads)."""

    contacts: int = 0
    events: int = 0
    quarantined: int = 0
    changed: int = 0
    echoes: list[str] = dataclasses.field(default_factory=list)
    deadlock_retries: int = 0  # the page's transaction retried after a deadlock (should stay 0)
    reconnects: int = 0  # the page's transaction retried after the store connection was lost

    def add(self, other: IngestCounts) -> None:
        self.contacts += other.contacts
        self.events += other.events
        self.quarantined += other.quarantined
        self.changed += other.changed
        self.echoes.extend(other.echoes)
        self.deadlock_retries += other.deadlock_retries
        self.reconnects += other.reconnects


_PLAIN = (str, int, float, bool, type(None))


def jsonable(value: Any) -> Any:
    """A JSON-safe copy of a record (dataclasses, datetimes and enums become plain values)."""
    if type(value) is dict and all(type(v) in _PLAIN and type(k) is str for k, v in value.items()):
        return dict(value)  # the usual event properties: already plain, no round trip through JSON
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    try:  # orjson: the same values as json's round trip (datetimes through str too), several times faster
        return orjson.loads(
            orjson.dumps(
                value,
                default=str,
                option=orjson.OPT_NON_STR_KEYS
                | orjson.OPT_PASSTHROUGH_DATETIME
                | orjson.OPT_PASSTHROUGH_DATACLASS
                | orjson.OPT_PASSTHROUGH_SUBCLASS,
            )
        )
    except (TypeError, ValueError):  # integers beyond 64 bits, NaN, and the like
        return json.loads(json.dumps(value, default=str, ensure_ascii=False))


def _chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _is_deadlock(exc: BaseException) -> bool:
    # PostgreSQL: 40P01 deadlock_detected, 40001 serialization_failure (appendix A "Error codes")
    return isinstance(exc, DBAPIError) and getattr(exc.orig, "sqlstate", None) in ("40P01", "40001")


def _is_lost_connection(exc: BaseException) -> bool:
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


def _retry_page(exc: BaseException) -> bool:
    return _is_deadlock(exc) or _is_lost_connection(exc)


def _stop_page(state: RetryCallState) -> bool:
    exc = state.outcome.exception() if state.outcome else None
    if exc is not None and _is_deadlock(exc):
        return state.attempt_number >= DEADLOCK_ATTEMPTS
    return stop_after_delay(STORE_OUTAGE_S)(state)


def ingest_batch(
    engine: Engine,
    batch: PullBatch,
    *,
    source: str,
    now: datetime,
    marked: MarkedContacts | None = None,
) -> IngestCounts:
    """Store ``batch`` of ``source`` and move its cursor, atomically; a page that deadlocked or
    lost its connection is retried whole (see the module's docstring), and counted.

    ``marked``: the contacts whose persons earlier pages of this pull marked for re-scoring, which
    this page need not mark again while no re-score has claimed marks since; it is updated once
    the page is committed (``sync.store.marklock.MarkedContacts``)."""
    deadlocks = reconnects = 0

    def before_sleep(state: RetryCallState) -> None:
        nonlocal deadlocks, reconnects
        exc = state.outcome.exception() if state.outcome else None
        if exc is not None and _is_deadlock(exc):
            deadlocks += 1
            log.warning(
                "%s: a page of %s deadlocked (retried as a backstop): %s", source, batch.stream, exc.orig
            )  # type: ignore[union-attr]
        else:
            reconnects += 1
            log.warning(
                "%s: lost the store connection while writing a page of %s; retrying in %.1f s",
                source,
                batch.stream,
                state.next_action.sleep if state.next_action else 0.0,
            )

    with collector_paused():  # a page builds thousands of short-lived containers (connectors.gcpause)
        for attempt in Retrying(
            retry=retry_if_exception(_retry_page),
            stop=_stop_page,
            wait=wait_exponential(multiplier=0.05, max=5.0),
            before_sleep=before_sleep,
            reraise=True,
        ):
            with attempt:
                counts, claims, named = _ingest_once(engine, batch, source=source, now=now, marked=marked)
    if marked is not None:  # committed: those marks are there until the next claim
        marked.remember(claims, named)
    counts.deadlock_retries, counts.reconnects = deadlocks, reconnects
    return counts


def _ingest_once(
    engine: Engine, batch: PullBatch, *, source: str, now: datetime, marked: MarkedContacts | None
) -> tuple[IngestCounts, int | None, set[str]]:
    """The page in one transaction; returns its counts, the claim count its marks were made at and
    the contacts whose persons are marked (committed when this returns)."""
    with engine.begin() as connection:
        counts = IngestCounts()
        bad = list(batch.bad)
        good_contacts = _valid_contacts(batch.contacts, bad)
        counts.contacts, counts.changed, counts.echoes, persons, changed_contacts = _write_contacts(
            connection, source, good_contacts, now
        )
        counts.events, contacts = _write_events(connection, source, batch.events, now)
        counts.quarantined = quarantine(connection, source, batch.stream, bad, now)
        # last: the shared change marks are locked once, in person order, at the end (module docstring)
        claims = _mark_changed(connection, source, persons, contacts, now, marked)
        if batch.cursor is not None:
            upsert(
                connection,
                SyncCursor,
                [{"source": source, "stream": batch.stream, "value": batch.cursor, "updated_at": now}],
                key=["source", "stream"],
                update=["value", "updated_at"],
            )
        return counts, claims, contacts | changed_contacts


def quarantine(
    connection: Connection, source: str, stream: str, bad: Sequence[BadRecord], now: datetime
) -> int:
    """Keep bad records for inspection. A record already in quarantine (same source, stream and
    remote id, unresolved) is updated, not duplicated: re-reads and retries count attempts."""
    if not bad:
        return 0
    table = Quarantine.__table__  # type: ignore[attr-defined]
    rows = [
        {
            "source": source,
            "stream": stream,
            "remote_id": record.remote_id,
            "reason": record.reason,
            "payload": jsonable(record.record),
            "attempts": 1,
            "created_at": now,
            "last_seen_at": now,
            "resolved_at": None,
        }
        for record in bad
    ]
    keyed = [row for row in rows if row["remote_id"] is not None]
    remote_ids = sorted({row["remote_id"] for row in keyed})
    known: dict[str, int] = {
        remote_id: qid
        for qid, remote_id in connection.execute(
            select(table.c.id, table.c.remote_id).where(
                table.c.source == source,
                table.c.stream == stream,
                table.c.resolved_at.is_(None),
                in_ids(table.c.remote_id, connection.dialect.name, remote_ids),
            )
        )
    }
    fresh = [row for row in rows if row["remote_id"] is None or row["remote_id"] not in known]
    for row in rows:
        qid = known.get(row["remote_id"]) if row["remote_id"] is not None else None
        if qid is not None:
            connection.execute(
                update(table)
                .where(table.c.id == qid)
                .values(
                    reason=row["reason"],
                    payload=row["payload"],
                    attempts=table.c.attempts + 1,
                    last_seen_at=now,
                )
            )
    if fresh:
        connection.execute(table.insert(), fresh)
    return len(bad)


def _valid_contacts(
    contacts: Sequence[ContactRecord], bad: list[BadRecord]
) -> list[tuple[str, ContactRecord]]:
    """Contacts with a usable email (last copy of each remote id wins); the rest become bad records."""
    by_remote: dict[str, tuple[str, ContactRecord]] = {}
    for contact in contacts:
        email, reason = checked_email(contact.email)
        if email is None:
            bad.append(BadRecord(reason or "invalid email", record=contact, remote_id=contact.remote_id))
            continue
        by_remote[contact.remote_id] = (email, contact)
    return list(by_remote.values())


def _write_contacts(
    connection: Connection, source: str, contacts: list[tuple[str, ContactRecord]], now: datetime
) -> tuple[int, int, list[str], set[int], set[str]]:
    """Store the contacts; returns (stored, changed, echoes, persons to mark, the remote ids of the
    changed contacts, whose persons are among those to mark). Only contacts whose
    scoring inputs changed (``sync.observed.content_digest``) mark their person for re-scoring;
    every one is stored, with what the platform holds in leadsync's own fields (``sync.observed``)."""
    if not contacts:
        return 0, 0, [], set(), set()
    dialect = connection.dialect.name
    remote_ids = [contact.remote_id for _, contact in contacts]
    raws = {contact.remote_id: jsonable(contact.raw) for _, contact in contacts}
    digests = {
        contact.remote_id: content_digest(email, contact, raws[contact.remote_id])
        for email, contact in contacts
    }
    known: dict[str, tuple[str | None, datetime | None]] = {
        remote_id: (digest, observed_at)
        for remote_id, digest, observed_at in connection.execute(
            select(Attributes.remote_id, Attributes.digest, Attributes.observed_at).where(
                Attributes.source == source, in_ids(Attributes.remote_id, dialect, remote_ids)
            )
        )
    }
    changed = [(e, c) for e, c in contacts if known.get(c.remote_id, (None, None))[0] != digests[c.remote_id]]
    same = [(e, c) for e, c in contacts if known.get(c.remote_id, (None, None))[0] == digests[c.remote_id]]
    emails = sorted({email for email, _ in contacts})
    fresh_emails = sorted({email for email, _ in changed})
    if fresh_emails:
        upsert(
            connection,
            Person,
            [{"email": email, "created_at": now, "updated_at": now} for email in fresh_emails],
            key=["email"],
            update=["updated_at"],
        )
    person_ids: dict[str, int] = {
        email: pid
        for email, pid in connection.execute(
            select(Person.email, Person.id).where(in_ids(Person.email, dialect, emails))
        )
    }
    # An identity whose email changed leaves its old person: that person must be re-scored too.
    changed_ids = [contact.remote_id for _, contact in changed]
    previous = {
        pid
        for (pid,) in connection.execute(
            select(Identity.person_id).where(
                Identity.source == source, in_ids(Identity.remote_id, dialect, changed_ids)
            )
        )
        if pid is not None
    }
    stale = previous - set(person_ids.values())
    if stale:
        connection.execute(
            update(Person).where(in_ids(Person.id, dialect, sorted(stale))).values(updated_at=now)
        )
    marked = {*(person_ids[email] for email in fresh_emails), *stale}
    upsert(
        connection,
        Identity,
        [
            {
                "source": source,
                "platform": contact.platform.value,
                "remote_id": contact.remote_id,
                "email": email,
                "person_id": person_ids[email],
                "seen_at": now,
            }
            for email, contact in contacts
        ],
        key=["source", "remote_id"],
        update=["platform", "email", "person_id", "seen_at"],
    )
    attribute_columns = [*ATTRIBUTE_FIELDS, "created_at", "updated_at", "raw", "digest"]
    for read_owned in (True, False):  # a pull that did not read leadsync's fields keeps the last reading
        rows = [
            {
                "source": source,
                "remote_id": contact.remote_id,
                **{name: getattr(contact, name) for name in ATTRIBUTE_FIELDS},
                "created_at": contact.created_at,
                "updated_at": contact.updated_at,
                "raw": raws[contact.remote_id],
                "digest": digests[contact.remote_id],
                **({"observed": contact.owned, "observed_at": now} if read_owned else {}),
            }
            for _, contact in contacts
            if (contact.owned is not None) == read_owned
        ]
        if rows:
            upsert(
                connection,
                Attributes,
                rows,
                key=["source", "remote_id"],
                update=[*attribute_columns, *(("observed", "observed_at") if read_owned else ())],
            )
    echoes = _echoes(connection, source, same, known)
    return len(contacts), len(changed), echoes, marked, set(changed_ids)


def _echoes(
    connection: Connection,
    source: str,
    same: list[tuple[str, ContactRecord]],
    known: dict[str, tuple[str | None, datetime | None]],
) -> list[str]:
    """Among re-read contacts whose scoring inputs did not change, the echoes of leadsync's writes."""
    ids = [contact.remote_id for _, contact in same if contact.owned is not None]
    if not ids:
        return []
    pushed: dict[str, dict[str, tuple[str | None, datetime]]] = {}
    for remote_id, name, value, pushed_at in connection.execute(
        select(
            WritebackState.remote_id, WritebackState.field, WritebackState.value, WritebackState.pushed_at
        ).where(
            WritebackState.source == source,
            WritebackState.field.in_(ECHO_STATE_FIELDS),
            in_ids(WritebackState.remote_id, connection.dialect.name, ids),
        )
    ):
        pushed.setdefault(remote_id, {})[name] = (value, pushed_at)
    return [
        contact.remote_id
        for _, contact in same
        if is_echo(contact.owned, pushed.get(contact.remote_id, {}), known[contact.remote_id][1])
    ]


def event_columns(source: str, events: Sequence[EventRecord]) -> dict[str, list[Any]]:
    """``events`` as ``Event`` columns: ``url``, ``campaign`` and ``machine`` lifted out of the
    properties into their own columns, the rest kept as JSON. Built a column at a time (the ingest's
    hot path: no dict per row)."""
    urls: list[str | None] = []
    campaigns: list[str | None] = []
    machines: list[bool] = []
    properties: list[dict[str, Any]] = []
    for event in events:
        rest = dict(event.properties)
        urls.append(rest.pop("url", None))
        campaign = rest.pop("campaign", None)
        campaigns.append(None if campaign is None else str(campaign))
        machines.append(bool(rest.pop("machine", False)))
        # ``rest`` is this event's own copy: kept as it is when already plain (jsonable would copy it)
        plain = all(type(v) in _PLAIN and type(k) is str for k, v in rest.items())
        properties.append(rest if plain else jsonable(rest))
    return {
        "source": [source] * len(events),
        "platform": [event.platform.value for event in events],
        "source_id": [event.source_id for event in events],
        "type": [event.type.value for event in events],
        "occurred_at": [event.occurred_at for event in events],
        "remote_contact_id": [event.remote_contact_id for event in events],
        "url": urls,
        "campaign": campaigns,
        "machine": machines,
        "properties": properties,
    }


#: Events whose record can change after it was first read: a meeting's outcome or time, a call's
#: status, a cart's last update. A re-read of one of these replaces the stored row; every other
#: event is written once and a re-read of it changes nothing (the hot path, no UPDATE).
MUTABLE_TYPES = frozenset({EventType.MEETING_BOOKED, EventType.CALL, EventType.CART_ABANDONED})
_MUTABLE_COLUMNS = ("type", "occurred_at", "url", "campaign", "machine", "properties")


def _write_events(
    connection: Connection, source: str, events: Sequence[EventRecord], now: datetime
) -> tuple[int, set[str]]:
    """Store the events; returns (stored, the contacts to mark): only contacts with an event new to
    the store are marked for re-scoring (a re-read event, from a look-back window or a contact
    re-read for an echo, is no news)."""
    if not events:
        return 0, set()
    changing = [event for event in events if event.type in MUTABLE_TYPES]
    fixed = [event for event in events if event.type not in MUTABLE_TYPES] if changing else events
    contacts: set[str] = set()
    if fixed and connection.dialect.name == "postgresql":
        # RETURNING names the contacts of the rows actually inserted: no max(id) before, one round trip
        contacts = set(
            insert_new_columns(
                connection,
                Event,
                event_columns(source, fixed),
                key=["source", "source_id"],
                returning="remote_contact_id",
            )
        )
    elif fixed:
        table = Event.__table__  # type: ignore[attr-defined]
        before = connection.execute(select(func.max(table.c.id))).scalar() or 0
        inserted = insert_new_columns(
            connection, Event, event_columns(source, fixed), key=["source", "source_id"]
        )
        if inserted == len(fixed):
            contacts = {event.remote_contact_id for event in fixed}
        elif inserted:  # some were known (or the driver cannot tell): the new rows are past ``before``
            contacts = set(
                connection.execute(
                    select(table.c.remote_contact_id)
                    .where(table.c.id > before, table.c.source == source)
                    .distinct()
                ).scalars()
            )
    if changing:  # read again only once they changed on the platform (their streams' cursors)
        upsert_columns(
            connection,
            Event,
            event_columns(source, changing),
            key=["source", "source_id"],
            update=list(_MUTABLE_COLUMNS),
        )
        contacts.update(event.remote_contact_id for event in changing)
    return len(events), contacts


def _mark_changed(
    connection: Connection,
    source: str,
    persons: set[int],
    contacts: set[str],
    now: datetime,
    marked: MarkedContacts | None = None,
) -> int | None:
    """Queue ``persons`` and the persons of ``source``'s ``contacts`` for re-scoring, as changed at
    ``now``: one statement for both, in person id order (see the module's docstring). Lists longer
    than ``_MARK_CHUNK`` are first resolved to person ids, then marked in ascending chunks.
    Contacts in ``marked`` are skipped while no claim was made since (``MarkedContacts``). Returns
    the claim count read under the marks lock (None without ``marked``, or nothing to mark)."""
    if not persons and not contacts:
        return None
    lock_marks(connection, claim=False)
    claims = None
    if marked is not None:
        claims = claim_count(connection)
        contacts = marked.unmarked(claims, contacts)
        if not persons and not contacts:
            return claims
    dialect = connection.dialect.name
    if len(persons) <= _MARK_CHUNK and len(contacts) <= _MARK_CHUNK:
        connection.execute(
            _mark_statement(dialect),
            {
                "ids": bound_ids(dialect, sorted(persons)),
                "contacts": bound_ids(dialect, sorted(contacts)),
                "source": source,
                "now": now,
            },
        )
        return claims
    persons = set(persons)
    for part in _chunks(sorted(contacts), _MARK_CHUNK):
        persons.update(
            connection.execute(
                select(Identity.person_id).where(
                    Identity.source == source,
                    in_ids(Identity.remote_id, dialect, part),
                    Identity.person_id.is_not(None),
                )
            ).scalars()
        )
    _mark_persons(connection, sorted(persons), now)
    return claims


def mark_persons_changed(connection: Connection, person_ids: Sequence[int], now: datetime) -> None:
    """Queue ``person_ids`` for re-scoring, as changed at ``now`` (see ``_mark_statement``), in
    ascending id order across chunks (each statement locks its rows in that order)."""
    lock_marks(connection, claim=False)
    _mark_persons(connection, person_ids, now)


def _mark_persons(connection: Connection, person_ids: Sequence[int], now: datetime) -> None:
    """``mark_persons_changed`` with the marks lock held already."""
    dialect = connection.dialect.name
    for part in _chunks(sorted(person_ids), _MARK_CHUNK):
        connection.execute(
            _mark_statement(dialect),
            {"ids": bound_ids(dialect, part), "contacts": bound_ids(dialect, []), "source": "", "now": now},
        )


_MARK_CHUNK = 5_000  # ids bound per statement


@lru_cache(maxsize=8)
def _mark_statement(dialect: str) -> Insert:
    """One INSERT ... SELECT ... ORDER BY person id ... ON CONFLICT marking the persons of the
    bound ids (those that exist); built once per dialect.

    A person already marked and not claimed is left alone: not locked, not rewritten (the pages of
    one pull mark the same persons over and over; ``sync.store.marklock`` says why skipping them is
    safe). A mark a running re-score has claimed (``version`` 0, see ``sync.rescore.claim_marks``)
    is moved off 0 and stamped ``now``, so that re-score leaves it for the next run. So
    ``changed_at`` is when the person's first change since their last claimed score was marked.
    """
    if dialect == "sqlite":
        insert = sqlite.insert
    elif dialect == "postgresql":
        insert = postgresql.insert
    else:  # pragma: no cover - the two dialects leadsync supports
        raise NotImplementedError(
            f"marking changed persons is implemented for SQLite and PostgreSQL, not {dialect}"
        )
    table = ChangedPerson.__table__  # type: ignore[attr-defined]
    now = bindparam("now", type_=table.c.changed_at.type)
    # ORDER BY: the rows are inserted, and conflicting rows locked, in person id order (the lock
    # order every writer keeps); the ids are distinct already (a set), so no row is proposed twice
    # ("ON CONFLICT DO UPDATE command cannot affect row a second time")
    # the persons named by id, and those of the source's contacts named by remote id (UNION: each once)
    named = select(Person.id.label("pid")).where(in_ids(Person.id, dialect))
    of_contacts = select(Identity.person_id.label("pid")).where(
        Identity.source == bindparam("source"),
        in_ids(Identity.remote_id, dialect, name="contacts"),
        Identity.person_id.is_not(None),
    )
    marked = named.union(of_contacts).subquery()
    pending = exists().where(table.c.person_id == marked.c.pid, table.c.version != 0)
    people = select(marked.c.pid, now).where(~pending).order_by(marked.c.pid)
    statement = insert(table).from_select(["person_id", "changed_at"], people)
    # a conflict here is a claimed mark, or one another page made since this statement's snapshot
    return statement.on_conflict_do_update(
        index_elements=["person_id"],
        set_={"changed_at": statement.excluded.changed_at, "version": table.c.version + 1},
        where=table.c.version == 0,
    )
