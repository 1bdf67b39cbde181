"""Read-only views of the store for the CLI: status per source, the ranked leads, the quarantine."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, desc, func, select

from leadsync.config.settings import LeadsyncConfig
from leadsync.sync.store.models import Event, Identity, Lease, Person, Quarantine, Score, SyncCursor, SyncRun
from leadsync.sync.writeback import plan_writes

__all__ = [
    "SourceStatus",
    "StoredScores",
    "leads",
    "quarantine_sources",
    "quarantined",
    "source_status",
    "stored_scores",
]


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass
class SourceStatus:
    source: str
    platform: str
    last_run: dict[str, Any] | None
    next_run: datetime | None
    cursors: dict[str, Any]
    identities: int
    events: int
    pending_writes: int
    quarantined: int
    lease: dict[str, Any] | None = field(default=None)


def source_status(engine: Engine, config: LeadsyncConfig, *, now: datetime) -> list[SourceStatus]:
    statuses: list[SourceStatus] = []
    with engine.connect() as connection:
        for source in config.sources:
            run = connection.execute(
                select(SyncRun).where(SyncRun.source == source.name).order_by(desc(SyncRun.id)).limit(1)
            ).first()
            last_run = None
            next_run = None
            if run is not None:
                last_run = {
                    "step": run.step,
                    "trigger": run.trigger,
                    "command": run.command,
                    "started_at": _utc(run.started_at),
                    "finished_at": _utc(run.finished_at),
                    "status": run.status,
                    "counts": run.counts,
                    "error": run.error,
                }
                interval = source.interval or config.schedule.interval
                next_run = (_utc(run.finished_at) or _utc(run.started_at)) + timedelta(seconds=interval)  # type: ignore[operator]
            cursors = {
                stream: value
                for stream, value in connection.execute(
                    select(SyncCursor.stream, SyncCursor.value).where(SyncCursor.source == source.name)
                )
            }
            identities = connection.execute(
                select(func.count()).select_from(Identity).where(Identity.source == source.name)
            ).scalar_one()
            events = connection.execute(
                select(func.count()).select_from(Event).where(Event.source == source.name)
            ).scalar_one()
            quarantine = connection.execute(
                select(func.count())
                .select_from(Quarantine)
                .where(Quarantine.source == source.name, Quarantine.resolved_at.is_(None))
            ).scalar_one()
            pending = len(
                plan_writes(
                    connection,
                    source.name,
                    prefix=config.writeback.field_prefix,
                    lifecycle_writeback=config.writeback.lifecycle,
                    now=now,
                )
            )
            lease_row = connection.execute(select(Lease).where(Lease.name == f"source:{source.name}")).first()
            lease = None
            if lease_row is not None and _utc(lease_row.expires_at) > now:  # type: ignore[operator]
                lease = {"holder": lease_row.holder, "expires_at": _utc(lease_row.expires_at)}
            statuses.append(
                SourceStatus(
                    source.name,
                    source.platform.value,
                    last_run,
                    next_run,
                    cursors,
                    identities,
                    events,
                    pending,
                    quarantine,
                    lease,
                )
            )
    return statuses


def leads(
    engine: Engine, *, limit: int, grade: str | None = None, lifecycle: str | None = None
) -> list[dict[str, Any]]:
    query = (
        select(
            Person.email,
            Score.composite,
            Score.affinity,
            Score.engagement,
            Score.grade,
            Score.stage,
            Score.lifecycle,
            Score.reason,
            Score.scored_at,
        )
        .join(Score, Score.person_id == Person.id)
        .order_by(desc(Score.composite), desc(Score.engagement), Person.email)
        .limit(limit)
    )
    if grade:
        query = query.where(Score.grade.startswith(grade.upper()))
    if lifecycle:
        query = query.where(Score.lifecycle == lifecycle)
    with engine.connect() as connection:
        return [dict(row._mapping) for row in connection.execute(query)]


def quarantined(
    engine: Engine, *, source: str | None = None, include_resolved: bool = False
) -> list[dict[str, Any]]:
    query = select(Quarantine).order_by(Quarantine.id)
    if source:
        query = query.where(Quarantine.source == source)
    if not include_resolved:
        query = query.where(Quarantine.resolved_at.is_(None))
    with engine.connect() as connection:
        return [dict(row._mapping) for row in connection.execute(query)]


def quarantine_sources(engine: Engine) -> list[str]:
    """The sources the quarantine holds records of (resolved or not)."""
    with engine.connect() as connection:
        return list(
            connection.execute(select(Quarantine.source).distinct().order_by(Quarantine.source)).scalars()
        )


@dataclass
class StoredScores:
    """A person's scores as the last re-score wrote them, and what explains them.

    ``stored`` is the score row (the values written to the platforms, ``contributions`` summing to
    its affinity and engagement). ``previous`` holds the values that re-score started from (its
    hysteresis input), from the score history. ``replay`` is the person re-scored as of
    ``scored_at`` from ``previous`` with the current store; when it gives the stored values again
    the store has not changed since, and ``fresh`` (the same without ``previous``) shows what the
    rules alone give: ``held`` names each value hysteresis kept, ``{"lifecycle": ("stored",
    "rules alone")}``. ``replay`` is None when the store or the model changed since.
    """

    email: str
    stored: dict[str, Any]
    previous: dict[str, Any] | None
    same_model: bool
    replay: Any = None
    fresh: Any = None
    held: dict[str, tuple[Any, Any]] = field(default_factory=dict)


_STORED_FIELDS = ("affinity", "engagement", "stage", "grade", "lifecycle")


def stored_scores(engine: Engine, model: Any, email: str) -> StoredScores | None:
    """The stored scores of ``email`` (None: no such person), explained (see ``StoredScores``)."""
    from leadsync.connectors.records import normalise_email
    from leadsync.scoring import score_many
    from leadsync.scoring.engine import Previous
    from leadsync.sync.rescore import fingerprint
    from leadsync.sync.scorebatch import load_event_columns, load_profiles
    from leadsync.sync.store.models import ScoreHistory

    with engine.connect() as connection:
        person = connection.execute(
            select(Person.id, Person.email).where(Person.email == normalise_email(email))
        ).first()
        if person is None:
            return None
        row = connection.execute(select(Score).where(Score.person_id == person.id)).first()
        if row is None:
            return StoredScores(person.email, {}, None, same_model=False)
        stored = dict(row._mapping)
        stored["scored_at"] = _utc(stored["scored_at"])
        history = connection.execute(
            select(ScoreHistory)
            .where(ScoreHistory.person_id == person.id)
            .order_by(desc(ScoreHistory.id))
            .limit(2)
        ).all()
        # The last re-score started from the values before it: the newest history row when that
        # run changed nothing (no row of its own), else the row before the run's own.
        if history and _utc(history[0].scored_at) == stored["scored_at"]:
            history = history[1:]
        previous = None if not history else {k: getattr(history[0], k) for k in _STORED_FIELDS}
        explained = StoredScores(
            person.email, stored, previous, same_model=fingerprint(model) == stored["model_fingerprint"]
        )
        if not explained.same_model:
            return explained
        when = stored["scored_at"]
        profiles = load_profiles(connection, [person.id])
        columns = load_event_columns(connection, [person.id], when)
    prior = (
        None
        if previous is None
        else Previous(previous["lifecycle"], previous["grade"], float(previous["engagement"]))
    )
    replay = score_many(profiles, columns, model, now=when, previous=[prior]).result(0)
    if (
        any(getattr(replay, k) != _plain(stored[k]) for k in _STORED_FIELDS)
        or [c.as_dict() for c in replay.contributions] != stored["contributions"]
    ):
        return explained  # new data (or attributes) since that re-score: not what produced them
    fresh = score_many(profiles, columns, model, now=when).result(0)
    explained.replay, explained.fresh = replay, fresh
    explained.held = {
        k: (getattr(replay, k), getattr(fresh, k))
        for k in ("engagement", "grade", "lifecycle")
        if getattr(replay, k) != getattr(fresh, k)
    }
    return explained


def _plain(value: Any) -> Any:
    """A stored score as the engine gives it (affinity and engagement are whole numbers)."""
    return int(value) if isinstance(value, float) and value.is_integer() else value
