"""Read-only views of the store for the CLI: status per source, the ranked leads, the quarantine."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, desc, func, select

from leadsync.config.settings import LeadsyncConfig
from leadsync.sync.store.models import Event, Identity, Lease, Person, Quarantine, Score, SyncCursor, SyncRun
from leadsync.sync.writeback import plan_writes

__all__ = ["SourceStatus", "leads", "quarantined", "source_status"]


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
