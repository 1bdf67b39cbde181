"""Re-scoring many persons in worker processes, so that a full re-score uses every core.

A full re-score (a new model, the daily refresh for decay) of a large store is Python and numpy
work under one interpreter lock: a second thread made it slower (issue #9), a second process does
not. Two steps, each spread over the pool:

1. read: the event table cut into id ranges, one scan each, into numpy columns whose ``person`` is
   the position in the run's person list (``sync.scorebatch.scan_events``); this process reads the
   first range itself while the pool starts;
2. score: the columns merged and sorted by person here, then each batch of ``BATCH`` persons sent
   with its events to a free worker, which loads their profiles, scores them and writes the batch
   in its own transaction (``sync.scorebatch.score_chunk``, the same code a single process runs).
   SQLite lets one writer in at a time; the other workers go on computing meanwhile.

Workers are forked when this process runs a single thread: a fork starts in milliseconds, a
spawned worker imports leadsync first (about 0.7 s of CPU each). With other threads alive (the
daemon's scheduler, the CLI's progress bar) a fork would copy locks another thread may hold, so a
fork server (started once per process, single-threaded, this module preloaded) forks them instead;
spawn is the last resort. Either way each opens its own engine on the store's URL and never touches
this process's connections; an in-memory SQLite store cannot be shared, so it is scored here.
"""

from __future__ import annotations

import os
import resource
import signal
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, ThreadPoolExecutor, wait
from datetime import datetime
from multiprocessing import get_all_start_methods, get_context
from multiprocessing.context import BaseContext
from pathlib import Path

import numpy as np
from sqlalchemy import Connection, Engine, func, select

from leadsync.connectors import stopping
from leadsync.scoring import EventColumns
from leadsync.sync.scorebatch import (
    RescoreCounts,
    ScoringJob,
    batch_bounds,
    contact_positions,
    scan_events,
    score_chunk,
)
from leadsync.sync.store.models import Event

__all__ = [
    "MAX_WORKERS",
    "PARALLEL_FROM",
    "id_ranges",
    "merge_event_parts",
    "peak_rss_mb",
    "rescore_in_processes",
    "worker_count",
]

PARALLEL_FROM = 20_000  # persons to score before worker processes pay for their start (~1 s)
MAX_WORKERS = 4

# set in each worker by _start
_engine: Engine | None = None
_job: ScoringJob | None = None


def worker_count(engine: Engine, persons: int, requested: int | None) -> int:
    """How many processes re-score ``persons``: ``requested``, or one per CPU (at most
    ``MAX_WORKERS``) from ``PARALLEL_FROM`` persons on; 1 for an in-memory SQLite store."""
    if requested is not None:
        count = requested
    elif persons >= PARALLEL_FROM:
        count = min(os.cpu_count() or 1, MAX_WORKERS)
    else:
        count = 1
    url = engine.url
    if url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"):
        return 1
    return max(1, count)


def peak_rss_mb() -> float:
    """This process's peak RSS. On Linux, VmHWM: ``ru_maxrss`` would carry over the parent's RSS
    at fork (Linux keeps the pre-exec high-water mark), so a small child would report the parent's
    size."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)  # kB
    except OSError:
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # Linux: KiB


def id_ranges(low: int, high: int, parts: int) -> list[tuple[int, int]]:
    """``low..high`` (inclusive) cut into at most ``parts`` inclusive ranges of near equal size."""
    bounds = np.linspace(low, high + 1, num=max(1, parts) + 1).astype(np.int64).tolist()
    return [(a, b - 1) for a, b in zip(bounds, bounds[1:], strict=False) if b > a]


def merge_event_parts(parts: list[tuple[EventColumns, tuple[str, ...]]]) -> EventColumns:
    """One ``EventColumns``, sorted by person, of parts read apart (``parts`` is emptied).

    Each part numbers its campaigns and URLs by first appearance, so their codes are mapped onto
    one numbering (code -1, none, stays -1). Built a column at a time, each part's column let go
    once used: the parts, the merged and the sorted columns are never all held at once (the peak
    memory of a large re-score)."""
    campaigns: dict[str, int] = {}
    urls: dict[str, int] = {}
    names = ("person", "kind", "at", "campaign", "url", "flags")
    columns: dict[str, list[np.ndarray]] = {name: [] for name in names}
    while parts:
        part, campaign_names = parts.pop(0)
        if not len(part):
            continue
        # a trailing -1: code -1 (no campaign, no URL) indexes the last entry
        to_campaign = np.array(
            [*(campaigns.setdefault(n, len(campaigns)) for n in campaign_names), -1], np.int32
        )
        to_url = np.array([*(urls.setdefault(u, len(urls)) for u in part.urls), -1], np.int32)
        columns["campaign"].append(to_campaign[part.campaign])
        columns["url"].append(to_url[part.url])
        for name in ("person", "kind", "at", "flags"):
            columns[name].append(getattr(part, name))
        del part
    if not columns["person"]:
        return EventColumns.empty()
    # stable: each part comes sorted by person (and by id within a person), so this merges runs
    person = np.concatenate(columns.pop("person"))
    order = np.argsort(person, kind="stable")
    merged = {"person": person[order]}
    del person
    for name in names[1:]:
        merged[name] = np.concatenate(columns.pop(name))[order]
    # person, campaign and URL stay int32 (as the parts came) while all 2,000,000 events are held:
    # ``person_range`` hands each batch its slice as int64
    return EventColumns(**merged, urls=tuple(urls))


def _context() -> BaseContext:
    """``fork`` while this process runs one thread; with other threads alive, ``forkserver`` (a
    clean single-threaded server that has imported this module forks each worker); ``spawn`` where
    neither exists (Windows)."""
    methods = get_all_start_methods()
    if threading.active_count() == 1 and "fork" in methods:
        return get_context("fork")
    if "forkserver" in methods:
        context = get_context("forkserver")
        # The server imports leadsync once (about 0.7 s of CPU); a spawned worker paid that each, on
        # the re-score's critical path. Preloading only takes effect before the server's first start.
        context.set_forkserver_preload([__name__])
        return context
    return get_context("spawn")


def _start(url: str, job: ScoringJob) -> None:
    from leadsync.sync.store import make_engine

    global _engine, _job
    # Ctrl-C reaches the whole process group: stopping is the parent's to decide (sync.shutdown),
    # and a worker ends with its pool. A parent gone without closing the pool (its grace period ran
    # out, or it was killed) is noticed within a second, so no worker outlives it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), name="parent-watch", daemon=True).start()
    _engine = make_engine(url, migrate_schema=False)
    _job = job


def _exit_with_parent(parent: int, every_s: float = 1.0) -> None:
    """End this worker once ``parent`` is gone (the worker is then re-parented)."""
    while os.getppid() == parent:
        time.sleep(every_s)
    os._exit(1)


def _ready() -> None:
    """A first task: makes the pool start its processes while this one reads the person map."""


def read_part(
    connection: Connection, contacts: Mapping[str, Mapping[str, int]], now: datetime, ids: tuple[int, int]
) -> tuple[EventColumns, tuple[str, ...]]:
    """One id range of the event table (``sync.scorebatch.scan_events``), sorted by person, as merged."""
    columns, campaigns = scan_events(connection, contacts, now, ids=ids)
    # sorted here, side by side: the merged columns are then a few sorted runs, which the stable
    # sort (timsort) of sorted_by_person only has to merge
    columns = columns.sorted_by_person()
    # sent back as int32 (persons, campaigns and URLs number far fewer than 2**31): a third less
    # to pickle and to hold while the parts come in, and merge_event_parts keeps them so
    return (
        EventColumns(
            person=columns.person.astype(np.int32),
            kind=columns.kind,
            at=columns.at,
            campaign=columns.campaign.astype(np.int32),
            url=columns.url.astype(np.int32),
            flags=columns.flags,
            urls=columns.urls,
        ),
        campaigns,
    )


def _read(
    contacts: Mapping[str, Mapping[str, int]], ids: tuple[int, int]
) -> tuple[EventColumns, tuple[str, ...]]:
    assert _engine is not None and _job is not None
    with _engine.connect() as connection:
        return read_part(connection, contacts, _job.now, ids)


def _score(chunk: list[int], events: EventColumns) -> tuple[RescoreCounts, int, float]:
    assert _engine is not None and _job is not None
    return score_chunk(_engine, _job, chunk, events), os.getpid(), peak_rss_mb()


def rescore_in_processes(
    engine: Engine,
    job: ScoringJob,
    person_ids: Sequence[int],
    *,
    workers: int,
    progress: Callable[[int], None] | None = None,
) -> RescoreCounts:
    """``sync.rescore.rescore``'s work for ``person_ids`` on ``workers`` processes."""
    url = engine.url.render_as_string(hide_password=False)  # goes to the workers only, never logged
    counts = RescoreCounts()
    peaks: dict[int, float] = {}
    context = _context()
    with (
        ProcessPoolExecutor(workers, mp_context=context, initializer=_start, initargs=(url, job)) as pool,
        ThreadPoolExecutor(1) as submitter,
    ):
        # The workers start while this process reads the person map. A fork takes milliseconds, and
        # is done from this thread (the only one); a fork server's first start (it imports leadsync,
        # about 0.7 s) blocks whoever submits, so a thread submits.
        if context.get_start_method() == "fork":
            pool.submit(_ready)
        else:
            submitter.submit(pool.submit, _ready)
        with engine.connect() as connection:
            contacts = contact_positions(connection, person_ids)
            # two scalar subqueries: SQLite answers a lone min() or max() from the key's b-tree, but
            # scans the whole table for both in one select
            low, high = connection.execute(
                select(
                    select(func.min(Event.id)).scalar_subquery(), select(func.max(Event.id)).scalar_subquery()
                )
            ).one()
        events = EventColumns.empty()
        if low is not None:
            # this process reads the first range itself while the pool starts and reads the rest
            first, *rest = id_ranges(low, high, 2 * workers + 1)
            reads = submitter.submit(lambda: [pool.submit(_read, contacts, ids) for ids in rest])
            with engine.connect() as connection:
                parts = [read_part(connection, contacts, job.now, first)]
            parts += [future.result() for future in reads.result()]
            del contacts  # not needed again: its memory goes before the merge's peak
            events = merge_event_parts(parts)

        # one batch queued per worker, not all: each carries its events
        pending: dict[Future[tuple[RescoreCounts, int, float]], int] = {}
        for start, stop in batch_bounds(len(person_ids)):
            if stopping.requested():
                break  # the batches in flight are finished below; the rest keep their marks
            if len(pending) > workers:
                _collect(pending, counts, peaks, progress)
            pending[pool.submit(_score, list(person_ids[start:stop]), events.person_range(start, stop))] = (
                stop - start
            )
        while pending:
            _collect(pending, counts, peaks, progress)
    stopping.check()
    counts.worker_peak_rss_mb = round(sum(peaks.values()), 1)
    return counts


def _collect(
    pending: dict[Future[tuple[RescoreCounts, int, float]], int],
    counts: RescoreCounts,
    peaks: dict[int, float],
    progress: Callable[[int], None] | None,
) -> None:
    """Wait for at least one batch; add up what finished (a worker's error is raised here)."""
    done, _ = wait(pending, return_when=FIRST_COMPLETED)
    for future in done:
        persons = pending.pop(future)
        part, pid, peak = future.result()
        counts.add(part)
        peaks[pid] = max(peaks.get(pid, 0.0), peak)
        if progress:
            progress(persons)
