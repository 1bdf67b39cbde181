"""Run history: one record per run of one step (pull, score, push) of one source.

Every trigger (a command, the daemon, a webhook delivery, a queue worker) records its work here
through ``recorded_run``: the row is inserted as ``running`` before the work starts and completed
when it ends, with what it did (``RunCounts``) and how it ended (``Outcome``). ``leadsync runs``,
``status``, the report and the health checks read these rows.

A process that dies (SIGKILL, power loss) cannot complete its row. ``mark_interrupted`` closes such
rows as ``interrupted`` when the next run starts: a run is recorded within its source's lease, so a
``running`` row whose lease is gone or held by another process has no process behind it any more.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import Engine, delete, desc, func, select, update

from leadsync.connectors.errors import LeadsyncError
from leadsync.sync.lease import holder_id, process_gone
from leadsync.sync.store.db import retry_lost_connection
from leadsync.sync.store.models import Identity, Lease, SyncRun, WritebackAudit

__all__ = [
    "ALL_SOURCES",
    "Outcome",
    "Run",
    "RunCounts",
    "Step",
    "Trigger",
    "get_run",
    "list_runs",
    "mark_interrupted",
    "prune_runs",
    "recorded_run",
]

log = logging.getLogger("leadsync.runs")

ALL_SOURCES = "*"  # the source of a score run: scoring covers every source's persons at once
# A score run holds no lease; one whose process is on another host is taken as gone after this long.
SCORE_RUN_STALE = timedelta(hours=6)
ERROR_LIMIT = 500  # characters of an error summary kept in the record


class Step(StrEnum):
    PULL = "pull"
    SCORE = "score"
    PUSH = "push"


class Trigger(StrEnum):
    COMMAND = "command"
    DAEMON = "daemon"
    WEBHOOK = "webhook"
    WORKER = "worker"


class Outcome(StrEnum):
    RUNNING = "running"
    OK = "ok"
    FAILED = "failed"
    STOPPED = "stopped"  # asked to stop (SIGTERM, Ctrl-C): what it did is committed
    INTERRUPTED = "interrupted"  # its process died; closed by a later run


@dataclass
class RunCounts:
    """What a run did. Pull runs fill records, requests and streams; score runs persons; push runs
    planned, written and failures (and requests)."""

    contacts: int = 0
    events: int = 0
    records_read: int = 0  # records the platform sent: contacts, events and the quarantined ones
    upserted: int = 0  # contacts and events written to the store
    quarantined: int = 0
    persons_scored: int = 0
    persons_changed: int = 0
    planned: int = 0
    written: int = 0
    write_failures: int = 0
    requests: int = 0
    throttled: int = 0  # 429 answers
    retries: int = 0
    deadlock_retries: int = 0  # ingest transactions retried after a deadlock (a backstop)
    reconnects: int = 0  # pages read again after the store connection was lost
    undo_of: int = 0  # an undo run: the push run it undid
    # per stream: {"requests": n, "records": n}
    streams: dict[str, dict[str, int]] = field(default_factory=dict)

    def add_stream(self, stream: str, *, requests: int = 0, records: int = 0) -> None:
        entry = self.streams.setdefault(stream, {"requests": 0, "records": 0})
        entry["requests"] += requests
        entry["records"] += records

    def add_requests(self, before: dict[str, int], after: dict[str, int]) -> int:
        """Add a connector's request counters' growth between two readings; returns the requests."""
        requests = after.get("requests", 0) - before.get("requests", 0)
        self.requests += requests
        self.throttled += after.get("throttled", 0) - before.get("throttled", 0)
        self.retries += after.get("retries", 0) - before.get("retries", 0)
        return requests

    def as_dict(self) -> dict[str, Any]:
        """The stored form: zero counters left out, so each step's record holds what it is about."""
        data = {k: v for k, v in asdict(self).items() if v}
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> RunCounts:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in (data or {}).items() if k in known})


@dataclass
class Run:
    """The run being recorded: set ``counts`` as the work goes; ``error`` (or ``outcome``) to say how
    it ended when no exception says it."""

    id: int
    source: str
    step: Step
    worker: str
    counts: RunCounts = field(default_factory=RunCounts)
    error: str | None = None
    outcome: Outcome | None = None


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _summary(error: str | None) -> str | None:
    if error is None:
        return None
    error = " ".join(error.split())
    return error if len(error) <= ERROR_LIMIT else error[: ERROR_LIMIT - 3] + "..."


def start_run(
    engine: Engine,
    *,
    source: str,
    step: Step,
    trigger: Trigger,
    command: str,
    worker: str,
    now: datetime | None = None,
) -> int:
    """Open a run's record (``running``); sent again on a new connection when the store's was lost.
    (Were the commit to reach the server and its answer be lost, the retry would leave a second
    ``running`` record behind, which ``mark_interrupted`` closes once its lease or process is gone.)"""
    values = {
        "source": source,
        "step": step.value,
        "trigger": trigger.value,
        "command": command,
        "worker": worker,
        "started_at": now or datetime.now(UTC),
        "status": Outcome.RUNNING.value,
        "counts": {},
    }

    def open_record() -> int:
        with engine.begin() as connection:
            result = connection.execute(SyncRun.__table__.insert().values(**values))  # type: ignore[attr-defined]
            return int(result.inserted_primary_key[0])  # type: ignore[index]

    return int(retry_lost_connection(open_record, what=f"opening a {step.value} run of {source}"))


def finish_run(
    engine: Engine,
    run_id: int,
    *,
    outcome: Outcome,
    counts: RunCounts,
    error: str | None,
    now: datetime | None = None,
) -> None:
    """Close the run's record; sent again on a new connection when the store's was lost (the
    UPDATE is idempotent), so that a run that outlived an outage records how it ended."""
    values = {
        "finished_at": now or datetime.now(UTC),
        "status": outcome.value,
        "counts": counts.as_dict(),
        "error": _summary(error),
    }

    def close() -> None:
        with engine.begin() as connection:
            connection.execute(update(SyncRun).where(SyncRun.id == run_id).values(**values))

    retry_lost_connection(close, what=f"closing run {run_id}")


@contextmanager
def recorded_run(
    engine: Engine,
    *,
    source: str,
    step: Step,
    trigger: Trigger = Trigger.COMMAND,
    command: str | None = None,
    worker: str | None = None,
) -> Iterator[Run]:
    """Record one run around a ``with`` block.

    The outcome is ``ok`` unless the block set ``run.error`` (``failed``) or ``run.outcome``, or
    raised: ``Stopped`` (see ``connectors.stop``) records ``stopped``, any other exception
    ``failed`` with its message, and the exception goes on to the caller.
    """
    worker = worker or holder_id()
    run = Run(
        id=start_run(
            engine, source=source, step=step, trigger=trigger, command=command or step.value, worker=worker
        ),
        source=source,
        step=step,
        worker=worker,
    )
    try:
        yield run
    except BaseException as exc:
        stopped = type(exc).__name__ in {"Stopped", "KeyboardInterrupt"}
        outcome = Outcome.STOPPED if stopped else Outcome.FAILED
        message = str(exc) if isinstance(exc, LeadsyncError) else f"{type(exc).__name__}: {exc}"
        finish_run(engine, run.id, outcome=outcome, counts=run.counts, error=run.error or message)
        raise
    outcome = run.outcome or (Outcome.FAILED if run.error else Outcome.OK)
    finish_run(engine, run.id, outcome=outcome, counts=run.counts, error=run.error)


def mark_interrupted(engine: Engine, *, now: datetime | None = None, source: str | None = None) -> int:
    """Close the ``running`` rows that have no process behind them any more; returns how many.

    A pull or push run is recorded within its source's lease: when that lease is gone, expired or
    held by another process, the run's process has stopped without finishing its record. A score run
    holds no lease: it is closed when its process, on this host, no longer exists, or after
    ``SCORE_RUN_STALE`` for another host's.
    """
    now = now or datetime.now(UTC)
    with engine.begin() as connection:
        query = select(SyncRun.id, SyncRun.source, SyncRun.step, SyncRun.worker, SyncRun.started_at).where(
            SyncRun.status == Outcome.RUNNING.value
        )
        if source is not None:
            query = query.where(SyncRun.source == source)
        running = connection.execute(query).all()
        if not running:
            return 0
        leases = {
            row.name: (row.holder, _utc(row.expires_at)) for row in connection.execute(select(Lease)).all()
        }
        gone: list[int] = []
        for run in running:
            worker = run.worker or ""
            if process_gone(worker):
                gone.append(run.id)
            elif run.step == Step.SCORE.value:
                if (_utc(run.started_at) or now) < now - SCORE_RUN_STALE:
                    gone.append(run.id)
            else:
                holder, expires = leases.get(f"source:{run.source}", (None, None))
                if holder != worker or expires is None or expires < now:
                    gone.append(run.id)
        if gone:
            connection.execute(
                update(SyncRun)
                .where(SyncRun.id.in_(gone), SyncRun.status == Outcome.RUNNING.value)  # type: ignore[union-attr]
                .values(
                    status=Outcome.INTERRUPTED.value,
                    finished_at=now,
                    error="interrupted: its process stopped without finishing (killed, or the machine went down); "
                    "the next run went on from the last committed page",
                )
            )
    if gone:
        log.warning("marked %d run(s) interrupted: their process is gone", len(gone))
    return len(gone)


def _as_dict(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "source": row.source,
        "step": row.step,
        "trigger": row.trigger,
        "command": row.command,
        "worker": row.worker,
        "started_at": _utc(row.started_at),
        "finished_at": _utc(row.finished_at),
        "status": row.status,
        "seconds": (
            round((_utc(row.finished_at) - _utc(row.started_at)).total_seconds(), 3)  # type: ignore[operator]
            if row.finished_at is not None
            else None
        ),
        "counts": dict(row.counts or {}),
        "error": row.error,
    }


def list_runs(
    engine: Engine,
    *,
    sources: Sequence[str] = (),
    failed: bool = False,
    limit: int = 20,
    step: Step | None = None,
) -> list[dict[str, Any]]:
    """The newest runs first; ``failed``: only those that failed or were interrupted."""
    query = select(SyncRun).order_by(desc(SyncRun.id)).limit(limit)
    if sources:
        query = query.where(SyncRun.source.in_(list(sources)))  # type: ignore[attr-defined]
    if failed:
        query = query.where(SyncRun.status.in_([Outcome.FAILED.value, Outcome.INTERRUPTED.value]))  # type: ignore[attr-defined]
    if step is not None:
        query = query.where(SyncRun.step == step.value)
    with engine.connect() as connection:
        return [_as_dict(row) for row in connection.execute(query).all()]


def get_run(engine: Engine, run_id: int, *, writes_limit: int | None = None) -> dict[str, Any] | None:
    """One run, with the writes it made (from the audit table), or None."""
    with engine.connect() as connection:
        row = connection.execute(select(SyncRun).where(SyncRun.id == run_id)).first()
        if row is None:
            return None
        audit = (
            select(
                WritebackAudit.remote_id,
                WritebackAudit.field,
                WritebackAudit.old_value,
                WritebackAudit.new_value,
                WritebackAudit.status,
                WritebackAudit.error,
                WritebackAudit.at,
                Identity.email,
            )
            .outerjoin(
                Identity,
                (Identity.source == WritebackAudit.source) & (Identity.remote_id == WritebackAudit.remote_id),
            )
            .where(WritebackAudit.run_id == run_id)
            .order_by(WritebackAudit.id)
        )
        if writes_limit is not None:
            audit = audit.limit(writes_limit)
        writes = [
            {
                "email": w.email,
                "remote_id": w.remote_id,
                "field": w.field,
                "old": w.old_value,
                "new": w.new_value,
                "status": w.status,
                "error": w.error,
                "at": _utc(w.at),
            }
            for w in connection.execute(audit).all()
        ]
        total = connection.execute(
            select(func.count()).select_from(WritebackAudit).where(WritebackAudit.run_id == run_id)
        ).scalar_one()
    return {**_as_dict(row), "writes_total": total, "writes": writes}


def prune_runs(engine: Engine, *, older_than: timedelta, now: datetime | None = None) -> int:
    """Delete finished runs that started before ``now - older_than``; returns how many. Their audit
    rows stay (the audit is the record of what was written)."""
    cutoff = (now or datetime.now(UTC)) - older_than
    with engine.begin() as connection:
        result = connection.execute(
            delete(SyncRun).where(SyncRun.started_at < cutoff, SyncRun.status != Outcome.RUNNING.value)
        )
    return int(result.rowcount or 0)
