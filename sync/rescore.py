"""The score step: read persons from the store, score them with the pure engine, write the scores.

Who is re-scored: persons whose data changed since their last score (a ``ChangedPerson`` row),
persons never scored, everyone when the model (or the engine) changed, and everyone whose score is
older than a day, since decay moves engagement even when nothing happens. A score-history row is
added only when a person's scores changed.

Events are read in one scan for all the persons of a run, straight into numpy columns (the event
table has no index on the contact: see ``Event``), then scored and written a batch of persons at a
time, one transaction per batch.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import compress
from typing import Any

import numpy as np
from sqlalchemy import Connection, Engine, Integer, String, and_, case, delete, or_, select, type_coerce

from config.scoring_model import ScoringModel
from connectors.records import EventType, Profile
from scoring import ENGINE_VERSION, EVENT_TYPES, EventColumns, Previous, score_many
from scoring.columns import HARD_BOUNCE, MACHINE, is_hard_bounce
from sync.identity import ATTRIBUTE_FIELDS, IdentityAttributes, merge_profile
from sync.store import upsert
from sync.store.models import Attributes, ChangedPerson, Event, Identity, Person, Score, ScoreHistory

__all__ = ["RescoreCounts", "fingerprint", "load_event_columns", "load_profiles", "rescore"]

BATCH = 5_000  # persons per scoring batch: bounds memory, one transaction each
RESCORE_AFTER = timedelta(days=1)  # decay: refresh every score at least daily
FEW = 500  # persons whose events are filtered in SQL; for more, the scan is filtered in numpy
_PART = 50_000  # event rows fetched and converted at a time


@dataclass
class RescoreCounts:
    scored: int = 0
    changed: int = 0


def fingerprint(model: ScoringModel) -> str:
    """What a stored score was computed with: the model's content and the engine's version."""
    return f"{model.fingerprint[:16]}:{ENGINE_VERSION}"


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def persons_to_score(connection: Connection, model_fp: str, *, now: datetime, everyone: bool) -> list[int]:
    query = select(Person.id).outerjoin(Score, Score.person_id == Person.id)
    if not everyone:
        query = query.outerjoin(ChangedPerson, ChangedPerson.person_id == Person.id).where(
            or_(
                ChangedPerson.person_id.is_not(None),
                Score.person_id.is_(None),
                Score.model_fingerprint != model_fp,
                Score.scored_at < now - RESCORE_AFTER,
            )
        )
    return list(connection.execute(query.order_by(Person.id)).scalars())


def rescore(
    engine: Engine,
    model: ScoringModel,
    *,
    now: datetime,
    everyone: bool = False,
    precedence: Sequence[str] = (),
    progress: Callable[[int], None] | None = None,
) -> RescoreCounts:
    model_fp = fingerprint(model)
    # A change mark is cleared against the wall clock at the start of this pass, not against
    # ``now``: ``now`` is the as-of time of the scores and may lie in the past or the future.
    started = datetime.now(UTC)
    with engine.connect() as connection:
        person_ids = persons_to_score(connection, model_fp, now=now, everyone=everyone)
        events = load_event_columns(connection, person_ids, now).sorted_by_person()
    counts = RescoreCounts()
    for start in range(0, len(person_ids), BATCH):
        chunk = person_ids[start : start + BATCH]
        with engine.begin() as connection:
            changed = _score_chunk(
                connection,
                chunk,
                events.person_range(start, start + len(chunk)),
                model,
                model_fp,
                now=now,
                precedence=precedence,
            )
            # Clear the mark only where nothing arrived since this run read the data.
            connection.execute(
                delete(ChangedPerson).where(
                    ChangedPerson.person_id.in_(chunk), ChangedPerson.changed_at <= started
                )
            )
        counts.scored += len(chunk)
        counts.changed += changed
        if progress:
            progress(len(chunk))
    return counts


def load_profiles(
    connection: Connection, person_ids: Sequence[int], precedence: Sequence[str] = ()
) -> list[Profile]:
    emails = {
        pid: email
        for pid, email in connection.execute(select(Person.id, Person.email).where(Person.id.in_(person_ids)))
    }
    columns = [getattr(Attributes, name) for name in ATTRIBUTE_FIELDS]
    rows = connection.execute(
        select(Identity.person_id, Identity.source, Identity.platform, Attributes.updated_at, *columns)
        .join(
            Attributes, and_(Attributes.source == Identity.source, Attributes.remote_id == Identity.remote_id)
        )
        .where(Identity.person_id.in_(person_ids))
    )
    per_person: dict[int, list[IdentityAttributes]] = defaultdict(list)
    for person_id, source, platform, updated_at, *values in rows:
        per_person[person_id].append(
            IdentityAttributes(
                source, platform, _utc(updated_at), dict(zip(ATTRIBUTE_FIELDS, values, strict=True))
            )
        )
    return [merge_profile(emails[pid], per_person.get(pid, ()), precedence=precedence) for pid in person_ids]


_KIND_CODE = case({kind.value: code for code, kind in enumerate(EVENT_TYPES)}, value=Event.type, else_=-1)
_BOUNCE = EventType.EMAIL_BOUNCE.value
_BOUNCE_CODE = EVENT_TYPES.index(EventType.EMAIL_BOUNCE)


def load_event_columns(connection: Connection, person_ids: Sequence[int], now: datetime) -> EventColumns:
    """The events up to ``now`` of ``person_ids`` (``person`` = position in ``person_ids``).

    One query over the event table joined to identities; its rows go straight into numpy columns.
    The columns come raw from the driver (type codes from SQL, times as the stored text on SQLite):
    SQLAlchemy's per-value processing of two million rows cost more than scoring them. Properties
    are read for bounces only, the one kind whose scoring looks at them.
    """
    ids = np.asarray(person_ids, dtype=np.int64)
    if not ids.size:
        return EventColumns.empty()
    order = np.argsort(ids, kind="stable")
    known = ids[order]
    query = (
        select(
            Identity.person_id,
            _KIND_CODE,
            type_coerce(Event.occurred_at, String),
            Event.campaign,
            Event.url,
            type_coerce(Event.machine, Integer),
            case((Event.type == _BOUNCE, type_coerce(Event.properties, String)), else_=None),
        )
        .select_from(Event)
        .join(Identity, and_(Identity.source == Event.source, Identity.remote_id == Event.remote_contact_id))
        .where(Event.occurred_at <= now, Identity.person_id.is_not(None))
    )
    if ids.size <= FEW:
        query = query.where(Identity.person_id.in_(ids.tolist()))
    campaigns: dict[str, int] = {}
    urls: dict[str, int] = {}
    parts: list[tuple[np.ndarray, ...]] = []
    result = connection.execution_options(yield_per=_PART).execute(query)
    for rows in result.partitions():
        pid = np.fromiter((row[0] for row in rows), dtype=np.int64, count=len(rows))
        position = np.minimum(np.searchsorted(known, pid), len(known) - 1)
        hit = known[position] == pid
        if not hit.all():  # persons this run does not score
            rows = list(compress(rows, hit.tolist()))
            position = position[hit]
        if rows:
            parts.append(_event_arrays(rows, order[position], campaigns, urls))
    if not parts:
        return EventColumns.empty()
    person, kind, at, campaign, url, flags = (np.concatenate(column) for column in zip(*parts, strict=True))
    return EventColumns(
        person=person, kind=kind, at=at, campaign=campaign, url=url, flags=flags, urls=tuple(urls)
    )


def _event_arrays(
    rows: Sequence[Any], person: np.ndarray, campaigns: dict[str, int], urls: dict[str, int]
) -> tuple[np.ndarray, ...]:
    _, kinds, times, campaign_names, url_names, machines, bounces = zip(*rows, strict=True)
    kind = np.array(kinds, dtype=np.int16)
    if kind.min() < 0:
        raise ValueError("the store holds an event type this engine does not know")
    campaign = np.array(
        [-1 if name is None else campaigns.setdefault(name, len(campaigns)) for name in campaign_names],
        dtype=np.int64,
    )
    url = np.array(
        [-1 if name is None else urls.setdefault(name, len(urls)) for name in url_names], dtype=np.int64
    )
    flags = np.where(np.array(machines, dtype=bool), MACHINE, 0).astype(np.uint8)
    for i in np.flatnonzero(kind == _BOUNCE_CODE).tolist():
        properties = bounces[i]
        if isinstance(properties, str):  # SQLite hands JSON back as text, PostgreSQL as values
            properties = json.loads(properties)
        if is_hard_bounce(properties or {}):
            flags[i] |= HARD_BOUNCE
    return person, kind.astype(np.int8), _epoch_seconds(times), campaign, url, flags


def _epoch_seconds(times: Sequence[str | datetime]) -> np.ndarray:
    """UTC seconds since the epoch of stored times: SQLite's text (UTC, no offset) is parsed by
    numpy in one call; drivers that return datetimes (PostgreSQL) go through ``timestamp()``."""
    if times and isinstance(times[0], str):
        micros = np.array(times, dtype="datetime64[us]").astype(np.int64)
        return micros / 1e6  # exactly datetime.timestamp(): microseconds over 10**6, rounded once
    return np.array([_utc(moment).timestamp() for moment in times], dtype=np.float64)  # type: ignore[union-attr]


_COMPARED = ("affinity", "engagement", "stage", "grade", "lifecycle", "model_fingerprint")
_HISTORY_FIELDS = ("affinity", "engagement", "stage", "grade", "lifecycle", "model_fingerprint", "scored_at")


def _score_chunk(
    connection: Connection,
    person_ids: Sequence[int],
    columns: EventColumns,
    model: ScoringModel,
    model_fp: str,
    *,
    now: datetime,
    precedence: Sequence[str],
) -> int:
    profiles = load_profiles(connection, person_ids, precedence)
    compared = [getattr(Score, name) for name in _COMPARED]
    old = {
        pid: tuple(values)
        for pid, *values in connection.execute(
            select(Score.person_id, *compared).where(Score.person_id.in_(person_ids))
        )
    }
    lifecycle, grade = _COMPARED.index("lifecycle"), _COMPARED.index("grade")
    previous = [Previous(old[pid][lifecycle], old[pid][grade]) if pid in old else None for pid in person_ids]
    results = score_many(profiles, columns, model, now=now, previous=previous)
    rows = score_rows(person_ids, results, model_fp, now)
    history_rows = []
    for pid, row in zip(person_ids, rows, strict=True):
        before = old.get(pid)
        if before is None or any(b != row[k] for b, k in zip(before, _COMPARED, strict=True)):
            history_rows.append({"person_id": pid} | {k: row[k] for k in _HISTORY_FIELDS})
    upsert(connection, Score, rows, key=["person_id"], update=[k for k in rows[0] if k != "person_id"])
    if history_rows:
        connection.execute(ScoreHistory.__table__.insert(), history_rows)  # type: ignore[attr-defined]
    return len(history_rows)


def score_rows(person_ids: Sequence[int], results: Any, model_fp: str, now: datetime) -> list[dict[str, Any]]:
    """The ``score`` rows of a ``BatchResult``, read from its arrays (``results.result(i)`` would
    build every person's full ``ScoreResult`` first)."""
    everyone = np.arange(len(person_ids))
    stages = [results.stage_name(i) for i in everyone.tolist()]
    return [
        {
            "person_id": pid,
            "affinity": affinity,
            "engagement": engagement,
            "composite": composite,
            "stage": stage,
            "grade": results.grade(i),
            "lifecycle": results.lifecycle_name(i),
            "disqualified": disqualified,
            "reason": sentence,
            "contributions": contributions,
            "model_fingerprint": model_fp,
            "scored_at": now,
        }
        for i, (
            pid,
            affinity,
            engagement,
            composite,
            stage,
            disqualified,
            sentence,
            contributions,
        ) in enumerate(
            zip(
                person_ids,
                results.affinity.tolist(),
                results.engagement.tolist(),
                results.composite.tolist(),
                stages,
                results.disqualified.tolist(),
                results.sentences(everyone),
                results.contribution_dicts(everyone),
                strict=True,
            )
        )
    ]
