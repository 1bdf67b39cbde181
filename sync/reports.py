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
    """One source's status: counts only (a few hundred bytes whatever the account's size); the raw
    cursors, which can hold per-contact positions, only with ``verbose``."""

    source: str
    platform: str
    last_run: dict[str, Any] | None
    next_run: datetime | None  # None unless a daemon is running
    identities: int
    events: int
    pending_writes: int
    quarantined: int
    lease: dict[str, Any] | None = field(default=None)
    syncing: bool = False  # a live process holds the source's lease now
    daemon: bool = False  # a daemon is running on this store (its heartbeat is fresh)
    last_success: datetime | None = None  # the end of the last pull that ended ok
    streams: dict[str, str] = field(default_factory=dict)  # per stream: its cursor in plain words
    cursors: dict[str, Any] | None = None  # the raw cursors (``verbose``)


def _run_summary(run: Any) -> dict[str, Any]:
    counts = {k: v for k, v in dict(run.counts or {}).items() if k != "streams"}
    return {
        "id": run.id,
        "step": run.step,
        "trigger": run.trigger,
        "command": run.command,
        "started_at": _utc(run.started_at),
        "finished_at": _utc(run.finished_at),
        "status": run.status,
        "counts": counts,
        "error": run.error,
    }


def source_status(
    engine: Engine, config: LeadsyncConfig, *, now: datetime, verbose: bool = False
) -> list[SourceStatus]:
    """Per source: its last run, whether it is syncing now, and, while a daemon runs, when it runs
    next. A run whose process is gone is closed as interrupted first (``sync.runs``), so a dead
    process is never shown as syncing."""
    from leadsync.sync.cursors import describe
    from leadsync.sync.lease import live_daemons, process_gone
    from leadsync.sync.runs import mark_interrupted

    mark_interrupted(engine, now=now)
    daemon = bool(live_daemons(engine, now=now))
    statuses: list[SourceStatus] = []
    with engine.connect() as connection:
        for source in config.sources:
            run = connection.execute(
                select(SyncRun).where(SyncRun.source == source.name).order_by(desc(SyncRun.id)).limit(1)
            ).first()
            last_pull = connection.execute(
                select(SyncRun.started_at, SyncRun.finished_at)
                .where(SyncRun.source == source.name, SyncRun.step == "pull")
                .order_by(desc(SyncRun.id))
                .limit(1)
            ).first()
            last_success = connection.execute(
                select(SyncRun.finished_at)
                .where(SyncRun.source == source.name, SyncRun.step == "pull", SyncRun.status == "ok")
                .order_by(desc(SyncRun.id))
                .limit(1)
            ).scalar()
            next_run = None
            if daemon and source.enabled:
                interval = timedelta(seconds=source.interval or config.schedule.interval)
                last = None if last_pull is None else _utc(last_pull.started_at)
                next_run = now if last is None else max(now, last + interval)
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
            if (
                lease_row is not None
                and _utc(lease_row.expires_at) > now  # type: ignore[operator]
                and not process_gone(lease_row.holder)
            ):
                lease = {"holder": lease_row.holder, "expires_at": _utc(lease_row.expires_at)}
            statuses.append(
                SourceStatus(
                    source=source.name,
                    platform=source.platform.value,
                    last_run=None if run is None else _run_summary(run),
                    next_run=next_run,
                    identities=identities,
                    events=events,
                    pending_writes=pending,
                    quarantined=quarantine,
                    lease=lease,
                    syncing=lease is not None,
                    daemon=daemon,
                    last_success=_utc(last_success),
                    streams={stream: describe(value)[1] for stream, value in cursors.items()},
                    cursors=cursors if verbose else None,
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
