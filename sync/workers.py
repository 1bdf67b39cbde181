"""Workers on many machines through Procrastinate (``[engine] kind = "procrastinate"``).

Procrastinate is a task queue on PostgreSQL: its tables live in the store's own database, so the
workers need nothing but the store URL. What runs where:

* ``sync_source(source)``: one source's pull, then the re-score of the persons that changed, then
  that source's push (the same ``sync.pipeline`` steps as ``leadsync sync`` and the daemon). It is
  deferred with Procrastinate's ``lock`` and ``queueing_lock`` both ``source:<name>``: the lock lets
  one job of a source run at a time over every worker, the queueing lock keeps at most one waiting.
  The source's lease (``sync.lease``) is still taken inside, so a ``leadsync sync`` or a daemon on
  the same store never overlaps a worker either.
* ``schedule`` (periodic, every ``TICK_SECONDS``): defers ``sync_source`` for each enabled source
  whose last run started at least its interval ago (``[schedule] interval`` or the source's own).
  Procrastinate defers a periodic task once per tick whatever the number of workers.
* ``retry_stalled`` (periodic): a worker killed with SIGKILL leaves its job ``doing``; Procrastinate
  workers send heartbeats, and a job whose worker stopped sending them is handed back to the queue,
  as Procrastinate's "Retry stalled jobs" how-to describes
  (https://procrastinate.readthedocs.io/en/main/howto/production/retry_stalled_jobs.html). The
  retried job starts over from the source's committed cursors and takes over the dead process's
  lease (``sync.lease.process_gone`` on the same host, else after the lease's expiry).
* ``score_range(pass_id, index, persons, now)``: a large re-score cut into person ranges. When a
  sync job finds more persons to re-score than ``[engine] score_range``, it defers one job per
  ``score_range`` persons (each with the Procrastinate ``lock`` ``score-range:<pass>:<index>``, so a
  range never runs twice at once, even when a stalled one is handed back) and a ``finish_source``
  job for its own push. Any worker takes the ranges. Each is recorded as a score run.
* ``finish_source(source)``: the rest of a sync job whose re-score was split: it waits until no
  range job is pending (it raises ``RangesPending``, which its own retry strategy answers with a
  retry of the same job in a second: "Implementing your own strategy" in Procrastinate's
  https://procrastinate.readthedocs.io/en/stable/howto/advanced/retry.html), scores who changed
  since (normally nobody) and pushes. It has the source's lock; jobs sharing a lock run one at a
  time, oldest first ("Ensure jobs run sequentially and in order",
  https://procrastinate.readthedocs.io/en/stable/howto/advanced/locks.html), so it starts after
  the sync job that deferred it, a later sync of the source waits for it, and a retry keeps its
  place. Jobs are deferred from inside a running sync job, as "Control the way synchronous calls
  to defer are handled" allows
  (https://procrastinate.readthedocs.io/en/stable/howto/advanced/sync_defer.html).

A failed job is retried with exponential back-off: 2, 4, 8, 16 s (``WorkerOptions.attempts`` tries
in all); so is a job cut short because its worker is stopping (SIGTERM), from where it stopped. Re-scoring is one
pass at a time over all workers (a PostgreSQL advisory lock): a pass scores every changed person,
so a job that waited finds little or nothing left to score. A split pass lasts until its last range
job is done: no new pass claims the change marks before (``RangesPending``), so two passes never
score one person at once, and a range job scores the persons its pass listed.

A range job killed mid way is handed back (``retry_stalled``) and goes on: its batches committed
their scores and cleared their marks; it skips the persons already scored at the pass's time
(``scored_at`` = the pass's ``now``, same model, no claimed mark left), so nobody is scored twice
and nobody is lost.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

from sqlalchemy import Engine, exists, func, select, text
from sqlalchemy.engine import make_url

from leadsync.config.scoring_model import ScoringModel
from leadsync.config.settings import LeadsyncConfig
from leadsync.connectors import stopping
from leadsync.connectors.errors import ConfigError, LeadsyncError
from leadsync.sync import pipeline
from leadsync.sync.lease import holder_id
from leadsync.sync.rescore import claim_marks, fingerprint, persons_to_score
from leadsync.sync.runs import ALL_SOURCES, Step, Trigger, mark_interrupted, recorded_run
from leadsync.sync.scorebatch import RescoreCounts, ScoringJob, batch_bounds, load_event_columns, score_chunk
from leadsync.sync.store.idlists import in_ids
from leadsync.sync.store.models import ChangedPerson, Score, SyncRun

__all__ = [
    "JobFailed",
    "RangesPending",
    "WorkerOptions",
    "build_app",
    "due_sources",
    "enqueue",
    "ensure_schema",
    "queue_conninfo",
    "queued_sources",
    "require_procrastinate",
    "run_worker",
]

log = logging.getLogger("leadsync.worker")

TICK_SECONDS = 5  # how often the periodic ``schedule`` task looks for due sources
PERIODIC_PRIORITY = 10  # sync jobs have Procrastinate's default, 0
# Advisory lock keys (any 64-bit numbers unique to leadsync): the schema's creation, a re-score.
SCHEMA_LOCK = 0x6C65_6164_0001
SCORE_LOCK = 0x6C65_6164_0002


RANGE_TASK = "leadsync.score_range"
RANGE_WAIT_SECONDS = 1  # a finish_source job looks again for pending range jobs this often


class JobFailed(LeadsyncError):
    """A step of a ``sync_source`` job failed: Procrastinate retries the job with back-off."""


class RangesPending(LeadsyncError):
    """Range jobs of a split re-score are not all done: no new pass, and no push that needs them."""


@dataclass
class WorkerOptions:
    """``leadsync worker``'s settings. ``heartbeat``: seconds between a worker's heartbeats;
    ``stalled_after``: seconds without a heartbeat after which its running jobs are retried elsewhere.
    ``attempts``: tries of a failing job in all."""

    concurrency: int = 1
    heartbeat: float = 10.0
    stalled_after: float = 30.0
    attempts: int = 5
    name: str = field(default_factory=lambda: f"{socket.gethostname()}:worker")


@dataclass
class _Runtime:
    """What the jobs of this worker process use: set by ``run_worker`` before the first job."""

    engine: Engine
    config: LeadsyncConfig
    model: ScoringModel
    options: WorkerOptions
    stop: threading.Event = field(default_factory=threading.Event)
    tasks: dict[str, Any] = field(default_factory=dict)


_runtime: _Runtime | None = None


def require_procrastinate(config: LeadsyncConfig) -> None:
    """``kind = "procrastinate"`` needs a PostgreSQL store: its queue tables live there."""
    if config.engine.kind != "procrastinate":
        raise ConfigError(
            f'[engine] kind is {config.engine.kind!r}: workers need kind = "procrastinate" '
            "(the embedded engine runs `leadsync daemon`)",
            file=None if config.path is None else str(config.path),
            key="engine.kind",
        )
    backend = make_url(config.store.url).get_backend_name()
    if backend != "postgresql":
        raise ConfigError(
            f'[engine] kind = "procrastinate" needs a PostgreSQL store, and store.url is a {backend} URL; '
            'use postgresql+psycopg://... or kind = "embedded"',
            file=None if config.path is None else str(config.path),
            key="store.url",
        )


def queue_conninfo(store_url: str) -> str:
    """The libpq address of the store's database for Procrastinate (SQLAlchemy's driver name off)."""
    return make_url(store_url).set(drivername="postgresql").render_as_string(hide_password=False)


# --- the tasks --------------------------------------------------------------------------------


def score_time() -> datetime:
    """The time a re-score scores at (the tests' runner pins it, as it pins ``pipeline.score``'s)."""
    return pipeline.utcnow()


def _define_tasks(app: Any, attempts: int) -> dict[str, Any]:
    from procrastinate import BaseRetryStrategy, RetryDecision, RetryStrategy
    from procrastinate.exceptions import AlreadyEnqueued

    class FinishRetry(BaseRetryStrategy):
        """``RangesPending``: the same job again in a second, as long as it takes; ``JobFailed``:
        exponential back-off, ``attempts`` tries in all (the waits above count as tries)."""

        def get_retry_decision(self, *, exception: BaseException, job: Any) -> RetryDecision | None:
            if isinstance(exception, RangesPending):
                return RetryDecision(retry_in={"seconds": RANGE_WAIT_SECONDS})
            if isinstance(exception, JobFailed) and job.attempts < max(0, attempts - 1):
                return RetryDecision(retry_in={"seconds": min(2 ** (job.attempts + 1), 60)})
            return None

    @app.task(
        name="leadsync.sync_source",
        pass_context=True,
        retry=RetryStrategy(
            max_attempts=max(0, attempts - 1), exponential_wait=2, retry_exceptions={JobFailed}
        ),
    )
    def sync_source(context: Any, source: str) -> dict[str, Any]:
        return run_source_job(source, worker=context.worker_name, job_id=context.job.id)

    @app.task(name="leadsync.finish_source", pass_context=True, retry=FinishRetry())
    def finish_source(context: Any, source: str) -> dict[str, Any]:
        return run_finish_job(source, worker=context.worker_name, job_id=context.job.id)

    @app.task(
        name=RANGE_TASK,
        pass_context=True,
        retry=RetryStrategy(max_attempts=max(0, attempts - 1), exponential_wait=2),
    )
    def score_range(context: Any, pass_id: str, index: int, persons: list[int], now: str) -> dict[str, Any]:
        return run_range_job(
            pass_id,
            index,
            persons,
            datetime.fromisoformat(now),
            worker=context.worker_name,
            job_id=context.job.id,
        )

    # The periodic tasks come before any waiting sync job (higher priority first): a long queue must
    # not hold back the schedule, nor the retry of a dead worker's job.
    @app.periodic(cron=f"* * * * * */{TICK_SECONDS}", periodic_id="schedule", priority=PERIODIC_PRIORITY)
    @app.task(name="leadsync.schedule", queueing_lock="leadsync.schedule")
    async def schedule(timestamp: int) -> list[str]:
        runtime = _current()
        due = await asyncio.to_thread(due_sources, runtime.engine, runtime.config, now=datetime.now(UTC))
        queued = await asyncio.to_thread(queued_sources, runtime.engine)
        due = [name for name in due if name not in queued]
        deferred = []
        for name in due:
            try:
                await _configured(sync_source, name).defer_async(source=name)
                deferred.append(name)
            except AlreadyEnqueued:
                pass  # one is already waiting: it covers this tick
        if deferred:
            log.info("scheduled %s", ", ".join(deferred))
        return deferred

    @app.periodic(cron=f"* * * * * */{TICK_SECONDS}", periodic_id="retry_stalled", priority=PERIODIC_PRIORITY)
    @app.task(name="leadsync.retry_stalled", queueing_lock="leadsync.retry_stalled", pass_context=True)
    async def retry_stalled(context: Any, timestamp: int) -> int:
        # Procrastinate's "Retry stalled jobs" how-to (see the module docstring).
        manager = context.app.job_manager
        stalled = await manager.get_stalled_jobs(seconds_since_heartbeat=_current().options.stalled_after)
        count = 0
        for job in stalled:
            log.warning("job %s (%s %s) lost its worker: retrying it", job.id, job.task_name, job.task_kwargs)
            await manager.retry_job(job)
            count += 1
        return count

    return {
        "sync_source": sync_source,
        "finish_source": finish_source,
        "score_range": score_range,
        "schedule": schedule,
        "retry_stalled": retry_stalled,
    }


def _configured(task: Any, source: str) -> Any:
    key = f"source:{source}"
    return task.configure(lock=key, queueing_lock=key)


def build_app(store_url: str, *, attempts: int = 5) -> tuple[Any, dict[str, Any]]:
    """A Procrastinate app on the store's database and leadsync's tasks on it."""
    from procrastinate import App, PsycopgConnector

    app = App(connector=PsycopgConnector(conninfo=queue_conninfo(store_url)))
    return app, _define_tasks(app, attempts)


def _current() -> _Runtime:
    if _runtime is None:
        raise RuntimeError("leadsync jobs run in `leadsync worker` (run_worker sets their runtime)")
    return _runtime


def due_sources(engine: Engine, config: LeadsyncConfig, *, now: datetime) -> list[str]:
    """Enabled sources whose last run started at least their interval ago (or never ran)."""
    with engine.connect() as connection:
        last = dict(
            connection.execute(
                select(SyncRun.source, func.max(SyncRun.started_at)).group_by(SyncRun.source)
            ).all()
        )
    due = []
    for source in config.sources:
        if not source.enabled:
            continue
        started = last.get(source.name)
        if started is not None and started.tzinfo is None:
            started = started.replace(tzinfo=UTC)
        interval = timedelta(seconds=source.interval or config.schedule.interval)
        if started is None or started <= now - interval:
            due.append(source.name)
    return due


def queued_sources(engine: Engine) -> set[str]:
    """Sources with a job waiting or running in the queue (its Procrastinate ``lock``,
    ``source:<name>``). The schedule leaves them alone: the queueing lock only stops a second
    *waiting* job, and a job taken by a worker records its run only once it holds the source's
    lease, so a tick in between found the source never run, or due, and queued it again: 13 pulls
    of 12 sources in ``bench.scaleout --quick``, and a one-worker queue of 300 sources that never
    drained."""
    with engine.connect() as connection:
        locks = connection.execute(
            text(
                "SELECT DISTINCT lock FROM procrastinate_jobs "
                "WHERE status IN ('todo', 'doing') AND lock LIKE 'source:%'"
            )
        ).scalars()
        return {lock.removeprefix("source:") for lock in locks}


@contextmanager
def _scoring_turn(engine: Engine) -> Iterator[None]:
    """One re-score at a time over every worker: a session advisory lock, released by PostgreSQL
    itself if this process dies."""
    with engine.connect() as connection:
        connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": SCORE_LOCK})
        connection.commit()
        try:
            yield
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": SCORE_LOCK})
            connection.commit()


def run_source_job(
    source_name: str, *, worker: str | None = None, job_id: int | None = None
) -> dict[str, Any]:
    """The body of a ``sync_source`` job: pull, score the changed persons, push. Raises ``JobFailed``
    (retried with back-off) when the pull or the push failed."""
    runtime = _current()
    engine, config = runtime.engine, runtime.config
    source = config.source(source_name)
    started = time.monotonic()
    log.info("job %s: syncing %s on %s", job_id, source_name, worker)
    pulled = pipeline.pull_source(engine, config, source, stop=runtime.stop, trigger=Trigger.WORKER)
    if not pulled.ok and pulled.error != "stopped":
        raise JobFailed(f"pull of {source_name} failed: {pulled.error}")
    done: dict[str, Any] = {"source": source_name, "pulled": pulled.contacts + pulled.events}
    if runtime.stop.is_set():
        # This worker is stopping: what was pulled is committed. The job is tried again (by another
        # worker, or by this one when it is back) and goes on from there.
        raise JobFailed(
            f"{source_name}: the worker stopped after {done['pulled']} records; tried again later"
        )
    try:
        scored = _score_or_split(runtime, job_id)
    except RangesPending:
        scored = None  # an earlier split pass is not done: the finish job scores these changes
    if scored is None:
        _defer_finish(runtime, source_name)
        done["scored"] = "in range jobs; push deferred"
        log.info("job %s: %s pulled; push waits for the range jobs: %s", job_id, source_name, done)
        return done
    done["scored"] = scored
    return _push(runtime, source_name, done, job_id=job_id, started=started)


def run_finish_job(
    source_name: str, *, worker: str | None = None, job_id: int | None = None
) -> dict[str, Any]:
    """The body of a ``finish_source`` job: once no range job is pending (else ``RangesPending``,
    retried), score who changed since and push the source."""
    runtime = _current()
    started = time.monotonic()
    scored = _score_or_split(runtime, job_id)
    if scored is None:  # so many changed meanwhile that they were split again: wait for those
        _defer_finish(runtime, source_name)
        return {"source": source_name, "scored": "in range jobs; push deferred"}
    log.info("job %s: finishing %s on %s", job_id, source_name, worker)
    return _push(
        runtime, source_name, {"source": source_name, "scored": scored}, job_id=job_id, started=started
    )


def _push(
    runtime: _Runtime, source_name: str, done: dict[str, Any], *, job_id: int | None, started: float
) -> dict[str, Any]:
    engine, config = runtime.engine, runtime.config
    source = config.source(source_name)
    pushed = pipeline.push_source(engine, config, source, trigger=Trigger.WORKER)
    if not pushed.ok:
        raise JobFailed(f"push to {source_name} failed: {pushed.error}")
    done["written"] = pushed.written
    done["seconds"] = round(time.monotonic() - started, 3)
    log.info("job %s: %s done: %s", job_id, source_name, done)
    return done


def _defer_finish(runtime: _Runtime, source_name: str) -> None:
    key = f"source:{source_name}"
    # the source's lock (not its queueing lock: a sync of the source may already wait)
    job_id = runtime.tasks["finish_source"].configure(lock=key).defer(source=source_name)
    log.info("%s: push deferred to job %s, after the range jobs", source_name, job_id)


def ranges_pending(engine: Engine) -> int:
    """Range jobs waiting or running (a stalled one stays ``doing`` until it is handed back)."""
    with engine.connect() as connection:
        return int(
            connection.execute(
                text(
                    "SELECT count(*) FROM procrastinate_jobs WHERE task_name = :task "
                    "AND status IN ('todo', 'doing')"
                ),
                {"task": RANGE_TASK},
            ).scalar_one()
        )


def _score_or_split(runtime: _Runtime, job_id: int | None) -> int | None:
    """Re-score who changed, in this job when they are at most ``[engine] score_range``; else defer
    one range job per ``score_range`` persons and return None. Raises ``RangesPending`` while an
    earlier split pass is not done."""
    engine, model = runtime.engine, runtime.model
    size = runtime.config.engine.score_range
    with _scoring_turn(engine):
        pending = ranges_pending(engine)
        if pending:
            raise RangesPending(f"{pending} range jobs of a re-score are not done")
        now = score_time()
        with engine.begin() as connection:  # as sync.rescore.rescore: no mark lands between the two
            claim_marks(connection)
            person_ids = persons_to_score(connection, fingerprint(model), now=now, everyone=False)
        if len(person_ids) <= size:
            return pipeline.score(engine, model, trigger=Trigger.WORKER).scored
        # Deferred within the turn: the next turn sees them pending. Should this process die
        # before all are deferred, the marks of the others stay (claimed), and the next pass takes
        # them on.
        pass_id = uuid4().hex[:12]
        task = runtime.tasks["score_range"]
        for index, start in enumerate(range(0, len(person_ids), size)):
            key = f"score-range:{pass_id}:{index}"
            task.configure(lock=key, queueing_lock=key).defer(
                pass_id=pass_id, index=index, persons=person_ids[start : start + size], now=now.isoformat()
            )
        log.info(
            "job %s: %d persons to re-score: %d range jobs of %d (pass %s)",
            job_id,
            len(person_ids),
            -(-len(person_ids) // size),
            size,
            pass_id,
        )
        return None


def _not_scored_yet(engine: Engine, persons: list[int], model_fp: str, now: datetime) -> list[int]:
    """``persons`` but those this pass already scored (a retried range job): scored at the pass's
    ``now`` with this model, and no mark of theirs still claimed (``version`` 0)."""
    with engine.connect() as connection:
        dialect = connection.dialect.name
        claimed = exists().where(ChangedPerson.person_id == Score.person_id, ChangedPerson.version == 0)
        done = set(
            connection.execute(
                select(Score.person_id).where(
                    in_ids(Score.person_id, dialect, persons),
                    Score.scored_at == now,
                    Score.model_fingerprint == model_fp,
                    ~claimed,
                )
            ).scalars()
        )
    return [pid for pid in persons if pid not in done]


def run_range_job(
    pass_id: str,
    index: int,
    persons: list[int],
    now: datetime,
    *,
    worker: str | None = None,
    job_id: int | None = None,
) -> dict[str, Any]:
    """The body of a ``score_range`` job: score ``persons`` (who the pass listed) at the pass's
    ``now``, a batch a transaction, recorded as a score run."""
    runtime = _current()
    engine, model = runtime.engine, runtime.model
    model_fp = fingerprint(model)
    mark_interrupted(engine, source=ALL_SOURCES)
    counts = RescoreCounts()
    with recorded_run(
        engine,
        source=ALL_SOURCES,
        step=Step.SCORE,
        trigger=Trigger.WORKER,
        command="score-range",
        worker=holder_id(),
    ) as run:
        todo = _not_scored_yet(engine, persons, model_fp, now)
        log.info(
            "job %s: range %d of pass %s on %s: %d persons (%d scored before)",
            job_id,
            index,
            pass_id,
            worker,
            len(todo),
            len(persons) - len(todo),
        )
        job = ScoringJob(model, model_fp, now)
        with engine.connect() as connection:
            events = load_event_columns(connection, todo, now).sorted_by_person()
        for start, stop in batch_bounds(len(todo)):
            if runtime.stop.is_set():  # the batches written stay; the job is tried again
                run.counts.persons_scored, run.counts.persons_changed = counts.scored, counts.changed
                raise JobFailed(f"range {index} of pass {pass_id}: the worker stopped; tried again later")
            counts.add(score_chunk(engine, job, todo[start:stop], events.person_range(start, stop)))
        run.counts.persons_scored, run.counts.persons_changed = counts.scored, counts.changed
    return {"pass": pass_id, "range": index, "scored": counts.scored, "changed": counts.changed}


# --- the schema, enqueueing, the worker -------------------------------------------------------


def ensure_schema(engine: Engine, app: Any) -> bool:
    """Create Procrastinate's tables in the store's database unless they exist; True if created.
    Under an advisory lock, so workers starting at once create them once."""
    with engine.begin() as connection:
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK})
        if connection.execute(text("SELECT to_regclass('procrastinate_jobs')")).scalar() is not None:
            return False
        cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        cursor.execute(app.schema_manager.get_schema())  # no parameters: its % signs stay as they are
        cursor.close()
    log.info("created Procrastinate's queue tables in the store's database")
    return True


def enqueue(engine: Engine, config: LeadsyncConfig, names: Sequence[str]) -> dict[str, str]:
    """Defer a ``sync_source`` job for each source now: ``{source: "queued" | "already queued"}``."""
    from procrastinate.exceptions import AlreadyEnqueued

    require_procrastinate(config)
    sources = pipeline.selected_sources(config, names)
    app, tasks = build_app(config.store.url)
    ensure_schema(engine, app)
    result: dict[str, str] = {}
    with app.open():
        for source in sources:
            try:
                job_id = _configured(tasks["sync_source"], source.name).defer(source=source.name)
                result[source.name] = f"queued (job {job_id})"
            except AlreadyEnqueued:
                result[source.name] = "already queued"
    return result


def run_worker(
    engine: Engine,
    config: LeadsyncConfig,
    model: ScoringModel,
    options: WorkerOptions,
    *,
    install_signals: bool = True,
) -> None:
    """Take jobs until SIGTERM or SIGINT; then the running jobs stop before their next request (every
    wait ends at once, ``connectors.stopping``) and the worker exits once they have (Procrastinate's
    graceful shutdown); each is tried again from its committed cursors."""
    global _runtime
    require_procrastinate(config)
    app, tasks = build_app(config.store.url, attempts=options.attempts)
    ensure_schema(engine, app)
    runtime = _runtime = _Runtime(engine, config, model, options, tasks=tasks)

    async def main() -> None:
        async with app.open_async():
            worker = asyncio.ensure_future(
                app.run_worker_async(
                    name=options.name,
                    concurrency=options.concurrency,
                    install_signal_handlers=False,
                    update_heartbeat_interval=options.heartbeat,
                    stalled_worker_timeout=options.stalled_after,
                    delete_jobs="successful",
                )
            )
            if install_signals:
                loop = asyncio.get_running_loop()

                def stop(signum: int) -> None:
                    if not runtime.stop.is_set():
                        log.warning(
                            "stopping: running jobs stop before their next request (signal %s)", signum
                        )
                    runtime.stop.set()
                    # every wait of the running jobs too (a retry back-off, a rate limiter's wait):
                    # a job whose platform is down no longer retries for half a minute first
                    stopping.request()
                    worker.cancel()

                for signum in (signal.SIGTERM, signal.SIGINT):
                    loop.add_signal_handler(signum, stop, signum)
            log.info(
                "worker %s started: concurrency %d, %d sources",
                options.name,
                options.concurrency,
                len(config.sources),
            )
            try:
                await worker
            except asyncio.CancelledError:
                pass
        log.info("worker %s stopped", options.name)

    asyncio.run(main())
