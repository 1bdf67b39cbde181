"""Issue 20, "large accounts split scoring into person-range jobs": with more persons to re-score
than ``[engine] score_range``, a sync job defers person-range score jobs that any worker takes, and
the source's push (a ``finish_source`` job) waits until they are done. With a small threshold on a
small world and 2 workers: the ranges are spread over both workers, every person is scored exactly
once, and the platform ends up as after an embedded ``leadsync sync`` of the same world."""

from __future__ import annotations

import copy
import tomllib
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import tomli_w
from sqlalchemy import func, select, text

from leadsync.sync.store import make_engine
from leadsync.sync.store.models import ChangedPerson, Person, Score, SyncRun
from tests.integration.pipeline.harness import SCORE_NOW, platform_view, store_state
from tests.integration.scaleout.harness import (
    StoreAt,
    log_messages,
    serve_accounts,
    start,
    stop_all,
    wait_for,
    write_config,
)

CONTACTS = 300
SCORE_RANGE = 30  # persons per range job: about ten ranges for this world
SOURCE = "hubspot"


def _only_source(source: dict[str, Any]) -> bool:
    return source["name"] == SOURCE


def _with_score_range(config: Path, size: int) -> Path:
    document = tomllib.loads(config.read_text())
    document.setdefault("engine", {})["score_range"] = size
    config.write_text(tomli_w.dumps(document))
    return config


def test_a_large_rescore_is_split_into_range_jobs_spread_over_workers_and_equals_an_embedded_sync(
    tmp_path: Path, new_database: Any
) -> None:
    server = serve_accounts(1, CONTACTS)
    world = copy.deepcopy(server.state.world)
    emails = sorted({p.email.strip().lower() for p in world.persons})

    # The reference: one embedded `leadsync sync` of the same world on a SQLite store.
    with server:
        config = write_config(
            server,
            tmp_path / "embedded.toml",
            store_url=f"sqlite:///{tmp_path / 'embedded.db'}",
            engine="embedded",
            only=_only_source,
        )
        process = start(config, "sync", log=tmp_path / "embedded.log", score_now=SCORE_NOW)
        assert process.wait(timeout=240) == 0, (tmp_path / "embedded.log").read_text()[-2000:]
        expected_platform = platform_view(server, emails)
        expected_scores = store_state(StoreAt(f"sqlite:///{tmp_path / 'embedded.db'}"))["scores"]  # type: ignore[arg-type]

    url = new_database()
    engine = make_engine(url)
    with serve_accounts(1, CONTACTS) as server:
        config = _with_score_range(
            write_config(
                server, tmp_path / "workers.toml", store_url=url, engine="procrastinate", only=_only_source
            ),
            SCORE_RANGE,
        )
        logs = [tmp_path / "worker-a.log", tmp_path / "worker-b.log"]
        workers = [
            start(config, "worker", "--heartbeat", "1", log=path, score_now=SCORE_NOW) for path in logs
        ]
        try:
            wait_for(
                lambda: any(f": {SOURCE} done" in m for path in logs for m in log_messages(path)),
                timeout=240,
                what="the push after the range jobs",
            )
        finally:
            stop_all(workers)
        got_platform = platform_view(server, emails)
    got_scores = store_state(StoreAt(url))["scores"]  # type: ignore[arg-type]

    with engine.connect() as connection:
        persons = connection.execute(select(func.count()).select_from(Person)).scalar_one()
        scored = connection.execute(select(func.count()).select_from(Score)).scalar_one()
        marks_left = connection.execute(select(func.count()).select_from(ChangedPerson)).scalar_one()
        score_runs = list(
            connection.execute(
                select(SyncRun.command, SyncRun.worker, SyncRun.trigger, SyncRun.status, SyncRun.counts)
                .where(SyncRun.step == "score")
                .order_by(SyncRun.id)
            )
        )
        push_runs = list(
            connection.execute(
                select(SyncRun.started_at, SyncRun.status).where(
                    SyncRun.step == "push", SyncRun.source == SOURCE
                )
            )
        )
        last_range_end = connection.execute(
            select(func.max(SyncRun.finished_at)).where(SyncRun.command == "score-range")
        ).scalar_one()
    engine.dispose()

    ranges = [run for run in score_runs if run.command == "score-range"]
    expected_ranges = -(-persons // SCORE_RANGE)
    assert persons > SCORE_RANGE * 2
    assert len(ranges) == expected_ranges
    assert all(run.trigger == "worker" and run.status == "ok" for run in ranges)
    # spread over both worker processes (a run's worker is host:pid:nonce)
    by_process = Counter(run.worker.split(":")[1] for run in ranges)
    print(f"{persons} persons, {len(ranges)} range jobs per worker process {dict(by_process)}")
    assert set(by_process) == {str(process.pid) for process in workers}, by_process
    # every person scored exactly once: by the range jobs, and by no other score run
    assert sum(run.counts.get("persons_scored", 0) for run in ranges) == persons
    assert sum(run.counts.get("persons_scored", 0) for run in score_runs) == persons
    assert scored == persons and marks_left == 0
    # the push came after the last range job
    assert [row.status for row in push_runs] == ["ok"]
    assert push_runs[0].started_at >= last_range_end
    assert got_scores == expected_scores
    assert got_platform == expected_platform


def test_three_sources_split_at_once_wait_for_each_others_ranges_and_leave_nobody_unscored(
    tmp_path: Path, new_database: Any
) -> None:
    """Two workers sync three sources at once: a sync job that finds an earlier pass's ranges still
    pending leaves its re-score and push to a finish job, which waits for them. Every person ends
    scored, with no mark left and no job failed.

    The scores are not compared with an embedded sync's here: with one job per source a person in
    several sources is scored once per source's pass, and a score depends on the previous one
    (``scoring.Previous``), so a few persons differ from one pass over everything; that holds
    without any split too (measured: 4 of the world's persons, with ``score_range`` above the
    world's size)."""
    sources = ("hubspot", "mailchimp", "activecampaign")

    url = new_database()
    engine = make_engine(url)
    with serve_accounts(1, 120) as server:
        config = _with_score_range(
            write_config(server, tmp_path / "workers.toml", store_url=url, engine="procrastinate"), 25
        )
        logs = [tmp_path / "worker-a.log", tmp_path / "worker-b.log"]
        workers = [
            start(config, "worker", "--heartbeat", "1", log=path, score_now=SCORE_NOW) for path in logs
        ]

        def all_done() -> bool:
            messages = [m for path in logs for m in log_messages(path)]
            return all(any(f": {name} done" in m for m in messages) for name in sources)

        try:
            wait_for(all_done, timeout=400, what="the three sources' pushes")
        finally:
            stop_all(workers)
    with engine.connect() as connection:
        persons = connection.execute(select(func.count()).select_from(Person)).scalar_one()
        scored = connection.execute(
            select(func.count())
            .select_from(Score)
            .where(Score.scored_at == datetime.fromisoformat(SCORE_NOW))
        ).scalar_one()
        marks_left = connection.execute(select(func.count()).select_from(ChangedPerson)).scalar_one()
        ranges = list(
            connection.execute(select(SyncRun.status, SyncRun.counts).where(SyncRun.command == "score-range"))
        )
        pushes = list(
            connection.execute(select(SyncRun.source, SyncRun.status).where(SyncRun.step == "push"))
        )
        jobs = dict(
            connection.execute(
                text("SELECT status::text, count(*) FROM procrastinate_jobs GROUP BY status")
            ).all()
        )
    engine.dispose()
    messages = [m for path in logs for m in log_messages(path)]
    print(f"{len(ranges)} range jobs; jobs left in the queue: {jobs}")
    assert ranges and all(status == "ok" for status, _ in ranges)
    assert sorted(pushes) == sorted((name, "ok") for name in sources)
    assert any("push waits for the range jobs" in m for m in messages)
    assert "failed" not in jobs
    assert marks_left == 0
    assert scored == persons
