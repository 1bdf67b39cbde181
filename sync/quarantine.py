"""Retrying quarantined records.

A record lands in quarantine when it could not be normalised (pull side) or written (push side).
Retrying re-runs the work that met it: a full re-read of the source for pull-side records (the
upserts are idempotent, so nothing is duplicated) and a push for push-side ones (a failed write
was never recorded as pushed, so it is planned again). Every record the retry did not find bad
again is marked resolved; the others stay, with one more attempt counted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Engine, func, select, update

from leadsync.config.settings import LeadsyncConfig
from leadsync.sync.pipeline import PushResult, SourceResult, pull_source, push_source, utcnow
from leadsync.sync.store.models import Quarantine

__all__ = ["RetryOutcome", "retry_quarantined"]


@dataclass
class RetryOutcome:
    retried: int = 0
    resolved: int = 0
    still_bad: int = 0
    pulls: list[SourceResult] = field(default_factory=list)
    pushes: list[PushResult] = field(default_factory=list)


def _open_by_source(engine: Engine, source: str | None) -> dict[str, set[str]]:
    query = select(Quarantine.source, Quarantine.stream).where(Quarantine.resolved_at.is_(None)).distinct()
    if source:
        query = query.where(Quarantine.source == source)
    found: dict[str, set[str]] = {}
    with engine.connect() as connection:
        for name, stream in connection.execute(query):
            found.setdefault(name, set()).add(stream)
    return found


def retry_quarantined(engine: Engine, config: LeadsyncConfig, *, source: str | None = None) -> RetryOutcome:
    outcome = RetryOutcome()
    started: datetime = utcnow()
    for name, streams in _open_by_source(engine, source).items():
        source_config = config.source(name)
        with engine.connect() as connection:
            outcome.retried += connection.execute(
                select(func.count())
                .select_from(Quarantine)
                .where(Quarantine.source == name, Quarantine.resolved_at.is_(None))
            ).scalar_one()
        pulled_ok = pushed_ok = True
        if streams - {"push"}:
            result = pull_source(engine, config, source_config, full=True)
            outcome.pulls.append(result)
            pulled_ok = result.ok
        if "push" in streams:
            pushed = push_source(engine, config, source_config)
            outcome.pushes.append(pushed)
            pushed_ok = pushed.ok
        # Only a run that completed can vouch that a record is no longer bad.
        done = [
            stream
            for stream in streams
            if (stream == "push" and pushed_ok) or (stream != "push" and pulled_ok)
        ]
        with engine.begin() as connection:
            resolved = connection.execute(
                update(Quarantine)
                .where(
                    Quarantine.source == name,
                    Quarantine.stream.in_(done),
                    Quarantine.resolved_at.is_(None),
                    Quarantine.last_seen_at < started,
                )
                .values(resolved_at=utcnow())
            )
            outcome.resolved += resolved.rowcount
    outcome.still_bad = outcome.retried - outcome.resolved
    return outcome
