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

A failed job is retried with exponential back-off: 2, 4, 8, 16 s (``WorkerOptions.attempts`` tries
in all); so is a job cut short because its worker is stopping (SIGTERM), from where it stopped. Re-scoring is one
pass at a time over all workers (a PostgreSQL advisory lock): a pass scores every changed person,
so a job that waited finds little or nothing left to score.
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

from sqlalchemy import Engine, func, select, text
from sqlalchemy.engine import make_url

from leadsync.config.scoring_model import ScoringModel
from leadsync.config.settings import LeadsyncConfig
from leadsync.connectors.errors import ConfigError, LeadsyncError
from leadsync.sync import pipeline
from leadsync.sync.runs import Trigger
from leadsync.sync.store.models import SyncRun

__all__ = [
    "JobFailed",
    "WorkerOptions",
    "build_app",
    "due_sources",
    "enqueue",
    "ensure_schema",
    "queue_conninfo",
    "require_procrastinate",
    "run_worker",
]

log = logging.getLogger("leadsync.worker")

TICK_SECONDS = 5  # how often the periodic ``schedule`` task looks for due sources
PERIODIC_PRIORITY = 10  # sync jobs have Procrastinate's default, 0
# Advisory lock keys (any 64-bit numbers unique to leadsync): the schema's creation, a re-score.
SCHEMA_LOCK = 0x6C65_6164_0001
SCORE_LOCK = 0x6C65_6164_0002


class JobFailed(LeadsyncError):
    """A step of a ``sync_source`` job failed: Procrastinate retries the job with back-off."""


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


def _define_tasks(app: Any, attempts: int) -> dict[str, Any]:
    from procrastinate import RetryStrategy
    from procrastinate.exceptions import AlreadyEnqueued

    @app.task(
        name="leadsync.sync_source",
        pass_context=True,
        retry=RetryStrategy(
            max_attempts=max(0, attempts - 1), exponential_wait=2, retry_exceptions={JobFailed}
        ),
    )
    def sync_source(context: Any, source: str) -> dict[str, Any]:
        return run_source_job(source, worker=context.worker_name, job_id=context.job.id)

    # The periodic tasks come before any waiting sync job (higher priority first): a long queue must
    # not hold back the schedule, nor the retry of a dead worker's job.
    @app.periodic(cron=f"* * * * * */{TICK_SECONDS}", periodic_id="schedule", priority=PERIODIC_PRIORITY)
    @app.task(name="leadsync.schedule", queueing_lock="leadsync.schedule")
    async def schedule(timestamp: int) -> list[str]:
        runtime = _current()
        due = await asyncio.to_thread(due_sources, runtime.engine, runtime.config, now=datetime.now(UTC))
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

    return {"sync_source": sync_source, "schedule": schedule, "retry_stalled": retry_stalled}


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
    with _scoring_turn(engine):
        scored = pipeline.score(engine, runtime.model, trigger=Trigger.WORKER)
    done["scored"] = scored.scored
    pushed = pipeline.push_source(engine, config, source, trigger=Trigger.WORKER)
    if not pushed.ok:
        raise JobFailed(f"push to {source_name} failed: {pushed.error}")
    done["written"] = pushed.written
    done["seconds"] = round(time.monotonic() - started, 3)
    log.info("job %s: %s done: %s", job_id, source_name, done)
    return done


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
    """Take jobs until SIGTERM or SIGINT; then the running jobs stop at their next page and the
    worker exits once they have (Procrastinate's graceful shutdown)."""
    global _runtime
    require_procrastinate(config)
    app, _tasks = build_app(config.store.url, attempts=options.attempts)
    ensure_schema(engine, app)
    runtime = _runtime = _Runtime(engine, config, model, options)

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
                        log.warning("stopping: running jobs finish their current page (signal %s)", signum)
                    runtime.stop.set()
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
