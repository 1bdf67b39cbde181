"""Issue 20, point 9: losing the database mid run loses no committed data, and the run resumes when
it returns. While ``leadsync sync`` runs, every backend of its database is terminated again and again
(``pg_terminate_backend``: what a server restart or a failover does to open connections). A page
whose connection died is written again on a new connection (``sync.ingest``); the run ends with the
same store and platform state as one uninterrupted run of the same world.

Where those terminations land depends on timing, so a second test terminates the connection of each
kind of store statement a sync makes, once each, just before it runs: every step outlives it."""

from __future__ import annotations

import json
import re
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, event, select, text

from leadsync.config.scoring_model import load_model
from leadsync.config.settings import load_config
from leadsync.sync.pipeline import pull_sources, push_sources, score
from leadsync.sync.runs import list_runs
from leadsync.sync.store import make_engine
from leadsync.sync.store.db import store_url as driver_url
from leadsync.sync.store.models import SyncRun
from tests.integration.pipeline.harness import Leadsync, platform_view, serve, store_state
from tests.worlds import private_copy

TERMINATIONS = 4
# terminating server connections is a PostgreSQL test (SQLite has no server): the pipeline tests'
# store fixture is given that one param here
pytestmark = pytest.mark.parametrize(
    "pipeline_store", [pytest.param("postgresql", marks=pytest.mark.postgresql)], indirect=True
)


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
    world: Any, pipeline_world: Any, tmp_path: Path
) -> None:
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


# The first statement of each kind is sent on a connection terminated just before it: a run's stale
# records closed, the cursor read, a page ingested, a lease taken and let go, a run record opened
# and closed, the change marks claimed, scores written, the push planned, its writes marked pending
# and recorded with their audit.
STEPS = {
    "closing stale runs": r"^SELECT syncrun\.id, syncrun\.source",
    "reading a cursor": r"^SELECT synccursor\.value",
    "ingesting a page": r"^INSERT INTO event ",
    "creating the staging table": r"^CREATE TEMPORARY TABLE IF NOT EXISTS leadsync_staging_event",
    "moving staged events over": r"^WITH inserted AS \(INSERT INTO event ",
    "taking a lease": r"^INSERT INTO lease ",
    "letting a lease go": r"^DELETE FROM lease ",
    "opening a run record": r"^INSERT INTO syncrun ",
    "closing a run record": r"^UPDATE syncrun SET finished_at",
    "claiming change marks": r"^UPDATE changedperson SET version",
    "writing scores": r"^INSERT INTO score ",
    "planning a push": r"^SELECT writebackstate\.remote_id",
    "marking writes pending": r"^INSERT INTO writebackstate ",
    "recording a push": r"^INSERT INTO writebackaudit ",
}
# ... and these just after it: what follows (the COPY of a page, on psycopg's cursor) meets it dead
STEPS_AFTER = {"copying a page": r"^DELETE FROM leadsync_staging_event"}


def test_every_store_step_of_a_sync_outlives_a_connection_lost_just_before_it(
    world: Any, tmp_path: Path
) -> None:
    import psycopg

    with serve(world) as server:
        lead = Leadsync.create(server, tmp_path / "store")
        config = load_config(lead.config)
        engine = make_engine(lead.store_url)
        admin = psycopg.connect(
            str(engine.url.set(drivername="postgresql").render_as_string(hide_password=False)),
            autocommit=True,
        )
        left, left_after = dict(STEPS), dict(STEPS_AFTER)
        lost: list[str] = []
        guard = threading.Lock()

        def terminate_first(steps: dict[str, str], connection: Any, statement: str) -> None:
            with guard:
                step = next((step for step, pattern in steps.items() if re.match(pattern, statement)), None)
                if step is None:
                    return
                del steps[step]
                # waits until the backend has exited: the statement then meets a dead connection
                pid = connection.connection.dbapi_connection.info.backend_pid
                admin.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,))
                lost.append(step)

        @event.listens_for(engine, "before_cursor_execute")
        def terminate_before(connection: Any, cursor: Any, statement: str, *_: Any) -> None:
            terminate_first(left, connection, statement)

        @event.listens_for(engine, "after_cursor_execute")
        def terminate_after(connection: Any, cursor: Any, statement: str, *_: Any) -> None:
            terminate_first(left_after, connection, statement)

        try:
            pulls = pull_sources(engine, config)
            scored = score(engine, load_model("default"))
            pushes = push_sources(engine, config)
            assert not left and not left_after, f"these steps never ran: {sorted(left | left_after)}"
            assert sorted(lost) == sorted(STEPS | STEPS_AFTER)
            assert all(pull.ok for pull in pulls), [(pull.source, pull.error) for pull in pulls]
            assert scored.scored == len(world.persons)
            assert all(push.ok and push.written == push.planned > 0 for push in pushes), pushes
            runs = list_runs(engine, limit=100)
            assert [run["status"] for run in runs] == ["ok"] * len(runs), runs
            assert len(runs) == 7  # 3 pulls, 1 score, 3 pushes: no run record opened twice
            assert all(push.planned == 0 for push in push_sources(engine, config)), "writes left unrecorded"
        finally:
            admin.close()
            engine.dispose()
