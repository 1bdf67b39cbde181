"""What ``/metrics`` and ``/healthz`` report, read from the store: the store is the truth.

``StoreCollector`` is a prometheus-client custom collector: every scrape runs a few aggregate
queries over the run history (``SyncRun``), the write-back audit and the quarantine, so any process
that serves it (the daemon, a queue worker) reports the same figures, including the work other
processes did. The queries are grouped counts and sums, not per-row reads; the audit table, which
only grows, is read incrementally (rows after the last id seen).

Run rows come in two shapes while the run recording is moving to ``sync.runs``: older rows name
their step in ``command`` (``pull``, ``push``) and count ``contacts``/``events``/``failed``; newer
ones carry ``step``, ``trigger`` and ``records_read``/``upserted``/``write_failures``/``throttled``/
``retries``. Both are read here.

``source_health`` (one query) gives each source's current streak of failed runs: the daemon's
``/healthz`` and the ``[alerts]`` use it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Engine, and_, case, func, or_, select
from sqlalchemy.exc import SQLAlchemyError

from leadsync.sync.logsetup import REDACTOR
from leadsync.sync.store.models import Quarantine, SyncRun, WritebackAudit

__all__ = ["SourceHealth", "StoreCollector", "effective_step", "pending_writes", "source_health", "step_of"]

log = logging.getLogger("leadsync.metrics")

FAILED = ("failed", "interrupted")  # an interrupted run's process died: it did not finish its work
FINISHED = ("ok", *FAILED)  # "stopped" (asked to stop) and "running" count neither way
SOURCE_STEPS = ("pull", "push")  # the steps that work on one source (score covers every source: "*")
STEP_COMMANDS = ("pull", "score", "push", "undo")
PENDING_WAIT_S = 5.0


def effective_step() -> Any:
    """The step of a run row, in SQL (for WHERE clauses; queries group by ``command`` and ``step``
    and use ``step_of``, as PostgreSQL does not match a GROUP BY expression holding parameters)."""
    return case(
        (SyncRun.command.in_(STEP_COMMANDS), SyncRun.command),  # type: ignore[attr-defined]
        else_=SyncRun.step,
    )


def step_of(command: str | None, step: str | None) -> str:
    """The step of a run row: older rows named it only in ``command`` (their ``step`` is the
    column's default, ``pull``); newer rows carry it in ``step``."""
    return command if command in STEP_COMMANDS else (step or "pull")  # type: ignore[return-value]


def _count(key: str) -> Any:
    """A run's counter ``key`` from its counts JSON (0 when absent)."""
    return func.coalesce(SyncRun.counts[key].as_integer(), 0)  # type: ignore[index]


def _timestamp(moment: datetime | None) -> float:
    if moment is None:
        return 0.0
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


# --- source health ----------------------------------------------------------------------------


@dataclass(frozen=True)
class SourceHealth:
    """One source's recent record. ``streak``: finished runs of one step (pull or push) that failed
    since that step's last successful run, the longer of the two; ``streak_started``: the id of the
    first of them (names the streak); ``last_failed``: its latest failed run of either step."""

    source: str
    streak: int = 0
    streak_started: int | None = None
    last_failed: int | None = None
    last_error: str | None = None
    last_failure_at: datetime | None = None
    last_success_at: datetime | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "consecutive_failures": self.streak,
            "last_error": self.last_error,
            "last_failure_at": None if self.last_failure_at is None else _iso(self.last_failure_at),
            "last_success_at": None if self.last_success_at is None else _iso(self.last_success_at),
        }


def _later(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else max(a, b)


def _iso(moment: datetime) -> str:
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).isoformat(timespec="seconds")


def source_health(engine: Engine, sources: Sequence[str]) -> dict[str, SourceHealth]:
    """Each source's current failure streak and last success, in two grouped queries.

    Pull and push are counted apart (a push that works does not hide pulls that keep failing); a
    source's streak is its longer one."""
    per_source = SyncRun.source.in_(list(sources))  # type: ignore[attr-defined]
    source_runs = and_(per_source, effective_step().in_(SOURCE_STEPS))
    last_ok: dict[tuple[str, str], tuple[int, datetime | None]] = {}
    with engine.connect() as connection:
        for row in connection.execute(
            select(
                SyncRun.source,
                SyncRun.command,
                SyncRun.step,
                func.max(SyncRun.id).label("last_id"),
                func.max(SyncRun.finished_at).label("last_at"),
            )
            .where(source_runs, SyncRun.status == "ok")
            .group_by(SyncRun.source, SyncRun.command, SyncRun.step)
        ):
            key = (row.source, step_of(row.command, row.step))
            last_id, last_at = last_ok.get(key, (0, None))
            last_ok[key] = (max(last_id, row.last_id), _later(last_at, row.last_at))
        failed = connection.execute(
            select(
                SyncRun.id, SyncRun.source, SyncRun.command, SyncRun.step, SyncRun.error, SyncRun.finished_at
            )
            .where(source_runs, SyncRun.status.in_(FAILED))  # type: ignore[attr-defined]
            .order_by(SyncRun.id)
        ).all()
    # Only failures after the last success of their source and step count; history is pruned by age.
    streaks: dict[tuple[str, str], list[Any]] = {}
    for row in failed:
        key = (row.source, step_of(row.command, row.step))
        if row.id > last_ok.get(key, (0, None))[0]:
            streaks.setdefault(key, []).append(row)
    health: dict[str, SourceHealth] = {}
    for source in sources:
        rows = max((streaks.get((source, s), []) for s in SOURCE_STEPS), key=len)
        last = max(
            (r for s in SOURCE_STEPS for r in streaks.get((source, s), [])), key=lambda r: r.id, default=None
        )
        successes = [at for (name, _), (_, at) in last_ok.items() if name == source and at is not None]
        health[source] = SourceHealth(
            source,
            streak=len(rows),
            # the earliest first failure of the steps still failing: it names the streak however
            # the pull's and the push's streaks change places as the longer one (alerts key on it)
            streak_started=min(
                (streaks[(source, s)][0].id for s in SOURCE_STEPS if streaks.get((source, s))),
                default=None,
            ),
            last_failed=None if last is None else last.id,
            last_error=None if last is None or last.error is None else REDACTOR.text(last.error),
            last_failure_at=None if last is None else last.finished_at,
            last_success_at=max(successes, default=None),
        )
    return health


# --- the collector ----------------------------------------------------------------------------


class _RunTotals:
    """Run counts and sums per (source, step, trigger, outcome), counted incrementally: each run
    once, when it has finished. Counters never go down when old runs are pruned from the history
    (a drop would look like a reset to Prometheus, and ``increase()`` would count the history again),
    and a scrape reads only the runs that finished since the last one."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.last_id = 0  # every run up to this id has been seen: counted, or waiting in ``running``
        self.running: set[int] = set()
        self.totals: dict[tuple[str, str, str, str], list[int]] = {}  # [runs, *sums]

    def update(self, connection: Any, sums: Sequence[Any]) -> None:
        newest = connection.execute(select(func.max(SyncRun.id))).scalar_one_or_none() or 0
        if newest < self.last_id:  # a new store (rebuilt from nothing): count from the start
            self.last_id, self.running, self.totals = 0, set(), {}
        seen = connection.execute(
            select(SyncRun.id, SyncRun.status).where(
                or_(
                    and_(SyncRun.id > self.last_id, SyncRun.id <= newest),  # type: ignore[operator]
                    SyncRun.id.in_(sorted(self.running)),  # type: ignore[union-attr]
                )
            )
        ).all()
        still_running = {row.id for row in seen if row.status == "running"}
        done_before = [row.id for row in seen if row.id <= self.last_id and row.status != "running"]
        new_range = and_(
            SyncRun.id > self.last_id,  # type: ignore[operator]
            SyncRun.id <= newest,  # type: ignore[operator]
            SyncRun.id.not_in(sorted(still_running)),  # type: ignore[union-attr]
        )
        rows = connection.execute(
            select(
                SyncRun.source,
                SyncRun.command,
                SyncRun.step,
                SyncRun.trigger,
                SyncRun.status,
                func.count().label("n"),
                *(func.sum(expr).label(f"s{i}") for i, expr in enumerate(sums)),
            )
            .where(
                SyncRun.status != "running",
                or_(new_range, SyncRun.id.in_(done_before)),  # type: ignore[union-attr]
            )
            .group_by(SyncRun.source, SyncRun.command, SyncRun.step, SyncRun.trigger, SyncRun.status)
        ).all()
        for row in rows:
            entry = self.totals.setdefault(
                (row.source, step_of(row.command, row.step), row.trigger, row.status), [0] * (1 + len(sums))
            )
            entry[0] += row.n
            for i in range(len(sums)):
                entry[i + 1] += int(getattr(row, f"s{i}") or 0)
        self.last_id = newest
        self.running = still_running


# (metric name, help, counts-JSON expression) of the counters summed over runs per source and step
def _run_sums() -> list[tuple[str, str, Any]]:
    return [
        (
            "leadsync_records_read",
            "Records the platform sent to pull runs (contacts, events and the quarantined ones).",
            case(
                (SyncRun.counts["records_read"].as_integer().is_not(None), _count("records_read")),  # type: ignore[index]
                else_=_count("contacts") + _count("events") + _count("quarantined"),
            ),
        ),
        (
            "leadsync_records_upserted",
            "Contacts and events pull runs wrote to the store.",
            case(
                (SyncRun.counts["upserted"].as_integer().is_not(None), _count("upserted")),  # type: ignore[index]
                else_=_count("contacts") + _count("events"),
            ),
        ),
        ("leadsync_records_quarantined", "Records pull runs put in quarantine.", _count("quarantined")),
        ("leadsync_persons_scored", "Persons score runs scored.", _count("persons_scored")),
        (
            "leadsync_requests",
            "HTTP requests runs sent (every attempt, retries included).",
            _count("requests"),
        ),
        ("leadsync_rate_limited", "429 (rate limited) answers runs received.", _count("throttled")),
        ("leadsync_retries", "Requests runs sent again after a retriable failure.", _count("retries")),
        ("leadsync_run_writes", "Contacts push runs wrote (as the runs counted them).", _count("written")),
        (
            "leadsync_run_write_failures",
            "Contacts push runs failed to write.",
            _count("write_failures") + _count("failed"),
        ),
    ]


class StoreCollector(Collector):
    """Prometheus metrics over the store; register it on a ``CollectorRegistry``.

    ``pending`` (optional) returns each source's pending writes (what the next push would write);
    it is called at most every ``pending_every`` seconds, as it plans the whole push.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        sources: Iterable[str] = (),
        pending: Callable[[], dict[str, int]] | None = None,
        pending_every: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.engine = engine
        self.sources = list(sources)
        self._pending = pending
        self._pending_every = pending_every
        self._pending_cache: tuple[float, dict[str, int]] | None = None
        self._pending_thread: threading.Thread | None = None
        self._pending_lock = threading.Lock()
        self._clock = clock
        self._runs = _RunTotals()
        self._audit_lock = threading.Lock()
        self._audit_last_id = 0
        self._audit_counts: dict[tuple[str, str], int] = {}

    def describe(self) -> Iterable[Metric]:
        return []  # metrics are only known after reading the store; nothing is checked at register

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("leadsync_store_up", "1 when the store answered this scrape's queries.")
        try:
            metrics = list(self._store_metrics())
        except SQLAlchemyError as exc:
            log.error("metrics: the store did not answer: %s", REDACTOR.text(str(exc).splitlines()[0]))
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from metrics

    # --- the queries ---

    def _store_metrics(self) -> Iterator[Metric]:
        sums = _run_sums()
        with self.engine.connect() as connection:
            with self._runs.lock:
                self._runs.update(connection, [expr for _, _, expr in sums])
                totals = {key: list(values) for key, values in self._runs.totals.items()}
            running: dict[tuple[str, str], int] = {}
            for row in connection.execute(
                select(SyncRun.source, SyncRun.command, SyncRun.step, func.count().label("n"))
                .where(SyncRun.status == "running")
                .group_by(SyncRun.source, SyncRun.command, SyncRun.step)
            ):
                key = (row.source, step_of(row.command, row.step))
                running[key] = running.get(key, 0) + row.n
            last_ok: dict[tuple[str, str], datetime | None] = {}
            for row in connection.execute(
                select(
                    SyncRun.source, SyncRun.command, SyncRun.step, func.max(SyncRun.finished_at).label("at")
                )
                .where(SyncRun.status == "ok")
                .group_by(SyncRun.source, SyncRun.command, SyncRun.step)
            ):
                key = (row.source, step_of(row.command, row.step))
                last_ok[key] = _later(last_ok.get(key), row.at)
            quarantined = connection.execute(
                select(Quarantine.source, func.count().label("n"))
                .where(Quarantine.resolved_at.is_(None))  # type: ignore[union-attr]
                .group_by(Quarantine.source)
            ).all()
        yield from self._run_metrics(totals, running)
        by_step: dict[tuple[str, str], list[int]] = {}
        for (source, step_name, _, _), values in totals.items():
            entry = by_step.setdefault((source, step_name), [0] * len(sums))
            for i in range(len(sums)):
                entry[i] += values[i + 1]
        for index, (name, help_text, _) in enumerate(sums):
            family = CounterMetricFamily(name, help_text, labels=["source", "step"])
            for (source, step_name), values in sorted(by_step.items()):
                if values[index] or name in {
                    "leadsync_requests",
                    "leadsync_rate_limited",
                    "leadsync_retries",
                }:
                    family.add_metric([source, step_name], values[index])
            yield family
        success = GaugeMetricFamily(
            "leadsync_last_success_timestamp_seconds",
            "When the last successful run of each source and step finished (Unix time).",
            labels=["source", "step"],
        )
        for (source, step_name), at in sorted(last_ok.items()):
            success.add_metric([source, step_name], _timestamp(at))
        yield success
        yield self._writes()
        streaks = GaugeMetricFamily(
            "leadsync_consecutive_failures",
            "Finished pull and push runs of each source that failed since its last successful one.",
            labels=["source"],
        )
        sources = sorted({*self.sources, *(key[0] for key in totals if key[0] != "*")})
        for source, health in source_health(self.engine, sources).items():
            streaks.add_metric([source], health.streak)
        yield streaks
        queue = GaugeMetricFamily(
            "leadsync_quarantined_records", "Records in quarantine, not yet resolved.", labels=["source"]
        )
        for row in quarantined:
            queue.add_metric([row.source], row.n)
        yield queue
        pending = self._pending_writes()
        if pending is not None:
            family = GaugeMetricFamily(
                "leadsync_pending_writes",
                "Contacts the next push of each source would write (counted again at most once a minute).",
                labels=["source"],
            )
            for source, count in sorted(pending.items()):
                family.add_metric([source], count)
            yield family

    def _run_metrics(
        self, totals: dict[tuple[str, str, str, str], list[int]], running_runs: dict[tuple[str, str], int]
    ) -> Iterator[Metric]:
        total = CounterMetricFamily(
            "leadsync_runs",
            "Finished runs per source, step, trigger and outcome (ok, failed, stopped, interrupted).",
            labels=["source", "step", "trigger", "outcome"],
        )
        failures = CounterMetricFamily(
            "leadsync_run_failures", "Runs that failed or were interrupted.", labels=["source", "step"]
        )
        running = GaugeMetricFamily(
            "leadsync_runs_running", "Runs in progress now.", labels=["source", "step"]
        )
        failed: dict[tuple[str, str], int] = {}
        for (source, step, trigger, outcome), values in sorted(totals.items()):
            total.add_metric([source, step, trigger, outcome], values[0])
            if outcome in FAILED:
                failed[(source, step)] = failed.get((source, step), 0) + values[0]
        for (source, step), count in sorted(failed.items()):
            failures.add_metric([source, step], count)
        for (source, step), count in sorted(running_runs.items()):
            running.add_metric([source, step], count)
        yield total
        yield failures
        yield running

    def _writes(self) -> Metric:
        """Field writes from the audit table, counted incrementally: it only grows."""
        with self._audit_lock:
            with self.engine.connect() as connection:
                newest = connection.execute(select(func.max(WritebackAudit.id))).scalar_one_or_none() or 0
                if newest < self._audit_last_id:  # a new store (rebuilt): count from the start
                    self._audit_last_id, self._audit_counts = 0, {}
                rows = connection.execute(
                    select(WritebackAudit.source, WritebackAudit.status, func.count().label("n"))
                    .where(WritebackAudit.id > self._audit_last_id, WritebackAudit.id <= newest)  # type: ignore[operator]
                    .group_by(WritebackAudit.source, WritebackAudit.status)
                ).all()
            for row in rows:
                key = (row.source, row.status)
                self._audit_counts[key] = self._audit_counts.get(key, 0) + row.n
            self._audit_last_id = newest
            counts = dict(self._audit_counts)
        family = CounterMetricFamily(
            "leadsync_writes",
            "Field values written to the platforms (result written or failed), from the audit table.",
            labels=["source", "result"],
        )
        for (source, status), count in sorted(counts.items()):
            if status != "dry_run":
                family.add_metric([source, status], count)
        return family

    def _pending_writes(self) -> dict[str, int] | None:
        """The last count, refreshed on a thread when older than ``pending_every``: planning takes
        about a second per 4,000 contacts, longer than a scrape should wait. The first scrape waits
        up to ``PENDING_WAIT_S`` for the first count; until there is one the metric is left out."""
        if self._pending is None:
            return None
        with self._pending_lock:
            cache = self._pending_cache
            stale = cache is None or self._clock() - cache[0] >= self._pending_every
            if stale and (self._pending_thread is None or not self._pending_thread.is_alive()):
                self._pending_thread = threading.Thread(
                    target=self._refresh_pending, name="pending", daemon=True
                )
                self._pending_thread.start()
            thread = self._pending_thread
        if cache is None and thread is not None:
            thread.join(PENDING_WAIT_S)
        cache = self._pending_cache
        return None if cache is None else cache[1]

    def _refresh_pending(self) -> None:
        assert self._pending is not None
        started = self._clock()
        try:
            counts = self._pending()
        except Exception:  # noqa: BLE001 - a scrape thread's error: logged, the last count stays
            log.exception("metrics: counting pending writes failed")
            return
        self._pending_cache = (started, counts)


def pending_writes(engine: Engine, config: Any) -> Callable[[], dict[str, int]]:
    """Each enabled source's pending writes, as ``leadsync status`` counts them."""
    from leadsync.sync.writeback import plan_writes

    def count() -> dict[str, int]:
        now = datetime.now(UTC)
        with engine.connect() as connection:
            return {
                source.name: len(
                    plan_writes(
                        connection,
                        source.name,
                        prefix=config.writeback.field_prefix,
                        lifecycle_writeback=config.writeback.lifecycle,
                        now=now,
                    )
                )
                for source in config.sources
                if source.enabled
            }

    return count
