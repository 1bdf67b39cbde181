"""Local work with no network: ingest into a file SQLite store, and re-scoring, each measured in
its own process so that one measurement's memory does not pollute another's peak RSS.

    python -m bench.local ingest  --db FILE --persons N --events M   # ContactRecords, then EventRecords
    python -m bench.local rescore --db FILE                          # sync.rescore.rescore over that store
    python -m bench.local ingest  --url postgresql://... (and rescore --url): the same on PostgreSQL
    python -m bench.local memory  --persons N --events M             # bench.scoring_bench.run (in memory)
    python -m bench.local population --persons N --events M          # only building that synthetic population

Each prints one JSON object. Records are built from ``bench.scoring_bench.synthetic_population`` in
pages of 1,000 (what a connector yields); only ``ingest_batch`` calls are timed, not building them.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

__all__ = ["run_local"]

PAGE = 1_000
SOURCE = "hubspot"


def _peak_rss_mb() -> float:
    from leadsync.sync.rescore_workers import peak_rss_mb

    return peak_rss_mb()


class _TreeRss:
    """Peak memory of this process and its children (a re-score's worker processes) together,
    sampled every ``interval`` s on a thread: the sum of their PSS (proportional set size: RSS with
    each shared page split between the processes sharing it). A sum of RSS would count the pages a
    forked worker shares with this process once per process."""

    def __init__(self, interval: float = 0.1) -> None:
        self.interval, self.peak = interval, 0
        self.cpu: dict[int, float] = {}  # CPU seconds of each descendant, as last sampled
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            total = 0
            for process in [me, *me.children(recursive=True)]:
                try:
                    total += process.memory_full_info().pss
                    if process.pid != me.pid:
                        times = process.cpu_times()
                        self.cpu[process.pid] = times.user + times.system
                except psutil.Error:  # a worker that just ended
                    pass
            self.peak = max(self.peak, total)
            self._stop.wait(self.interval)

    def __enter__(self) -> _TreeRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def descendants_cpu_seconds(self) -> float:
        """CPU time of the worker processes (and a fork server), as last sampled: the last 0.1 s of
        a worker may be missed. Sampled, since workers forked by a fork server are not this
        process's children, so ``RUSAGE_CHILDREN`` does not count them."""
        return round(sum(self.cpu.values()), 3)

    @property
    def peak_mb(self) -> float:
        return round(self.peak / 2**20, 1)


def _contact_pages(profiles: list[Any]) -> Iterator[list[Any]]:
    from leadsync.connectors.records import ContactRecord, Platform

    created = datetime(2026, 1, 1, tzinfo=UTC)
    for start in range(0, len(profiles), PAGE):
        yield [
            ContactRecord(
                source=SOURCE,
                platform=Platform.HUBSPOT,
                remote_id=str(i),
                email=p.email,
                job_title=p.job_title,
                seniority=p.seniority,
                industry=p.industry,
                company_size=p.company_size,
                country=p.country,
                lifecycle_stage="lead",
                created_at=created,
                updated_at=created,
                raw={"hs_object_id": str(i)},
            )
            for i, p in enumerate(profiles[start : start + PAGE], start)
        ]


def _event_pages(columns: Any) -> Iterator[list[Any]]:
    from leadsync.connectors.records import EventRecord, Platform
    from leadsync.scoring.columns import EVENT_TYPES, MACHINE

    person, kind, at = columns.person.tolist(), columns.kind.tolist(), columns.at.tolist()
    campaign, url, flags = columns.campaign.tolist(), columns.url.tolist(), columns.flags.tolist()
    for start in range(0, len(person), PAGE):
        page = []
        for i in range(start, min(start + PAGE, len(person))):
            properties: dict[str, Any] = {}
            if url[i] >= 0:
                properties["url"] = columns.urls[url[i]]
            if campaign[i] >= 0:
                properties["campaign"] = f"c{campaign[i]}"
            if flags[i] & MACHINE:
                properties["machine"] = True
            page.append(
                EventRecord(
                    source=SOURCE,
                    platform=Platform.HUBSPOT,
                    source_id=f"e{i}",
                    type=EVENT_TYPES[kind[i]],
                    occurred_at=datetime.fromtimestamp(at[i], UTC),
                    remote_contact_id=str(person[i]),
                    properties=properties,
                )
            )
        yield page


def _url(db: Path | None, url: str | None) -> str:
    return url or f"sqlite:///{db}"


def ingest(db: Path | None, persons: int, events: int, seed: int, url: str | None = None) -> dict[str, Any]:
    from bench.scoring_bench import synthetic_population
    from leadsync.connectors.base import PullBatch
    from leadsync.sync.ingest import ingest_batch
    from leadsync.sync.store import make_engine
    from leadsync.sync.store.marklock import MarkedContacts

    if db is not None:
        for leftover in db.parent.glob(db.name + "*"):
            leftover.unlink()
    engine = make_engine(_url(db, url))
    profiles, columns = synthetic_population(persons, events, seed)
    now = datetime.now(UTC)
    contact_s = event_s = 0.0
    marked = MarkedContacts()  # one pull of both streams, as ``sync.pipeline`` pulls a source
    for number, page in enumerate(_contact_pages(profiles)):
        started = time.perf_counter()
        ingest_batch(
            engine,
            PullBatch("contacts", contacts=page, cursor={"page": number}),
            source=SOURCE,
            now=now,
            marked=marked,
        )
        contact_s += time.perf_counter() - started
    for number, page in enumerate(_event_pages(columns)):
        started = time.perf_counter()
        ingest_batch(
            engine,
            PullBatch("events", events=page, cursor={"page": number}),
            source=SOURCE,
            now=now,
            marked=marked,
        )
        event_s += time.perf_counter() - started
    if db is not None:
        size_mb = db.stat().st_size / 2**20
    else:
        with engine.connect() as connection:
            size_mb = (
                connection.exec_driver_sql("SELECT pg_database_size(current_database())").scalar() / 2**20
            )
    engine.dispose()
    return {
        "store": "sqlite" if db is not None else "postgresql",
        "persons": persons,
        "events": events,
        "page": PAGE,
        "contacts_seconds": round(contact_s, 3),
        "contacts_per_second": round(persons / contact_s, 1),
        "events_seconds": round(event_s, 3),
        "events_per_second": round(events / event_s, 1),
        "db_mb": round(size_mb, 1),
        "peak_rss_mb": _peak_rss_mb(),
    }


def rescore_store(db: Path | None, url: str | None = None) -> dict[str, Any]:
    from bench.scoring_bench import NOW
    from leadsync.config.scoring_model import load_model
    from leadsync.sync.rescore import rescore
    from leadsync.sync.store import make_engine

    engine = make_engine(_url(db, url))
    model = load_model("default")
    started, cpu = time.perf_counter(), time.process_time()
    with _TreeRss() as tree:
        counts = rescore(engine, model, now=NOW, everyone=True)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    engine.dispose()
    return {
        "persons": counts.scored,
        "seconds": round(seconds, 3),
        "cpu_seconds": round(cpu, 3),  # this process only
        "workers_cpu_seconds": tree.descendants_cpu_seconds,
        "persons_per_second": round(counts.scored / seconds, 1),
        # the peak of this process and its workers together (sampled PSS), this process's own peak
        # RSS, and the workers' peak RSS added up (shared pages counted in each)
        "peak_rss_mb": max(tree.peak_mb, _peak_rss_mb()),
        "main_peak_rss_mb": _peak_rss_mb(),
        "workers_peak_rss_mb_sum": counts.worker_peak_rss_mb,
    }


def population(persons: int, events: int, seed: int) -> dict[str, Any]:
    """Only build the synthetic population: the part of ``memory``'s peak that is not scoring."""
    from bench.scoring_bench import synthetic_population

    synthetic_population(persons, events, seed)
    return {"peak_rss_mb": _peak_rss_mb()}


def memory(persons: int, events: int, seed: int) -> dict[str, Any]:
    from bench.scoring_bench import run

    figures = run(persons, events, seed, repeat=1)
    figures["persons_per_second"] = round(persons / figures["full_seconds"], 1)
    figures["peak_rss_mb"] = _peak_rss_mb()
    return figures


def _child(*args: str, timeout: float) -> dict[str, Any]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            filter(None, [str(Path(__file__).parent.parent), os.environ.get("PYTHONPATH")])
        ),
    }
    done = subprocess.run(
        [sys.executable, "-m", "bench.local", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"bench.local {args[0]} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_local(
    workdir: Path,
    *,
    persons: int,
    events: int,
    seed: int = 7,
    store_rescore: bool = True,
    postgres: str | None = None,
) -> dict[str, Any]:
    """Ingest, store re-score and in-memory re-score, each in a fresh process; with ``postgres`` (a
    server URL) ingest and store re-score on PostgreSQL too, beside SQLite's."""
    db = workdir / "local.db"
    size = ["--persons", str(persons), "--events", str(events), "--seed", str(seed)]
    figures: dict[str, Any] = {"ingest": _child("ingest", "--db", str(db), *size, timeout=900)}
    if store_rescore:
        figures["rescore_store"] = _child("rescore", "--db", str(db), timeout=900)
    figures["rescore_memory"] = _child("memory", *size, timeout=900)
    figures["rescore_memory"]["build_only_peak_rss_mb"] = _child("population", *size, timeout=900)[
        "peak_rss_mb"
    ]
    for leftover in workdir.glob("local.db*"):
        leftover.unlink()
    if postgres is not None:
        figures["postgres"] = run_postgres(postgres, persons=persons, events=events, seed=seed)
    return figures


def run_postgres(server: str, *, persons: int, events: int, seed: int = 7) -> dict[str, Any]:
    """The same ingest and store re-score on PostgreSQL, into a database of their own on ``server``
    (created, then dropped); or why not (``{"skipped": reason}``)."""
    import secrets

    from sqlalchemy.engine import make_url

    from bench.first_sync import _admin

    name = f"leadsync_bench_{secrets.token_hex(4)}"
    try:
        _admin(server, f'CREATE DATABASE "{name}"')
    except Exception as exc:  # noqa: BLE001 - no server: the SQLite figures stand alone
        return {
            "skipped": f"no PostgreSQL server at {make_url(server).render_as_string(hide_password=True)}: {exc}"
        }
    url = make_url(server).set(database=name).render_as_string(hide_password=False)
    size = ["--persons", str(persons), "--events", str(events), "--seed", str(seed)]
    try:
        return {
            "ingest": _child("ingest", "--url", url, *size, timeout=1800),
            "rescore_store": _child("rescore", "--url", url, timeout=1800),
        }
    finally:
        _admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("ingest", "rescore", "memory", "population"))
    parser.add_argument("--db", type=Path)
    parser.add_argument("--url", help="a PostgreSQL database URL instead of --db")
    parser.add_argument("--persons", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=2_000_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    if args.what == "ingest":
        result = ingest(args.db, args.persons, args.events, args.seed, url=args.url)
    elif args.what == "rescore":
        result = rescore_store(args.db, url=args.url)
    elif args.what == "population":
        result = population(args.persons, args.events, args.seed)
    else:
        result = memory(args.persons, args.events, args.seed)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
