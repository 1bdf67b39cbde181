"""The pipeline: pull every source (concurrently, each within its own limits), score, push.

Each step is usable on its own (``leadsync pull``, ``score``, ``push``) and ``sync`` runs the three.
A source that fails (bad credentials, platform down) is reported and the others go on; it catches
up on the next run from its last committed cursor. A source is only ever worked on under its lease.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing, nullcontext
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

from sqlalchemy import Engine, select, update

from leadsync.config.scoring_model import ScoringModel
from leadsync.config.settings import LeadsyncConfig, SourceConfig, resolve_source
from leadsync.connectors.base import Connector, PullBatch, PushReport
from leadsync.connectors.errors import ConnectorError, LeadsyncError
from leadsync.connectors.registry import connector_class
from leadsync.sync.ingest import IngestCounts, ingest_batch
from leadsync.sync.lease import LeaseKeeper
from leadsync.sync.readahead import read_ahead
from leadsync.sync.rescore import rescore
from leadsync.sync.scorebatch import RescoreCounts
from leadsync.sync.store.models import SyncCursor, SyncRun
from leadsync.sync.writeback import (
    Plan,
    adopt_values,
    diff_rows,
    first_persons,
    mark_pending,
    plan_source,
    record_push,
)

__all__ = ["PushResult", "Reporter", "SourceResult", "pull_sources", "pull_stream", "push_sources", "score"]

log = logging.getLogger("leadsync.pipeline")

PUSH_CHUNK = 1_000  # updates per connector.push call: state is recorded after each chunk


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Reporter:
    """Callbacks the CLI uses for progress bars; all optional.

    ``reading(source, stream, batch)`` after each batch is stored (``batch.read``, ``.expected`` and
    ``.unit`` say how far the stream is), ``stream_done(source, stream)`` when a stream has been
    read to its end, ``source_done(source, ok)`` when a source's pull is over, however it ended.
    """

    pulled: Callable[[str, str, IngestCounts], None] | None = None
    reading: Callable[[str, str, PullBatch], None] | None = None
    scoring: Callable[[int], None] | None = None  # how many persons the re-score takes on
    stream_done: Callable[[str, str], None] | None = None
    source_done: Callable[[str, bool], None] | None = None
    scored: Callable[[int], None] | None = None
    pushing: Callable[[str, int], None] | None = None  # total planned for a source
    pushed: Callable[[str, int], None] | None = None


@dataclass
class SourceResult:
    source: str
    ok: bool = True
    contacts: int = 0
    events: int = 0
    quarantined: int = 0
    seconds: float = 0.0
    error: str | None = None


@dataclass
class PushResult:
    """One source's push. ``held_back``: planned writes left for a later push by ``--limit``;
    ``diff``: with ``dry_run``, one row per field to write (``sync.writeback.diff_rows``); ``drift``:
    values of leadsync's that someone else changed on the platform, written again or reported."""

    source: str
    ok: bool = True
    planned: int = 0
    written: int = 0
    failed: int = 0
    requests: int = 0
    dry_run: bool = False
    held_back: int = 0
    diff: list[dict[str, Any]] = field(default_factory=list)
    drift: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None


def selected_sources(config: LeadsyncConfig, names: Sequence[str]) -> list[SourceConfig]:
    if names:
        return [config.source(name) for name in names]
    return [source for source in config.sources if source.enabled]


def _start_run(engine: Engine, source: str, command: str, now: datetime) -> int:
    with engine.begin() as connection:
        result = connection.execute(
            SyncRun.__table__.insert().values(
                source=source, command=command, started_at=now, status="running", counts={}
            )  # type: ignore[attr-defined]
        )
        return int(result.inserted_primary_key[0])  # type: ignore[index]


def _finish_run(
    engine: Engine, run_id: int, *, ok: bool, counts: Mapping[str, Any], error: str | None
) -> None:
    with engine.begin() as connection:
        connection.execute(
            update(SyncRun)
            .where(SyncRun.id == run_id)
            .values(finished_at=utcnow(), status="ok" if ok else "failed", counts=dict(counts), error=error)
        )


def load_cursor(engine: Engine, source: str, stream: str) -> Any:
    with engine.connect() as connection:
        return connection.execute(
            select(SyncCursor.value).where(SyncCursor.source == source, SyncCursor.stream == stream)
        ).scalar_one_or_none()


def _connector(config: LeadsyncConfig, source: SourceConfig, environ: Mapping[str, str] | None) -> Connector:
    settings = resolve_source(config, source, environ)
    return connector_class(source.platform)(settings)


def pull_stream(
    engine: Engine,
    connector: Connector,
    source: str,
    stream: str,
    *,
    full: bool = False,
    ingest: Callable[..., IngestCounts] = ingest_batch,
    stored: Callable[[PullBatch], None] | None = None,
) -> Iterator[IngestCounts]:
    """One stream from its committed cursor: each batch ingested with its cursor, in order, while the
    connector reads the next one (``sync.readahead``). Close it to stop between pages. ``ingest`` is
    ``sync.ingest.ingest_batch`` (the bench passes a timed wrapper); ``stored(batch)`` is called
    after each batch is stored (progress). The echoes of leadsync's own writes the ingest finds are
    passed on to the connector (``Connector.note_echoes``)."""
    cursor = None if full else load_cursor(engine, source, stream)
    with closing(
        read_ahead(connector.pull(stream, cursor, full=full), name=f"pull-{source}-{stream}")
    ) as batches:
        for batch in batches:
            counts = ingest(engine, batch, source=source, now=utcnow())
            if counts.echoes:  # contacts that changed only by our own write: no follow-up reads
                connector.note_echoes(counts.echoes)
            if stored is not None:
                stored(batch)
            yield counts


def pull_source(
    engine: Engine,
    config: LeadsyncConfig,
    source: SourceConfig,
    *,
    full: bool = False,
    stop: threading.Event | None = None,
    reporter: Reporter | None = None,
    environ: Mapping[str, str] | None = None,
) -> SourceResult:
    result = SourceResult(source.name)
    started = time.monotonic()
    run_id = _start_run(engine, source.name, "pull", utcnow())
    # per stream: requests and records of this run (``leadsync streams`` shows the cost per run)
    streams: dict[str, dict[str, int]] = {}
    try:
        with (
            LeaseKeeper(engine, f"source:{source.name}") as lease,
            _connector(config, source, environ) as connector,
        ):
            for stream in connector.selected_streams():
                before = connector.request_counts()["requests"]
                measured = streams.setdefault(stream, {"requests": 0, "records": 0})
                stored = (
                    partial(reporter.reading, source.name, stream) if reporter and reporter.reading else None
                )
                with closing(
                    pull_stream(engine, connector, source.name, stream, full=full, stored=stored)
                ) as pages:
                    for counts in pages:
                        measured["records"] += counts.contacts + counts.events
                        measured["requests"] = connector.request_counts()["requests"] - before
                        result.contacts += counts.contacts
                        result.events += counts.events
                        result.quarantined += counts.quarantined
                        if reporter and reporter.pulled:
                            reporter.pulled(source.name, stream, counts)
                        # Stop between pages: what is committed stays committed, the rest comes next run.
                        if (stop and stop.is_set()) or lease.lost.is_set():
                            break
                measured["requests"] = connector.request_counts()["requests"] - before
                if (stop and stop.is_set()) or lease.lost.is_set():
                    result.ok = not lease.lost.is_set()
                    result.error = "lost the lease" if lease.lost.is_set() else "stopped"
                    break
                if reporter and reporter.stream_done:
                    reporter.stream_done(source.name, stream)
    except LeadsyncError as exc:
        result.ok, result.error = False, str(exc)
        log.error("pull of %s failed: %s", source.name, exc)
    except Exception as exc:  # noqa: BLE001 - reported (with traceback in the log), never hidden
        result.ok, result.error = False, f"unexpected {type(exc).__name__}: {exc}"
        log.exception("pull of %s failed unexpectedly", source.name)
    result.seconds = time.monotonic() - started
    if reporter and reporter.source_done:
        reporter.source_done(source.name, result.ok)
    _finish_run(
        engine,
        run_id,
        ok=result.ok,
        counts={
            "contacts": result.contacts,
            "events": result.events,
            "quarantined": result.quarantined,
            "streams": streams,
        },
        error=result.error,
    )
    return result


def pull_sources(
    engine: Engine,
    config: LeadsyncConfig,
    names: Sequence[str] = (),
    *,
    full: bool = False,
    stop: threading.Event | None = None,
    reporter: Reporter | None = None,
) -> list[SourceResult]:
    """Pull the sources concurrently: each platform's limits are separate, so they do not compete."""
    sources = selected_sources(config, names)
    environ = dict(os.environ)
    if not sources:
        return []
    with ThreadPoolExecutor(max_workers=len(sources), thread_name_prefix="pull") as pool:
        futures = [
            pool.submit(
                pull_source, engine, config, source, full=full, stop=stop, reporter=reporter, environ=environ
            )
            for source in sources
        ]
        return [future.result() for future in futures]


def score(
    engine: Engine,
    model: ScoringModel,
    *,
    now: datetime | None = None,
    everyone: bool = False,
    reporter: Reporter | None = None,
) -> RescoreCounts:
    return rescore(
        engine,
        model,
        now=now or utcnow(),
        everyone=everyone,
        progress=reporter.scored if reporter else None,
        planned=reporter.scoring if reporter else None,
    )


def plan_push(engine: Engine, config: LeadsyncConfig, source: SourceConfig, *, now: datetime) -> Plan:
    """What a push of ``source`` would write now, from the store alone (largest change first)."""
    with engine.connect() as connection:
        return plan_source(
            connection,
            source.name,
            prefix=config.writeback.field_prefix,
            lifecycle_writeback=config.writeback.lifecycle,
            now=now,
            on_drift=config.writeback.on_drift,
        )


def push_source(
    engine: Engine,
    config: LeadsyncConfig,
    source: SourceConfig,
    *,
    dry_run: bool = False,
    reporter: Reporter | None = None,
    environ: Mapping[str, str] | None = None,
    plan: Plan | None = None,
    now: datetime | None = None,
    connector: Connector | None = None,
    lease: str | None = None,
) -> PushResult:
    """Push ``source``'s planned writes (``plan``: already made, e.g. cut by ``--limit``).
    ``connector``: one the caller keeps open between pushes (the webhook fast path), else a new one;
    ``lease``: the lease to hold (default the source's: the webhook fast path holds its own, so
    that it never makes a scheduled run of the source wait or skip)."""
    result = PushResult(source.name, dry_run=dry_run)
    now = now or utcnow()
    if plan is None:
        plan = plan_push(engine, config, source, now=now)
    plans = plan.writes
    result.planned = len(plans)
    result.drift = [asdict(drift) for drift in plan.drift]
    for drift in plan.drift:
        log.warning(
            "%s: %s of %s was changed on the platform since leadsync wrote it (%r, was %r): %s",
            source.name,
            drift.field,
            drift.remote_id,
            drift.theirs,
            drift.ours,
            "writing it again" if drift.action == "rewrite" else "left as it is (on_drift = report)",
        )
    if reporter and reporter.pushing:
        reporter.pushing(source.name, len(plans))
    if dry_run:
        result.diff = diff_rows(source.name, source.platform.value, plans)
        return result
    adopt_values(engine, source.name, plan.adopt, now=now)
    if not plans:
        return result
    run_id = _start_run(engine, source.name, "push", now)
    try:
        with (
            LeaseKeeper(engine, lease or f"source:{source.name}"),
            nullcontext(connector)
            if connector is not None
            else _connector(config, source, environ) as connector,
        ):
            connector.ensure_fields()
            for start in range(0, len(plans), PUSH_CHUNK):
                chunk = plans[start : start + PUSH_CHUNK]
                mark_pending(engine, source.name, chunk, now=utcnow())
                report: PushReport = connector.push([plan.update for plan in chunk])
                record_push(engine, source.name, chunk, report, run_id=run_id, now=utcnow())
                result.written += len(report.written)
                result.failed += len(report.failed)
                result.requests += report.requests
                if reporter and reporter.pushed:
                    reporter.pushed(source.name, len(chunk))
    except (ConnectorError, LeadsyncError) as exc:
        result.ok, result.error = False, str(exc)
        log.error("push to %s failed: %s", source.name, exc)
    except Exception as exc:  # noqa: BLE001 - reported (with traceback in the log), never hidden
        result.ok, result.error = False, f"unexpected {type(exc).__name__}: {exc}"
        log.exception("push to %s failed unexpectedly", source.name)
    _finish_run(
        engine,
        run_id,
        ok=result.ok,
        counts={
            "planned": result.planned,
            "written": result.written,
            "failed": result.failed,
            "requests": result.requests,
        },
        error=result.error,
    )
    return result


def push_sources(
    engine: Engine,
    config: LeadsyncConfig,
    names: Sequence[str] = (),
    *,
    dry_run: bool = False,
    reporter: Reporter | None = None,
    limit: int | None = None,
) -> list[PushResult]:
    """Push the sources side by side. ``limit``: write at most that many persons over all of them,
    largest score change first; the rest stay planned for the next push (a safe first rollout)."""
    sources = selected_sources(config, names)
    environ = dict(os.environ)
    if not sources:
        return []
    now = utcnow()
    plans = {source.name: plan_push(engine, config, source, now=now) for source in sources}
    held_back: dict[str, int] = {}
    if limit is not None:
        chosen = first_persons([write for plan in plans.values() for write in plan.writes], limit)
        for name, plan in plans.items():
            kept = [write for write in plan.writes if write.person_id in chosen]
            held_back[name] = len(plan.writes) - len(kept)
            plans[name] = Plan(writes=kept, drift=plan.drift, adopt=plan.adopt)
    with ThreadPoolExecutor(max_workers=len(sources), thread_name_prefix="push") as pool:
        futures = [
            pool.submit(
                push_source,
                engine,
                config,
                source,
                dry_run=dry_run,
                reporter=reporter,
                environ=environ,
                plan=plans[source.name],
                now=now,
            )
            for source in sources
        ]
        results = [future.result() for future in futures]
    for result in results:
        result.held_back = held_back.get(result.source, 0)
    return results
