"""Read, score and write one batch of persons: the work one process does for a re-score, alone or as
one of the re-score's workers (``sync.rescore`` decides who is scored; ``sync.rescore_workers`` shares
a large run between processes).

Events are read in one scan for all the persons of a run, straight into numpy columns (the event
table has no index on the contact: see ``Event``), then scored and written a batch of persons at a
time, one transaction per batch (``score_chunk``).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import compress, repeat
from operator import itemgetter
from typing import Any

import numpy as np
from sqlalchemy import (
    Connection,
    Engine,
    Integer,
    Select,
    String,
    and_,
    case,
    delete,
    select,
    type_coerce,
)

from leadsync.config.scoring_model import ScoringModel
from leadsync.connectors.gcpause import collector_paused
from leadsync.connectors.records import EventType, Profile
from leadsync.scoring import EVENT_TYPES, EventColumns, Previous, score_many
from leadsync.scoring.columns import HARD_BOUNCE, MACHINE, OUTCOME_TYPES, is_hard_bounce, outcome_flag
from leadsync.sync.identity import ATTRIBUTE_FIELDS, IdentityAttributes, merge_profile
from leadsync.sync.store import upsert
from leadsync.sync.store.idlists import in_ids
from leadsync.sync.store.models import Attributes, ChangedPerson, Event, Identity, Person, Score, ScoreHistory
from leadsync.sync.store.upsert import insert_many

__all__ = [
    "BATCH",
    "RescoreCounts",
    "ScoringJob",
    "batch_bounds",
    "contact_positions",
    "load_event_columns",
    "load_profiles",
    "scan_events",
    "score_chunk",
    "score_rows",
]

BATCH = 5_000  # persons per scoring batch: bounds memory, one transaction each
FEW = 5_000  # persons whose rows are filtered in SQL (``in_ids``); for more, one scan filtered in Python
_PART = 20_000  # event rows fetched and converted at a time (each process holds one part's rows)


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _stored_time(value: str | datetime | None) -> datetime | None:
    """A stored time read without SQLAlchemy's processing: SQLite's UTC text (no offset), or the
    datetime other drivers (PostgreSQL) return."""
    return _utc(datetime.fromisoformat(value) if isinstance(value, str) else value)


@dataclass
class RescoreCounts:
    scored: int = 0
    changed: int = 0
    # the worker processes' peak RSS added up, when the re-score had any (for bench/local.py)
    worker_peak_rss_mb: float = 0.0

    def add(self, other: RescoreCounts) -> None:
        self.scored += other.scored
        self.changed += other.changed


def batch_bounds(count: int) -> Iterator[tuple[int, int]]:
    """``(start, stop)`` of each batch of ``BATCH`` persons out of ``count``."""
    for start in range(0, count, BATCH):
        yield start, min(start + BATCH, count)


@dataclass(frozen=True)
class ScoringJob:
    """What every batch of one re-score is scored with (sent to worker processes as is)."""

    model: ScoringModel
    model_fp: str
    now: datetime
    precedence: tuple[str, ...] = ()


@collector_paused()
def score_chunk(engine: Engine, job: ScoringJob, chunk: Sequence[int], events: EventColumns) -> RescoreCounts:
    """Score the persons ``chunk`` (``events``: theirs, person ``i`` = ``chunk[i]``) and write their
    scores, history and cleared change marks (those still claimed) in one transaction."""
    with engine.connect() as connection:
        profiles = load_profiles(connection, chunk, job.precedence)
        old = _stored_scores(connection, chunk)
    results = score_many(
        profiles,
        events,
        job.model,
        now=job.now,
        previous=[
            Previous(old[pid][_LIFECYCLE], old[pid][_GRADE], old[pid][_ENGAGEMENT]) if pid in old else None
            for pid in chunk
        ],
    )
    rows = score_rows(chunk, results, job.model_fp, job.now)
    history = [
        {"person_id": row["person_id"]} | {k: row[k] for k in _HISTORY_FIELDS}
        for row in rows
        if row["person_id"] not in old or old[row["person_id"]] != tuple(row[k] for k in _COMPARED)
    ]
    with engine.begin() as connection:
        upsert(connection, Score, rows, key=["person_id"], update=[k for k in rows[0] if k != "person_id"])
        insert_many(connection, ScoreHistory, history)
        # only marks no page has taken back since claim_marks, locked in person id order (the order
        # the ingest marks them in: sync.ingest's docstring) before they are deleted
        marks = (
            select(ChangedPerson.person_id)
            .where(
                in_ids(ChangedPerson.person_id, connection.dialect.name, chunk), ChangedPerson.version == 0
            )
            .order_by(ChangedPerson.person_id)
            .with_for_update()
        )
        connection.execute(delete(ChangedPerson).where(ChangedPerson.person_id.in_(marks)))
    return RescoreCounts(scored=len(chunk), changed=len(history))


def _of_persons(
    connection: Connection, query: Select[Any], column: Any, person_ids: Sequence[int]
) -> Select[Any]:
    """``query`` for ``person_ids`` only when they are few; for many, one plain scan is cheaper than
    looking each up, and the caller filters."""
    return (
        query.where(in_ids(column, connection.dialect.name, person_ids)) if len(person_ids) <= FEW else query
    )


def _driver_rows(connection: Connection, query: Select[Any]) -> list[Any]:
    """``query``'s rows as the driver returns them: no ``Row`` per row and no result processing,
    for queries of text and numbers only (a time is read as text: ``_stored_time``)."""
    result = connection.execute(query)
    try:
        return result.cursor.fetchall()  # type: ignore[union-attr]
    finally:
        result.close()


def _stored_scores(connection: Connection, person_ids: Sequence[int]) -> dict[int, tuple[Any, ...]]:
    """The compared fields (``_COMPARED``) of the stored scores of ``person_ids``."""
    wanted = set(person_ids)
    query = select(Score.person_id, *(getattr(Score, name) for name in _COMPARED))
    rows = _driver_rows(connection, _of_persons(connection, query, Score.person_id, person_ids))
    return {pid: tuple(values) for pid, *values in rows if pid in wanted}


def load_profiles(
    connection: Connection, person_ids: Sequence[int], precedence: Sequence[str] = ()
) -> list[Profile]:
    wanted = set(person_ids)
    emails = {
        pid: email
        for pid, email in _driver_rows(
            connection, _of_persons(connection, select(Person.id, Person.email), Person.id, person_ids)
        )
        if pid in wanted
    }
    columns = [getattr(Attributes, name) for name in ATTRIBUTE_FIELDS]
    query = select(
        Identity.person_id,
        Identity.source,
        Identity.platform,
        type_coerce(Attributes.updated_at, String),  # parsed by _stored_time: SQLAlchemy's parse is slower
        *columns,
    ).join(Attributes, and_(Attributes.source == Identity.source, Attributes.remote_id == Identity.remote_id))
    rows_of: dict[int, list[Any]] = defaultdict(list)
    for row in _driver_rows(connection, _of_persons(connection, query, Identity.person_id, person_ids)):
        if row[0] in wanted:
            rows_of[row[0]].append(row)

    def identities(rows: list[Any]) -> list[IdentityAttributes]:
        # merge_profile ranks by time only among several identities: most persons have one, and
        # parsing their times was a tenth of a full re-score's profile load
        ranked = len(rows) > 1
        return [
            IdentityAttributes(
                source,
                platform,
                _stored_time(updated_at) if ranked else None,
                dict(zip(ATTRIBUTE_FIELDS, values, strict=True)),
            )
            for _, source, platform, updated_at, *values in rows
        ]

    return [
        merge_profile(emails[pid], identities(rows_of.get(pid, [])), precedence=precedence)
        for pid in person_ids
    ]


_KIND_CODES = {kind.value: code for code, kind in enumerate(EVENT_TYPES)}


_BOUNCE = EventType.EMAIL_BOUNCE.value


_BOUNCE_CODE = EVENT_TYPES.index(EventType.EMAIL_BOUNCE)
_OUTCOMES = tuple(kind.value for kind in OUTCOME_TYPES)
_OUTCOME_CODES = np.array(sorted(EVENT_TYPES.index(kind) for kind in OUTCOME_TYPES), dtype=np.int8)


def load_event_columns(connection: Connection, person_ids: Sequence[int], now: datetime) -> EventColumns:
    """The events up to ``now`` of ``person_ids`` (``person`` = position in ``person_ids``).

    One scan of the event table per source, its rows read from the driver's cursor straight into
    numpy columns: type codes come from SQL, SQLite's time text is parsed by numpy in one call, and
    properties are read for bounces, meetings and calls only, the kinds whose scoring looks at them
    (hard or soft; the outcome). Contacts are
    matched to persons in a dict, not joined in SQL: the join cost as much as reading the rows.
    """
    contacts = contact_positions(connection, person_ids)
    columns, _ = scan_events(connection, contacts, now, filter_in_sql=len(person_ids) <= FEW)
    return columns


@collector_paused()
def contact_positions(connection: Connection, person_ids: Sequence[int]) -> dict[str, dict[str, int]]:
    """source → remote contact id → position in ``person_ids`` of the contact's person."""
    position = {pid: i for i, pid in enumerate(person_ids)}
    contacts: dict[str, dict[str, int]] = defaultdict(dict)
    query = select(Identity.source, Identity.remote_id, Identity.person_id).where(
        Identity.person_id.is_not(None)
    )
    for source, remote_id, pid in _driver_rows(
        connection, _of_persons(connection, query, Identity.person_id, person_ids)
    ):
        if pid in position:
            contacts[source][remote_id] = position[pid]
    return dict(contacts)


@collector_paused()
def scan_events(
    connection: Connection,
    contacts: Mapping[str, Mapping[str, int]],
    now: datetime,
    *,
    filter_in_sql: bool = False,
    ids: tuple[int, int] | None = None,
) -> tuple[EventColumns, tuple[str, ...]]:
    """The events up to ``now`` of the ``contacts`` (see ``contact_positions``) and the campaign
    names their ``campaign`` codes stand for; only event ids in ``ids`` (inclusive) when given, the
    part of the table one worker process reads."""
    campaigns, urls = _Codes(), _Codes()
    parts: list[tuple[np.ndarray, ...]] = []
    until = now.timestamp()
    for source, of_source in sorted(contacts.items()):
        # type as text and no time filter: mapping a type in Python and comparing times in numpy
        # cost less than SQLite's CASE of 17 comparisons and a text comparison per row
        query = select(
            Event.remote_contact_id,
            Event.type,
            type_coerce(Event.occurred_at, String),
            Event.campaign,
            Event.url,
            type_coerce(Event.machine, Integer),
            case((Event.type.in_((_BOUNCE, *_OUTCOMES)), type_coerce(Event.properties, String)), else_=None),
            # ``source || ''``: a plain ``source = ?`` made SQLite walk the (source, source_id) index
            # and fetch each row by id, in random order, instead of scanning the table (or the id range)
        ).where(Event.source.concat("") == source)
        if ids is not None:
            query = query.where(Event.id.between(*ids))
        if filter_in_sql:
            query = query.where(in_ids(Event.remote_contact_id, connection.dialect.name, sorted(of_source)))
        result = connection.execute(query)
        try:
            # The DBAPI cursor: plain tuples, no Row per event. Not with ``stream_results``, whose
            # buffered strategy would already have taken the first row from it.
            cursor = result.cursor
            while rows := cursor.fetchmany(_PART):
                part = _event_arrays(rows, of_source, campaigns, urls, until)
                if part is not None:
                    parts.append(part)
        finally:
            result.close()
    if not parts:
        return EventColumns.empty(), ()
    person, kind, at, campaign, url, flags = (np.concatenate(column) for column in zip(*parts, strict=True))
    columns = EventColumns(
        person=person, kind=kind, at=at, campaign=campaign, url=url, flags=flags, urls=urls.names()
    )
    return columns, campaigns.names()


class _Codes(dict[str | None, int]):
    """Names numbered by first appearance, None (no campaign, no URL) as -1: looked up with
    ``codes[name]`` from C (``map``), where a comprehension calling ``setdefault`` ran per event."""

    def __init__(self) -> None:
        super().__init__({None: -1})

    def __missing__(self, name: str | None) -> int:
        code = self[name] = len(self) - 1
        return code

    def names(self) -> tuple[str, ...]:
        """The names, each at its code."""
        return tuple(name for name in self if name is not None)


def _event_arrays(
    rows: Sequence[Any],
    persons: dict[str, int],
    campaigns: _Codes,
    urls: _Codes,
    until: float,
) -> tuple[np.ndarray, ...] | None:
    contacts = map(itemgetter(0), rows)
    person = np.fromiter(map(persons.get, contacts, repeat(-1)), dtype=np.int64, count=len(rows))
    at = _epoch_seconds(list(map(itemgetter(2), rows)))
    # contacts of persons this run does not score, or of no person; events after ``now``
    keep = (person >= 0) & (at <= until)
    if not keep.all():
        rows = list(compress(rows, keep.tolist()))
        person, at = person[keep], at[keep]
        if not rows:
            return None
    # one column at a time: ``zip(*rows)`` over 50,000 rows was the slowest step of the load
    kinds, campaign_names, url_names, machines, read_properties = (
        list(map(itemgetter(k), rows)) for k in (1, 3, 4, 5, 6)
    )
    kind = np.fromiter(map(_KIND_CODES.get, kinds, repeat(-1)), dtype=np.int8, count=len(rows))
    if kind.min() < 0:
        raise ValueError("the store holds an event type this engine does not know")
    campaign = np.fromiter(map(campaigns.__getitem__, campaign_names), dtype=np.int64, count=len(rows))
    url = np.fromiter(map(urls.__getitem__, url_names), dtype=np.int64, count=len(rows))
    flags = np.where(np.array(machines, dtype=bool), MACHINE, 0).astype(np.uint8)
    outcomes = np.isin(kind, _OUTCOME_CODES)
    for i in np.flatnonzero((kind == _BOUNCE_CODE) | outcomes).tolist():
        properties = read_properties[i]
        if isinstance(properties, str):  # SQLite hands JSON back as text, PostgreSQL as values
            properties = json.loads(properties)
        if outcomes[i]:
            flags[i] |= outcome_flag(EVENT_TYPES[kind[i]], properties or {})
        elif is_hard_bounce(properties or {}):
            flags[i] |= HARD_BOUNCE
    return person, kind, at, campaign, url, flags


def _epoch_seconds(times: Sequence[str | datetime]) -> np.ndarray:
    """UTC seconds since the epoch of stored times: SQLite's text (UTC, no offset) is parsed by
    numpy in one call; drivers that return datetimes (PostgreSQL) go through ``timestamp()``."""
    if times and isinstance(times[0], str):
        micros = np.array(times, dtype="datetime64[us]").astype(np.int64)
        return micros / 1e6  # exactly datetime.timestamp(): microseconds over 10**6, rounded once
    return np.array([_utc(moment).timestamp() for moment in times], dtype=np.float64)  # type: ignore[union-attr]


_COMPARED = ("affinity", "engagement", "stage", "grade", "lifecycle", "model_fingerprint")


_HISTORY_FIELDS = ("affinity", "engagement", "stage", "grade", "lifecycle", "model_fingerprint", "scored_at")
_LIFECYCLE, _GRADE, _ENGAGEMENT = (_COMPARED.index(name) for name in ("lifecycle", "grade", "engagement"))


def score_rows(person_ids: Sequence[int], results: Any, model_fp: str, now: datetime) -> list[dict[str, Any]]:
    """The ``score`` rows of a ``BatchResult``, read from its arrays (``results.result(i)`` would
    build every person's full ``ScoreResult`` first)."""
    everyone = np.arange(len(person_ids))
    stages, grades, lifecycles = results.names(everyone)
    return [
        {
            "person_id": pid,
            "affinity": affinity,
            "engagement": engagement,
            "composite": composite,
            "stage": stage,
            "grade": grade,
            "lifecycle": lifecycle,
            "disqualified": disqualified,
            "reason": sentence,
            "contributions": contributions,
            "model_fingerprint": model_fp,
            "scored_at": now,
        }
        for (
            pid,
            affinity,
            engagement,
            composite,
            stage,
            grade,
            lifecycle,
            disqualified,
            sentence,
            contributions,
        ) in zip(
            person_ids,
            results.affinity.tolist(),
            results.engagement.tolist(),
            results.composite.tolist(),
            stages,
            grades,
            lifecycles,
            results.disqualified.tolist(),
            results.sentences(everyone),
            results.contribution_dicts(everyone),
            strict=True,
        )
    ]
