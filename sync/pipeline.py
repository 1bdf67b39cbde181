"""The pipeline: pull every source (concurrently, each within its own limits), score, push.

Each step is usable on its own (``leadsync pull``, ``score``, ``push``) and ``sync`` runs the three.
A source that fails (bad credentials, platform down) is reported and the others go on; it catches
up on the next run from its last committed cursor. A source is only ever worked on under its lease.

A stop request (SIGTERM/SIGINT, ``connectors.stopping``) ends a pull or a push between two requests
(``Stopped``): its result says ``error="stopped"``, the pages and batches it committed stay, a
pull's cursor stays at the last committed page, and a push batch cut short keeps its PENDING mark.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import ExitStack, closing, nullcontext
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import orjson
from sqlalchemy import Engine, select

from leadsync.config.scoring_model import ScoringModel
from leadsync.config.settings import LeadsyncConfig, SourceConfig, resolve_source
from leadsync.connectors import stopping
from leadsync.connectors.base import Connector, PullBatch, PushReport
from leadsync.connectors.catalog import stream_order
from leadsync.connectors.errors import ConnectorError, LeadsyncError
from leadsync.connectors.gates import StreamGates
from leadsync.connectors.gates import bound as bound_gates
from leadsync.connectors.gcpause import collect_when_due, collector_paused
from leadsync.connectors.pools import ContextPool
from leadsync.connectors.readahead import read_ahead
from leadsync.connectors.registry import connector_class
from leadsync.connectors.retry import RetryStats, counting
from leadsync.sync.ingest import IngestCounts, ingest_batch
from leadsync.sync.lease import LeaseHeld, LeaseKeeper, holder_id
from leadsync.sync.rescore import rescore
from leadsync.sync.runs import (
    ALL_SOURCES,
    Outcome,
    Run,
    RunCounts,
    Step,
    Trigger,
    mark_interrupted,
    prune_runs,
    recorded_run,
)
from leadsync.sync.scorebatch import RescoreCounts
from leadsync.sync.store.db import STORE_OUTAGE_S, is_lost_connection, json_text, retry_lost_connection
from leadsync.sync.store.faults import StoreError
from leadsync.sync.store.marklock import MarkedContacts
from leadsync.sync.store.models import SyncCursor
from leadsync.sync.writeback import (
    Plan,
    PlannedWrite,
    adopt_values,
    diff_rows,
    first_persons,
    mark_pending,
    plan_source,
    record_push,
)

__all__ = [
    "PushResult",
    "Reporter",
    "SourceResult",
    "prune_history",
    "pull_source",
    "pull_sources",
    "pull_stream",
    "push_source",
    "push_sources",
    "score",
]

log = logging.getLogger("leadsync.pipeline")

#: Updates per connector.push call: each chunk is recorded once answered, while the next is sent.
PUSH_CHUNK = 1_000


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Reporter:
    """Callbacks the CLI uses for progress bars; all optional.

    ``stream_started(source, stream)`` when a stream's pull begins (a source's streams run side by
    side), ``reading(source, stream, batch)`` after each batch is stored (``batch.read``, ``.expected`` and
    ``.unit`` say how far the stream is), ``stream_done(source, stream)`` when a stream has been
    read to its end, ``source_done(source, ok)`` when a source's pull is over, however it ended.
    """

    pulled: Callable[[str, str, IngestCounts], None] | None = None
    stream_started: Callable[[str, str], None] | None = None
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
    deadlock_retries: int = 0  # pages retried after a deadlock (a backstop: sync.ingest)
    reconnects: int = 0  # pages retried after the store connection was lost
    held_by: str | None = None  # another process held the source's lease: nothing was pulled


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
    lifecycle_held: int = 0  # lifecycle promotions held back: a source of those persons failed to pull
    held_by: str | None = None  # another process held the source's lease: nothing was pushed


def selected_sources(config: LeadsyncConfig, names: Sequence[str]) -> list[SourceConfig]:
    if names:
        return [config.source(name) for name in names]
    return [source for source in config.sources if source.enabled]


def _begin(engine: Engine, source: str) -> str:
    """What every run does first: close the run records of processes that are gone (so ``status``
    never shows a dead process as syncing), and return the holder id the run and its lease share
    (``sync.runs.mark_interrupted`` matches a running record against its source's lease holder).
    Sent again on a new connection when the store's was lost (the UPDATE is idempotent)."""
    retry_lost_connection(
        partial(mark_interrupted, engine, source=source), what=f"closing stale runs of {source}"
    )
    return holder_id()


def prune_history(engine: Engine, config: LeadsyncConfig) -> int:
    """Delete the run records older than ``[history] keep_days`` (done at the start of pipeline
    commands and of each daemon cycle)."""
    pruned = prune_runs(engine, older_than=timedelta(days=config.history.keep_days))
    if pruned:
        log.info("pruned %d run records older than %d days", pruned, config.history.keep_days)
    return pruned


def load_cursor(engine: Engine, source: str, stream: str) -> Any:
    with engine.connect() as connection:
        return connection.execute(
            select(SyncCursor.value).where(SyncCursor.source == source, SyncCursor.stream == stream)
        ).scalar_one_or_none()


def _connector(config: LeadsyncConfig, source: SourceConfig, environ: Mapping[str, str] | None) -> Connector:
    settings = resolve_source(config, source, environ)
    return connector_class(source.platform)(settings)


def as_handed_over(batches: Iterator[PullBatch]) -> Iterator[PullBatch]:
    """``batches`` with each one's cursor copied as the store will hold it (a JSON round trip), at
    the moment the connector hands the batch over. The connector reads on while the batch is
    ingested (read-ahead) and may change what its cursor refers to: a cursor committed with those
    changes would claim records that are not stored yet. Seen: HubSpot's contacts cursor shares its
    per-contact counters with the next page's reading; a worker killed after that commit lost the
    next page's page-view and form events (4,094 of 24,410) for good."""
    try:
        for batch in batches:
            if batch.cursor is not None:
                batch.cursor = orjson.loads(json_text(batch.cursor))
            yield batch
    finally:  # a stop closes this generator: close the connector's with it
        close = getattr(batches, "close", None)
        if close is not None:
            close()


def pull_stream(
    engine: Engine,
    connector: Connector,
    source: str,
    stream: str,
    *,
    full: bool = False,
    ingest: Callable[..., IngestCounts] = ingest_batch,
    stored: Callable[[PullBatch], None] | None = None,
    marked: MarkedContacts | None = None,
) -> Iterator[IngestCounts]:
    """One stream from its committed cursor: each batch ingested with its cursor, in order, while the
    connector reads the next one (``connectors.readahead``). Close it to stop between pages. ``ingest`` is
    ``sync.ingest.ingest_batch`` (the bench passes a timed wrapper); ``stored(batch)`` is called
    after each batch is stored (progress). The echoes of leadsync's own writes the ingest finds are
    passed on to the connector (``Connector.note_echoes``). ``marked``: the contacts whose persons
    this pull has marked for re-scoring already (shared by a source's streams; a new one if None)."""
    cursor = None if full else load_cursor(engine, source, stream)
    marked = marked if marked is not None else MarkedContacts()
    with closing(
        read_ahead(as_handed_over(connector.pull(stream, cursor, full=full)), name=f"pull-{source}-{stream}")
    ) as batches:
        for batch in batches:
            counts = ingest(engine, batch, source=source, now=utcnow(), marked=marked)
            collect_when_due()  # a long pull in a paused stretch frees its cycles as it goes
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
    trigger: Trigger = Trigger.COMMAND,
    ingest: Callable[..., IngestCounts] = ingest_batch,
) -> SourceResult:
    """Pull every selected stream of ``source`` under its lease, recorded as a pull run. The run
    record is opened once the lease is held and closed before it is let go, so two runs of one
    source never overlap in the history; a standby refused by the lease records no run.
    ``ingest``: ``sync.ingest.ingest_batch`` (the bench passes a timed wrapper)."""
    result = SourceResult(source.name)
    stop = stop if stop is not None else stopping.event()
    started = time.monotonic()
    holder = _begin(engine, source.name)
    with ExitStack() as held:
        lease = _take_lease(held, engine, source.name, holder, result, "pull of")
        if lease is None:
            result.seconds = time.monotonic() - started
            if reporter and reporter.source_done:
                reporter.source_done(source.name, result.ok)
            return result
        with recorded_run(
            engine,
            source=source.name,
            step=Step.PULL,
            trigger=trigger,
            command=_command(Step.PULL, trigger),
            worker=holder,
        ) as run:
            counts = run.counts
            try:
                # the whole pull, not page by page: the pages in flight, the campaigns' items and
                # the batches queued for ingest are alive at any moment, and every collection
                # walked them again (about 45 a Mailchimp pull, a tenth of its CPU, issue 23);
                # pull_stream collects the young generations every COLLECT_EVERY_S (gcpause)
                with _connector(config, source, environ) as connector, collector_paused():
                    try:
                        _pull_streams(
                            engine, connector, source, result, counts, lease, full, stop, reporter, ingest
                        )
                    finally:
                        counts.add_requests({}, connector.request_counts())
            except stopping.Stopped:  # logged with its stream where it was raised
                result.error = "stopped"
            except Exception as exc:  # noqa: BLE001 - reported (with traceback in the log), never hidden
                result.ok, result.error = _failure("pull of", source.name, exc)
            finally:
                result.seconds = time.monotonic() - started
                counts.contacts, counts.events, counts.quarantined = (
                    result.contacts,
                    result.events,
                    result.quarantined,
                )
                counts.upserted = result.contacts + result.events
                counts.records_read = counts.upserted + result.quarantined
                counts.deadlock_retries, counts.reconnects = result.deadlock_retries, result.reconnects
            if result.error == "stopped":
                run.outcome = Outcome.STOPPED
            elif not result.ok:
                run.error = result.error
    if reporter and reporter.source_done:
        reporter.source_done(source.name, result.ok)
    return result


def _take_lease(
    held: ExitStack,
    engine: Engine,
    source: str,
    holder: str,
    result: SourceResult | PushResult,
    what: str,
    *,
    lease: str | None = None,
) -> LeaseKeeper | None:
    """The source's lease (or ``lease``), held until ``held`` closes; None when another process holds
    it (a standby's normal answer: one INFO line naming the holder, no traceback, no run recorded)."""
    try:
        return held.enter_context(LeaseKeeper(engine, lease or f"source:{source}", holder=holder))
    except LeaseHeld as exc:
        result.ok, result.error, result.held_by = False, str(exc), exc.holder
        log.info(
            "%s %s skipped: it is being synced by %s until %s UTC; trying again next run",
            what,
            source,
            exc.holder,
            f"{exc.expires_at:%H:%M:%S}",
        )
        return None


def _failure(what: str, source: str, exc: Exception) -> tuple[bool, str]:
    """``(ok, error)`` of a step that raised: a stop request (``Stopped``, raised where a wait was
    cut short) is not a failure; a store fault is raised on (the command stops with it, exit 2);
    leadsync's other errors are one line; anything else is logged with its traceback, never
    hidden."""
    if type(exc).__name__ == "Stopped":
        return True, "stopped"
    if isinstance(exc, StoreError):
        raise exc  # the store itself failed: no other step or source can go on (exit 2)
    if is_lost_connection(exc):  # what was committed stays; the next run resumes from its cursor
        error = f"lost the store connection: {_first_line(exc)}"
        log.error("%s %s stopped: %s", what, source, error)
        return False, error
    if isinstance(exc, (ConnectorError, LeadsyncError)):
        log.error("%s %s failed: %s", what, source, exc)
        return False, str(exc)
    log.exception("%s %s failed unexpectedly", what, source)
    return False, f"unexpected {type(exc).__name__}: {exc}"


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _command(step: Step, trigger: Trigger) -> str:
    """The ``command`` of a run record: the daemon's runs say so, a command's name their step."""
    return "daemon" if trigger is Trigger.DAEMON else step.value


def _pull_streams(
    engine: Engine,
    connector: Connector,
    source: SourceConfig,
    result: SourceResult,
    counts: RunCounts,
    lease: LeaseKeeper,
    full: bool,
    stop: threading.Event | None,
    reporter: Reporter | None,
    ingest_page: Callable[..., IngestCounts] = ingest_batch,
) -> None:
    """Every selected stream of the source, side by side: a stream starts once the streams it
    follows (``connectors.catalog.StreamInfo.after``) have been read to their end, so a pull takes
    about its longest chain of streams, not their sum; a stream that only links its records with
    another's (``StreamInfo.links``) starts at once and waits for it in ``connectors.gates``. The
    connector's limiter holds them all to the platform's budget (HubSpot's search has its own,
    hubspot.md §2.5). Their pages are stored one at a time (one writer per source, the lock order
    of ``sync.ingest`` unchanged). A stream that fails, a stop request or a lost lease ends the
    others between pages, and the first error is raised once they have."""
    streams = connector.selected_streams()
    after = stream_order(connector.platform, streams)
    marked = MarkedContacts()  # one pull: what the contacts stream marked, its events need not mark again
    writer = threading.Lock()
    tallied = threading.Lock()
    halt = threading.Event()  # the other streams end between pages
    gates = StreamGates(streams)  # a stream that links its records with another's waits here

    def ingest(*args: Any, **kwargs: Any) -> IngestCounts:
        with writer:
            return ingest_page(*args, **kwargs)

    def pulled(stream: str, batch: IngestCounts) -> None:
        with tallied:
            measured = counts.streams[stream]
            measured["records"] += batch.contacts + batch.events
            result.contacts += batch.contacts
            result.events += batch.events
            result.quarantined += batch.quarantined
            result.deadlock_retries += batch.deadlock_retries
            result.reconnects += batch.reconnects
        if reporter and reporter.pulled:
            reporter.pulled(source.name, stream, batch)

    def ended() -> bool:
        return halt.is_set() or bool(stop and stop.is_set()) or lease.lost.is_set()

    def pull_one(stream: str) -> bool:
        """The stream to its end (True), or to a page where the pull was ended (False)."""
        requests = RetryStats()  # this stream's requests (connectors.retry.counting)
        stored = partial(reporter.reading, source.name, stream) if reporter and reporter.reading else None
        lost_since: float | None = None
        with tallied:  # per stream: requests and records of this run (``leadsync streams``)
            counts.add_stream(stream)
        if reporter and reporter.stream_started:
            reporter.stream_started(source.name, stream)
        try:
            with counting(requests), bound_gates(gates):
                while True:  # once; again from the last committed cursor after a lost store connection
                    try:
                        with closing(
                            pull_stream(
                                engine,
                                connector,
                                source.name,
                                stream,
                                full=full,
                                ingest=ingest,
                                stored=stored,
                                marked=marked,
                            )
                        ) as pages:
                            for batch in pages:
                                lost_since = None
                                pulled(stream, batch)
                                # Stop between pages: what is committed stays, the rest comes next run.
                                if ended():
                                    return False
                        return True
                    except Exception as exc:
                        # a connection lost outside a page's own retries (reading the cursor): the
                        # stream resumes from its last committed cursor, for up to STORE_OUTAGE_S
                        lost_since = lost_since or time.monotonic()
                        if not is_lost_connection(exc) or time.monotonic() - lost_since > STORE_OUTAGE_S:
                            raise
                        with tallied:
                            result.reconnects += 1
                        log.warning("%s: lost the store connection reading %s; resuming", source.name, stream)
                        if (stop if stop is not None else stopping.event()).wait(0.5):
                            raise
        except stopping.Stopped as stop_request:  # mid page: read again next run, the cursor is before it
            log.info("pull of %s stopped in stream %s: %s", source.name, stream, stop_request)
            raise
        finally:
            gates.end(stream)
            with tallied:
                counts.streams[stream]["requests"] = requests.attempts

    waiting, done = list(streams), set()
    failure: BaseException | None = None
    with ThreadPoolExecutor(max_workers=len(streams) or 1, thread_name_prefix=f"pull-{source.name}") as pool:
        running: dict[Future[bool], str] = {}
        while waiting or running:
            for stream in [s for s in waiting if after[s] <= done and not ended()]:
                waiting.remove(stream)
                running[pool.submit(pull_one, stream)] = stream
            if not running:
                break
            if ended():
                gates.end_all()  # a stream that will not start now must hold no other up
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                stream = running.pop(future)
                try:
                    if future.result():
                        done.add(stream)
                        if reporter and reporter.stream_done:
                            reporter.stream_done(source.name, stream)
                except BaseException as exc:  # noqa: BLE001 - raised below, once the others have ended
                    failure = failure or exc
                    halt.set()
                    gates.end_all()
    if failure is not None:
        raise failure
    if (stop and stop.is_set()) or lease.lost.is_set():
        result.ok = not lease.lost.is_set()
        result.error = "lost the lease" if lease.lost.is_set() else "stopped"


def pull_sources(
    engine: Engine,
    config: LeadsyncConfig,
    names: Sequence[str] = (),
    *,
    full: bool = False,
    stop: threading.Event | None = None,
    reporter: Reporter | None = None,
    trigger: Trigger = Trigger.COMMAND,
) -> list[SourceResult]:
    """Pull the sources concurrently: each platform's limits are separate, so they do not compete."""
    sources = selected_sources(config, names)
    environ = dict(os.environ)
    if not sources:
        return []
    with ThreadPoolExecutor(max_workers=len(sources), thread_name_prefix="pull") as pool:
        futures = [
            pool.submit(
                pull_source,
                engine,
                config,
                source,
                full=full,
                stop=stop,
                reporter=reporter,
                environ=environ,
                trigger=trigger,
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
    trigger: Trigger = Trigger.COMMAND,
) -> RescoreCounts:
    """Re-score the persons whose data changed (``everyone``: all), recorded as a score run of
    every source (``sync.runs.ALL_SOURCES``)."""
    holder = _begin(engine, ALL_SOURCES)
    with recorded_run(
        engine,
        source=ALL_SOURCES,
        step=Step.SCORE,
        trigger=trigger,
        command=_command(Step.SCORE, trigger),
        worker=holder,
    ) as run:
        now = now or utcnow()
        # a lost store connection (a restarted server) re-runs the re-score, which is idempotent:
        # the batches committed before cleared their marks, the rest are still marked
        counts = retry_lost_connection(
            lambda: rescore(
                engine,
                model,
                now=now,
                everyone=everyone,
                progress=reporter.scored if reporter else None,
                planned=reporter.scoring if reporter else None,
            ),
            what="the re-score",
        )
        run.counts.persons_scored, run.counts.persons_changed = counts.scored, counts.changed
    return counts


def plan_push(
    engine: Engine,
    config: LeadsyncConfig,
    source: SourceConfig,
    *,
    now: datetime,
    hold_lifecycle_of: Sequence[str] = (),
) -> Plan:
    """What a push of ``source`` would write now, from the store alone (largest change first).
    ``hold_lifecycle_of``: sources whose pull failed in this run (``sync.writeback.plan_source``).
    Read again on a new connection when the store's was lost (it only reads)."""

    def plan() -> Plan:
        with engine.connect() as connection:
            return plan_source(
                connection,
                source.name,
                prefix=config.writeback.field_prefix,
                lifecycle_writeback=config.writeback.lifecycle,
                now=now,
                on_drift=config.writeback.on_drift,
                hold_lifecycle_of=hold_lifecycle_of,
            )

    return retry_lost_connection(plan, what=f"planning the push to {source.name}")


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
    trigger: Trigger = Trigger.COMMAND,
    connector: Connector | None = None,
    lease: str | None = None,
) -> PushResult:
    """Push ``source``'s planned writes (``plan``: already made, e.g. cut by ``--limit``), recorded
    as a push run (a dry run, or a push with nothing to write, makes no request and records none).
    ``connector``: one the caller keeps open between pushes (the webhook fast path), else a new one;
    ``lease``: the lease to hold (default the source's: the webhook fast path holds its own, so
    that it never makes a scheduled run of the source wait or skip)."""
    result = PushResult(source.name, dry_run=dry_run)
    now = now or utcnow()
    if plan is None:
        plan = plan_push(engine, config, source, now=now)
    _plan_result(source, plan, result, reporter)
    if dry_run:
        result.diff = diff_rows(source.name, source.platform.value, plan.writes)
        return result
    retry_lost_connection(  # an upsert: idempotent
        partial(adopt_values, engine, source.name, plan.adopt, now=now), what=f"push to {source.name}"
    )
    if not plan.writes:
        return result  # nothing to write: no request, no run recorded (the daemon pushes every cycle)
    holder = _begin(engine, source.name)
    with ExitStack() as held:
        if _take_lease(held, engine, source.name, holder, result, "push to", lease=lease) is None:
            return result
        with recorded_run(
            engine,
            source=source.name,
            step=Step.PUSH,
            trigger=trigger,
            command=_command(Step.PUSH, trigger),
            worker=holder,
        ) as run:
            run.counts.planned = result.planned
            try:
                _push_plan(engine, source, config, plan, result, run, environ, reporter, connector)
            except stopping.Stopped as stop_request:  # mid chunk: it stays PENDING, sent in full next time
                result.error = "stopped"
                log.info("push to %s stopped after %d writes: %s", source.name, result.written, stop_request)
            except Exception as exc:  # noqa: BLE001 - reported (with traceback in the log), never hidden
                result.ok, result.error = _failure("push to", source.name, exc)
            run.counts.written, run.counts.write_failures = result.written, result.failed
            if result.error == "stopped":
                run.outcome = Outcome.STOPPED
            elif not result.ok:
                run.error = result.error
    return result


def _plan_result(source: SourceConfig, plan: Plan, result: PushResult, reporter: Reporter | None) -> None:
    result.planned = len(plan.writes)
    result.lifecycle_held = plan.lifecycle_held
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
        reporter.pushing(source.name, len(plan.writes))


def _push_plan(
    engine: Engine,
    source: SourceConfig,
    config: LeadsyncConfig,
    plan: Plan,
    result: PushResult,
    run: Run,
    environ: Mapping[str, str] | None,
    reporter: Reporter | None,
    connector: Connector | None = None,
) -> None:
    """Send ``plan``'s writes in chunks, each recorded as it is answered (the caller holds the lease).
    ``connector``: an open one to use (and leave open), else a new one for this push.

    A chunk is marked pending before it is sent; it is recorded while the next chunk is sent, so the
    platform's connections are not left idle while the store records (1,000 Mailchimp writes took
    0.14-0.15 s to record, between chunks of 5.7 s: issue 23's push profile). A chunk is recorded
    before the push stops or fails, whatever stopped it; one that cannot be recorded stays pending
    and is sent in full next time."""
    plans = plan.writes

    def record(chunk: Sequence[PlannedWrite], report: PushReport) -> None:
        # a transaction of its own, sent again on a new connection when the store's was lost (as
        # the pull's pages and the re-score are): the platform's answer is kept
        retry_lost_connection(
            partial(record_push, engine, source.name, chunk, report, run_id=run.id, now=utcnow()),
            what=f"push to {source.name}",
        )
        result.written += len(report.written)
        result.failed += len(report.failed)
        result.requests += report.requests
        if reporter and reporter.pushed:
            reporter.pushed(source.name, len(chunk))

    answered: tuple[Sequence[PlannedWrite], PushReport] | None = None  # sent, not recorded yet
    with (
        nullcontext(connector) if connector is not None else _connector(config, source, environ) as connector,
        ContextPool(max_workers=1, thread_name_prefix=f"push-{source.name}") as sender,
    ):
        try:
            connector.ensure_fields()
            for start in range(0, len(plans), PUSH_CHUNK):
                stopping.check()
                chunk = plans[start : start + PUSH_CHUNK]
                retry_lost_connection(
                    partial(mark_pending, engine, source.name, chunk, now=utcnow()),
                    what=f"push to {source.name}",
                )
                sending = sender.submit(connector.push, [write.update for write in chunk])
                try:
                    if answered is not None:
                        previous, answered = answered, None
                        record(*previous)
                finally:
                    report = sending.result()  # never left running, whatever recording did
                answered = (chunk, report)
        finally:
            try:
                if answered is not None:
                    record(*answered)
            finally:
                run.counts.add_requests({}, connector.request_counts())


def push_sources(
    engine: Engine,
    config: LeadsyncConfig,
    names: Sequence[str] = (),
    *,
    dry_run: bool = False,
    reporter: Reporter | None = None,
    limit: int | None = None,
    trigger: Trigger = Trigger.COMMAND,
    failed_pulls: Sequence[str] = (),
) -> list[PushResult]:
    """Push the sources side by side. ``limit``: write at most that many persons over all of them,
    largest score change first; the rest stay planned for the next push (a safe first rollout).
    ``failed_pulls``: the sources whose pull failed in this run; their persons get no lifecycle
    promotion now, on any platform (``sync.writeback.plan_source``)."""
    sources = selected_sources(config, names)
    environ = dict(os.environ)
    if not sources:
        return []
    now = utcnow()
    plans = {
        source.name: plan_push(engine, config, source, now=now, hold_lifecycle_of=failed_pulls)
        for source in sources
    }
    for name, plan in plans.items():
        if plan.lifecycle_held:
            log.warning(
                "%s: %d lifecycle promotions held back until %s pulls again (the pull failed)",
                name,
                plan.lifecycle_held,
                ", ".join(failed_pulls),
            )
    held_back: dict[str, int] = {}
    if limit is not None:
        chosen = first_persons([write for plan in plans.values() for write in plan.writes], limit)
        for name, plan in plans.items():
            kept = [write for write in plan.writes if write.person_id in chosen]
            held_back[name] = len(plan.writes) - len(kept)
            plans[name] = Plan(
                writes=kept, drift=plan.drift, adopt=plan.adopt, lifecycle_held=plan.lifecycle_held
            )
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
                trigger=trigger,
            )
            for source in sources
        ]
        results = [future.result() for future in futures]
    for result in results:
        result.held_back = held_back.get(result.source, 0)
    return results
