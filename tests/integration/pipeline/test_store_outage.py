"""Issue 20, point 9: losing the database mid run loses no committed data, and the run resumes when
it returns. While ``leadsync sync`` runs, every backend of its database is terminated again and again
(``pg_terminate_backend``: what a server restart or a failover does to open connections). A page
whose connection died is written again on a new connection (``sync.ingest``); the run ends with the
same store and platform state as one uninterrupted run of the same world."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, select, text

from leadsync.sync.store.db import store_url as driver_url
from leadsync.sync.store.models import SyncRun
from tests.integration.pipeline.harness import Leadsync, platform_view, serve, store_state
from tests.worlds import private_copy

TERMINATIONS = 4


def _terminate_backends(lead: Leadsync) -> int:
    """Terminate every other connection to ``lead``'s database; returns how many."""
    engine = create_engine(driver_url(lead.store_url))
    try:
        with engine.connect() as connection:
            return len(
                connection.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    )
                ).all()
            )
    finally:
        engine.dispose()


def test_terminated_connections_mid_sync_lose_nothing_and_the_run_resumes(
    world: Any, pipeline_world: Any, tmp_path: Path, pipeline_store: str
) -> None:
    if pipeline_store != "postgresql":
        pytest.skip("terminating server connections is a PostgreSQL test (SQLite has no server)")
    emails = sorted({p.email.strip().lower() for p in world.persons})
    with serve(private_copy(pipeline_world)) as clean_server:
        clean = Leadsync.create(clean_server, tmp_path / "clean")
        clean.run("sync", "--json")
        expected_store = store_state(clean)
        expected_platform = platform_view(clean_server, emails)

    with serve(world, latency_ms=15) as server:  # slow enough that the run is mid-pull when hit
        lead = Leadsync.create(server, tmp_path / "outage")
        lead.run("status")  # the schema exists; the outage hits the sync itself
        process = lead.start("sync", "--json")
        killed: list[int] = []

        def pulling() -> bool:
            engine = lead.engine()
            try:
                with engine.connect() as connection:
                    return connection.execute(select(SyncRun.id)).first() is not None
            finally:
                engine.dispose()

        def outage() -> None:
            while process.poll() is None and not pulling():  # the pull has begun
                time.sleep(0.05)
            # each time the run holds connections again, terminate them, a second apart
            while len(killed) < TERMINATIONS and process.poll() is None:
                count = _terminate_backends(lead)
                if count:
                    killed.append(count)
                    time.sleep(1.0)
                else:
                    time.sleep(0.05)

        hitter = threading.Thread(target=outage)
        hitter.start()
        out, err = process.communicate(timeout=600)
        hitter.join()
        assert sum(killed) > 0, "no connection was terminated: the run ended before the outage"
        first_ok = process.returncode == 0 and json.loads(out)["ok"]
        engine = lead.engine()
        with engine.connect() as connection:
            reconnects = sum(
                int((run.counts or {}).get("reconnects", 0))
                for run in connection.execute(select(SyncRun.counts).where(SyncRun.command == "pull"))
            )
        engine.dispose()
        # what the outage left undone is done by the next run; nothing committed is lost or doubled
        rerun = lead.run("sync", "--json")
        assert json.loads(rerun.stdout)["ok"], rerun.stdout + rerun.stderr
        got_store = store_state(lead)
        got_platform = platform_view(server, emails)
    print(
        f"backends terminated: {killed}; pages written again after a lost connection: {reconnects}; "
        f"the interrupted run itself ended {'ok' if first_ok else 'failed: ' + err[-400:]}"
    )
    assert first_ok, f"the run did not resume after the outage: {err[-3000:]}"
    assert "Traceback" not in err, err[-3000:]
    for key in ("persons", "identities", "event_count", "events", "scores", "writeback_state"):
        assert got_store[key] == expected_store[key], key
    assert got_platform == expected_platform
