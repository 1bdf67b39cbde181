"""The score step: read persons from the store, score them with the pure engine, write the scores.

Who is re-scored: persons whose data changed since their last score (``dirty``), persons never
scored, everyone when the model (or the engine) changed, and everyone whose score is older than a
day, since decay moves engagement even when nothing happens. A score-history row is added only when
a person's scores changed.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, Engine, and_, or_, select, update

from config.scoring_model import ScoringModel
from connectors.records import EventType, Profile
from scoring import ENGINE_VERSION, EventColumnsBuilder, Previous, ScoreResult, score_many
from scoring.columns import is_hard_bounce
from sync.identity import ATTRIBUTE_FIELDS, IdentityAttributes, merge_profile
from sync.store import upsert
from sync.store.models import Attributes, Event, Identity, Person, Score, ScoreHistory

__all__ = ["RescoreCounts", "fingerprint", "rescore"]

BATCH = 5_000  # persons per scoring batch: bounds memory, one transaction each
RESCORE_AFTER = timedelta(days=1)  # decay: refresh every score at least daily


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
        query = query.where(
            or_(
                Person.dirty.is_(True),
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
    # The dirty flag is cleared against the wall clock at the start of this pass, not against
    # ``now``: ``now`` is the as-of time of the scores and may lie in the past or the future.
    started = datetime.now(UTC)
    with engine.connect() as connection:
        person_ids = persons_to_score(connection, model_fp, now=now, everyone=everyone)
    counts = RescoreCounts()
    for start in range(0, len(person_ids), BATCH):
        chunk = person_ids[start : start + BATCH]
        with engine.begin() as connection:
            changed = _score_chunk(connection, chunk, model, model_fp, now=now, precedence=precedence)
            # Clear the flag only where nothing arrived since this run read the data.
            connection.execute(
                update(Person)
                .where(and_(Person.id.in_(chunk), Person.updated_at <= started))
                .values(dirty=False)
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
    for row in rows:
        values = {name: getattr(row, name) for name in ATTRIBUTE_FIELDS}
        per_person[row.person_id].append(
            IdentityAttributes(row.source, row.platform, _utc(row.updated_at), values)
        )
    return [merge_profile(emails[pid], per_person.get(pid, ()), precedence=precedence) for pid in person_ids]


def load_event_columns(
    connection: Connection, person_ids: Sequence[int], now: datetime
) -> EventColumnsBuilder:
    index = {pid: i for i, pid in enumerate(person_ids)}
    builder = EventColumnsBuilder()
    rows = connection.execute(
        select(
            Identity.person_id,
            Event.type,
            Event.occurred_at,
            Event.campaign,
            Event.url,
            Event.machine,
            Event.properties,
        )
        .join(Identity, and_(Identity.source == Event.source, Identity.remote_id == Event.remote_contact_id))
        .where(Identity.person_id.in_(person_ids), Event.occurred_at <= now)
    )
    bounce = EventType.EMAIL_BOUNCE.value
    for person_id, kind, at, campaign, url, machine, properties in rows:
        builder.add(
            index[person_id],
            kind,
            _utc(at),  # type: ignore[arg-type]
            campaign=campaign,
            url=url,
            machine=machine,
            hard_bounce=kind == bounce and is_hard_bounce(properties or {}),
        )
    return builder


def _score_chunk(
    connection: Connection,
    person_ids: Sequence[int],
    model: ScoringModel,
    model_fp: str,
    *,
    now: datetime,
    precedence: Sequence[str],
) -> int:
    profiles = load_profiles(connection, person_ids, precedence)
    columns = load_event_columns(connection, person_ids, now).build()
    # Core rows (not ORM objects): ``.scalars()`` here would yield only the first column.
    old = {
        row.person_id: row for row in connection.execute(select(Score).where(Score.person_id.in_(person_ids)))
    }
    previous = [Previous(old[pid].lifecycle, old[pid].grade) if pid in old else None for pid in person_ids]
    results = score_many(profiles, columns, model, now=now, previous=previous)
    score_rows, history_rows = [], []
    for i, pid in enumerate(person_ids):
        result = results.result(i)
        row = score_row(pid, result, model_fp, now)
        before = old.get(pid)
        if before is None or _differs(before, row):
            history_rows.append({k: row[k] for k in _HISTORY_FIELDS} | {"person_id": pid})
        score_rows.append(row)
    upsert(
        connection,
        Score,
        score_rows,
        key=["person_id"],
        update=[k for k in score_rows[0] if k != "person_id"],
    )
    if history_rows:
        connection.execute(ScoreHistory.__table__.insert(), history_rows)  # type: ignore[attr-defined]
    return len(history_rows)


_HISTORY_FIELDS = ("affinity", "engagement", "stage", "grade", "lifecycle", "model_fingerprint", "scored_at")
_COMPARED = ("affinity", "engagement", "stage", "grade", "lifecycle", "model_fingerprint")


def score_row(person_id: int, result: ScoreResult, model_fp: str, now: datetime) -> dict:
    return {
        "person_id": person_id,
        "affinity": result.affinity,
        "engagement": result.engagement,
        "composite": result.composite,
        "stage": result.stage,
        "grade": result.grade,
        "lifecycle": result.lifecycle,
        "disqualified": result.disqualified,
        "reason": result.sentence,
        "contributions": [contribution.as_dict() for contribution in result.contributions],
        "model_fingerprint": model_fp,
        "scored_at": now,
    }


def _differs(before: Score, row: dict) -> bool:
    return any(getattr(before, k) != row[k] for k in _COMPARED)
