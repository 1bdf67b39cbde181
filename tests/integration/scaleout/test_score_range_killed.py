"""A worker killed with SIGKILL while it runs a person-range score job: Procrastinate hands the range
back (``sync.workers.retry_stalled``) to the other worker, which scores it; the push waits for it,
every person is scored, and the platform ends as after an embedded ``leadsync sync``.

The range jobs are held mid-write by a lock the test takes on the score table (``LOCK TABLE score
IN SHARE MODE``: reads go on, writes wait), so the kill lands inside a range job every time."""

from __future__ import annotations

import copy
import os
import re
import signal
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, text

from leadsync.sync.store import make_engine
from leadsync.sync.store.models import ChangedPerson, Person, Score, SyncRun
from tests.integration.pipeline.harness import SCORE_NOW, platform_view
from tests.integration.scaleout.harness import (
    log_messages,
    serve_accounts,
    start,
    stop_all,
    wait_for,
    write_config,
)
from tests.integration.scaleout.test_score_ranges import _with_score_range

CONTACTS = 200
SCORE_RANGE = 30
SOURCE = "hubspot"
WORKER = ["worker", "--heartbeat", "0.5", "--stalled-after", "2"]
RANGE = re.compile(r"job (\d+): range (\d+) of pass (\w+)")


def _ranges(log: Path) -> list[tuple[str, str]]:
    """(job id, range index) of each range job this worker started."""
    return [(m[1], m[2]) for m in map(RANGE.search, log_messages(log)) if m]


def _only_source(source: dict[str, Any]) -> bool:
    return source["name"] == SOURCE


def test_a_worker_killed_in_a_range_job_is_replaced_and_the_push_waits_for_the_retried_range(
    tmp_path: Path, new_database: Any
) -> None:
    server = serve_accounts(1, CONTACTS)
    world = copy.deepcopy(server.state.world)
    emails = sorted({p.email.strip().lower() for p in world.persons})
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

    url = new_database()
    engine = make_engine(url)  # the schema, so that the test can lock the score table first
    holder = engine.connect()
    holder.execute(text("LOCK TABLE score IN SHARE MODE"))  # until the rollback below
    with serve_accounts(1, CONTACTS) as server:
        config = _with_score_range(
            write_config(
                server, tmp_path / "workers.toml", store_url=url, engine="procrastinate", only=_only_source
            ),
            SCORE_RANGE,
        )
        logs = [tmp_path / "worker-a.log", tmp_path / "worker-b.log"]
        workers = [start(config, *WORKER, log=path, score_now=SCORE_NOW) for path in logs]
        try:
            # both workers end up in a range job, each waiting on the lock to write its scores
            wait_for(
                lambda: all(_ranges(path) for path in logs), timeout=180, what="a range job on each worker"
            )
            victim, survivor = 0, 1
            killed_job, killed_range = _ranges(logs[victim])[-1]
            os.kill(workers[victim].pid, signal.SIGKILL)
            workers[victim].wait(timeout=30)
            holder.rollback()
            holder.close()
            wait_for(
                lambda: any(f": {SOURCE} done" in m for m in log_messages(logs[survivor])),
                timeout=180,
                what="the other worker to score the ranges and push",
            )
        finally:
            if not holder.closed:
                holder.rollback()
                holder.close()
            stop_all(workers)
        got_platform = platform_view(server, emails)

    with engine.connect() as connection:
        persons = connection.execute(select(func.count()).select_from(Person)).scalar_one()
        scored = connection.execute(
            select(func.count())
            .select_from(Score)
            .where(Score.scored_at == datetime.fromisoformat(SCORE_NOW))
        ).scalar_one()
        marks_left = connection.execute(select(func.count()).select_from(ChangedPerson)).scalar_one()
        ranges = list(
            connection.execute(
                select(SyncRun.status, SyncRun.counts, SyncRun.finished_at).where(
                    SyncRun.command == "score-range"
                )
            )
        )
        push = connection.execute(
            select(SyncRun.started_at, SyncRun.status).where(SyncRun.step == "push")
        ).one()
    engine.dispose()

    messages = log_messages(logs[survivor])
    assert any("lost its worker: retrying it" in m for m in messages)
    assert (killed_job, killed_range) in _ranges(logs[survivor])  # the same job, retried there
    statuses = sorted(status for status, _, _ in ranges)
    print(f"{persons} persons; range runs: {statuses}")
    ok = [counts for status, counts, _ in ranges if status == "ok"]
    assert len(ok) == -(-persons // SCORE_RANGE)
    # the killed job wrote nothing (its write waited on the lock): its retry scored its whole range
    assert sum(counts.get("persons_scored", 0) for counts in ok) == persons
    assert set(statuses) <= {"ok", "interrupted", "running"}
    assert scored == persons and marks_left == 0
    assert push.status == "ok"
    assert push.started_at >= max(finished for status, _, finished in ranges if status == "ok")
    assert got_platform == expected_platform
