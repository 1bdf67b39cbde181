"""Issue 20, acceptance 2: with 3 workers, and separately with 2 daemons, on one PostgreSQL store
against a sandbox of 20 accounts, no two runs of one source overlap in time. Sources are due every
2 s, so the workers (and the daemons) contend for every source again and again.

The run records are read; attempts that a source's lease refused did no work and are left out.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from leadsync.sync.runs import ALL_SOURCES
from leadsync.sync.store import make_engine
from tests.integration.scaleout.harness import (
    describe,
    lease_windows,
    overlapping_runs,
    overlapping_windows,
    refused,
    runs,
    serve_accounts,
    start,
    stop_all,
    wait_for,
    write_config,
)

ACCOUNTS = 20
CONTACTS = 15
ROUNDS = 2  # finished pulls of every source before the processes are stopped


def _finished_pulls(engine: Any) -> Counter[str]:
    return Counter(
        row.source
        for row in runs(engine)
        if row.finished_at is not None
        and "push" not in (row.command, row.step)
        and row.source != ALL_SOURCES  # score runs cover every source: not a source's pull
        and not refused(row)
    )


def _contend(
    tmp_path: Path, pg_url: str, *, engine_kind: str, command: list[str], processes: int
) -> dict[str, Any]:
    engine = make_engine(pg_url)  # the schema first: the processes then start on a migrated store
    with serve_accounts(ACCOUNTS, CONTACTS) as server:
        config = write_config(
            server, tmp_path / "leadsync.toml", store_url=pg_url, engine=engine_kind, interval="2s"
        )
        sources = ACCOUNTS * 3
        started = [start(config, *command, log=tmp_path / f"process-{n}.log") for n in range(processes)]
        try:
            wait_for(
                lambda: len(counts := _finished_pulls(engine)) == sources and min(counts.values()) >= ROUNDS,
                timeout=300,
                what=f"{ROUNDS} finished pulls of each of {sources} sources",
                every=1,
            )
        finally:
            stop_all(started)
    rows = runs(engine)
    engine.dispose()
    logs = [(tmp_path / f"process-{n}.log").read_text(errors="replace") for n in range(processes)]
    print(f"{len(rows)} run records, {sum(map(refused, rows))} attempts refused by a lease")
    return {"rows": rows, "logs": logs}


@pytest.mark.slow(45)
def test_three_workers_never_run_one_source_twice_at_once(tmp_path: Path, pg_url: str) -> None:
    seen = _contend(
        tmp_path,
        pg_url,
        engine_kind="procrastinate",
        command=["worker", "--concurrency", "2", "--heartbeat", "1", "--stalled-after", "5"],
        processes=3,
    )
    assert len(seen["rows"]) >= ACCOUNTS * 3 * ROUNDS
    overlaps = overlapping_runs(seen["rows"])
    assert overlaps == [], describe(overlaps)
    assert overlapping_windows(lease_windows(seen["logs"])) == []
    jobs = [len(re.findall(r"job \d+: syncing", log)) for log in seen["logs"]]
    assert sum(1 for count in jobs if count) >= 2, jobs  # the work was shared


@pytest.mark.slow(60)
def test_two_daemons_never_run_one_source_twice_at_once(tmp_path: Path, pg_url: str) -> None:
    seen = _contend(tmp_path, pg_url, engine_kind="embedded", command=["daemon"], processes=2)
    assert len(seen["rows"]) >= ACCOUNTS * 3 * ROUNDS
    # the two daemons did contend for the sources: a standby refused by a lease logs one INFO line
    # naming the holder and records no run
    assert sum(log.count("skipped: it is being synced by") for log in seen["logs"]) > 0
    assert overlapping_runs(seen["rows"]) == [], describe(overlapping_runs(seen["rows"]))
    assert overlapping_windows(lease_windows(seen["logs"])) == []
