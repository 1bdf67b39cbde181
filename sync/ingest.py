"""Ingest: write one pulled batch into the store, with its cursor, in one transaction.

Either the rows and the cursor that covers them are both committed, or neither is: a run killed at
any point resumes from the last committed cursor and, since every write is an idempotent upsert,
re-reading a page neither loses nor double counts anything (DESIGN.md "Sync state").
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, Insert, bindparam, case, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from leadsync.connectors.base import PullBatch
from leadsync.connectors.errors import BadRecord
from leadsync.connectors.records import ContactRecord, EventRecord, EventType
from leadsync.sync.identity import ATTRIBUTE_FIELDS, checked_email
from leadsync.sync.observed import ECHO_STATE_FIELDS, content_digest, is_echo
from leadsync.sync.store import upsert
from leadsync.sync.store.idlists import bound_ids, in_ids
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

__all__ = ["MUTABLE_TYPES", "IngestCounts", "event_columns", "ingest_batch", "jsonable"]


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

    def add(self, other: IngestCounts) -> None:
        self.contacts += other.contacts
        self.events += other.events
        self.quarantined += other.quarantined
        self.changed += other.changed
        self.echoes.extend(other.echoes)


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


def ingest_batch(engine: Engine, batch: PullBatch, *, source: str, now: datetime) -> IngestCounts:
    """Store ``batch`` of ``source`` and move its cursor, atomically."""
    with engine.begin() as connection:
        counts = IngestCounts()
        bad = list(batch.bad)
        good_contacts = _valid_contacts(batch.contacts, bad)
        counts.contacts, counts.changed, counts.echoes = _write_contacts(
            connection, source, good_contacts, now
        )
        counts.events = _write_events(connection, source, batch.events, now)
        counts.quarantined = quarantine(connection, source, batch.stream, bad, now)
        if batch.cursor is not None:
            upsert(
                connection,
                SyncCursor,
                [{"source": source, "stream": batch.stream, "value": batch.cursor, "updated_at": now}],
                key=["source", "stream"],
                update=["value", "updated_at"],
            )
        return counts


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
) -> tuple[int, int, list[str]]:
    """Store the contacts; returns (stored, changed, echoes). Only contacts whose scoring inputs
    changed (``sync.observed.content_digest``) mark their person for re-scoring; every one is
    stored, with what the platform holds in leadsync's own fields (``sync.observed``)."""
    if not contacts:
        return 0, 0, []
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
    mark_persons_changed(connection, [*{*(person_ids[email] for email in fresh_emails), *stale}], now)
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
    return len(contacts), len(changed), echoes


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


def _write_events(connection: Connection, source: str, events: Sequence[EventRecord], now: datetime) -> int:
    """Store the events; only contacts with an event new to the store are marked for re-scoring (a
    re-read event, from a look-back window or a contact re-read for an echo, is no news)."""
    if not events:
        return 0
    changing = [event for event in events if event.type in MUTABLE_TYPES]
    fixed = [event for event in events if event.type not in MUTABLE_TYPES] if changing else events
    contacts: set[str] = set()
    if fixed:
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
    mark_contacts_changed(connection, source, [*contacts], now)
    return len(events)


def mark_persons_changed(connection: Connection, person_ids: Sequence[int], now: datetime) -> None:
    """Queue ``person_ids`` for re-scoring, as changed at ``now`` (see ``_mark_statement``)."""
    dialect = connection.dialect.name
    for part in _chunks(sorted(person_ids), _MARK_CHUNK):
        connection.execute(_mark_statement(dialect, "persons"), {"ids": bound_ids(dialect, part), "now": now})


def mark_contacts_changed(
    connection: Connection, source: str, remote_ids: Sequence[str], now: datetime
) -> None:
    """Queue the persons of ``source``'s contacts ``remote_ids`` for re-scoring, as changed at ``now``."""
    dialect = connection.dialect.name
    for part in _chunks(sorted(remote_ids), _MARK_CHUNK):
        connection.execute(
            _mark_statement(dialect, "contacts"),
            {"ids": bound_ids(dialect, part), "source": source, "now": now},
        )


_MARK_CHUNK = 5_000  # ids bound per statement


@lru_cache(maxsize=8)
def _mark_statement(dialect: str, by: str) -> Insert:
    """One INSERT ... SELECT ... ON CONFLICT marking the persons selected ``by`` their ids
    ("persons") or by their contacts' remote ids in one source ("contacts"); built once per dialect.

    The ids never travel to Python. A mark a running re-score has claimed (``version`` 0, see
    ``sync.rescore.claim_marks``) is moved off 0, so that re-score leaves it for the next run.
    Otherwise a person already marked is rewritten only when ``now`` is later than their mark
    (``changed_at`` only moves forward, so a page stamped earlier, another source's pull, cannot
    hide a later change): the pages of one pull mark the same persons over and over, and rewriting
    their rows every time cut ingest from about 51,000 to 31,000 events/s.
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
    if by == "persons":
        people = select(Person.id).where(in_ids(Person.id, dialect))
    else:
        people = select(Identity.person_id).where(
            Identity.source == bindparam("source"),
            in_ids(Identity.remote_id, dialect),
            Identity.person_id.is_not(None),
        )
    # DISTINCT: two identities of one person in a page would otherwise propose the same row twice,
    # which PostgreSQL refuses ("ON CONFLICT DO UPDATE command cannot affect row a second time")
    statement = insert(table).from_select(["person_id", "changed_at"], people.add_columns(now).distinct())
    later = statement.excluded.changed_at
    return statement.on_conflict_do_update(
        index_elements=["person_id"],
        set_={
            "changed_at": case((table.c.changed_at < later, later), else_=table.c.changed_at),
            "version": table.c.version + 1,
        },
        where=or_(table.c.version == 0, table.c.changed_at < later),
    )
