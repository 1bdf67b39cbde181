"""Run history: one record per run and step, its outcome, interrupted runs closed, pruning."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from leadsync.connectors.errors import LeadsyncError
from leadsync.sync.lease import acquire, holder_id, release
from leadsync.sync.runs import (
    Outcome,
    RunCounts,
    Step,
    Trigger,
    get_run,
    list_runs,
    mark_interrupted,
    prune_runs,
    recorded_run,
)
from leadsync.sync.store import make_engine
from leadsync.sync.store.models import SyncRun, WritebackAudit

NOW = datetime(2026, 12, 1, tzinfo=UTC)


@pytest.fixture
def engine(store_url):
    engine = make_engine(store_url)
    yield engine
    engine.dispose()


def _status(engine, run_id: int) -> str:
    with engine.connect() as connection:
        return connection.execute(select(SyncRun.status).where(SyncRun.id == run_id)).scalar_one()


def test_a_run_is_running_while_it_works_and_ok_with_its_counts_after(engine):
    with recorded_run(
        engine, source="hubspot", step=Step.PULL, trigger=Trigger.DAEMON, command="daemon"
    ) as run:
        assert _status(engine, run.id) == "running"
        run.counts.contacts = 3
        run.counts.add_stream("contacts", requests=2, records=3)
    (row,) = list_runs(engine)
    assert row["status"] == "ok"
    assert (row["step"], row["trigger"], row["command"]) == ("pull", "daemon", "daemon")
    assert row["counts"] == {"contacts": 3, "streams": {"contacts": {"requests": 2, "records": 3}}}
    assert row["finished_at"] is not None and row["seconds"] >= 0
    assert row["worker"] == run.worker


@pytest.mark.parametrize(
    ("raised", "outcome"),
    [
        (LeadsyncError("HubSpot refused the token"), "failed"),
        (ValueError("bad"), "failed"),
        (KeyboardInterrupt(), "stopped"),
        (type("Stopped", (LeadsyncError,), {})("stopped by SIGTERM"), "stopped"),
    ],
)
def test_an_exception_ends_the_record_with_its_outcome_and_goes_on(engine, raised, outcome):
    with pytest.raises(type(raised)), recorded_run(engine, source="s", step=Step.PUSH) as run:
        raise raised
    assert _status(engine, run.id) == outcome
    assert list_runs(engine)[0]["error"]


def test_an_error_set_by_the_block_records_a_failed_run(engine):
    with recorded_run(engine, source="s", step=Step.PULL) as run:
        run.error = "platform down\n" + "x" * 2000
    (row,) = list_runs(engine)
    assert row["status"] == "failed"
    assert "\n" not in row["error"] and len(row["error"]) <= 500


def test_listing_filters_by_source_and_failure_newest_first(engine):
    for source, error in [("a", None), ("b", "down"), ("a", "refused"), ("a", None)]:
        with recorded_run(engine, source=source, step=Step.PULL) as run:
            run.error = error
    assert [r["source"] for r in list_runs(engine)] == ["a", "a", "b", "a"]
    assert [(r["source"], r["status"]) for r in list_runs(engine, sources=["a"], failed=True)] == [
        ("a", "failed")
    ]
    assert len(list_runs(engine, limit=2)) == 2


def test_a_run_shows_the_writes_it_made_from_the_audit(engine):
    with recorded_run(engine, source="hubspot", step=Step.PUSH) as run:
        with engine.begin() as connection:
            connection.execute(
                WritebackAudit.__table__.insert(),
                [
                    {"run_id": run.id, "source": "hubspot", "remote_id": "7", "field": "grade", "old_value": "B2",
                     "new_value": "A1", "status": "written", "at": NOW},
                    {"run_id": run.id + 1, "source": "hubspot", "remote_id": "8", "field": "grade",
                     "old_value": None, "new_value": "C3", "status": "written", "at": NOW},
                ],
            )  # fmt: skip
    shown = get_run(engine, run.id)
    assert [(w["remote_id"], w["field"], w["old"], w["new"]) for w in shown["writes"]] == [
        ("7", "grade", "B2", "A1")
    ]
    assert get_run(engine, run.id + 99) is None


def test_a_running_row_whose_lease_is_gone_is_marked_interrupted_and_a_live_one_is_not(engine):
    alive = holder_id()
    acquire(engine, "source:live", alive, ttl=timedelta(minutes=1))
    with engine.begin() as connection:
        for source, worker in [("live", alive), ("dead", "otherhost:123:abc")]:
            connection.execute(
                SyncRun.__table__.insert().values(
                    source=source, step="pull", trigger="daemon", command="daemon", worker=worker,
                    started_at=NOW, status="running", counts={},
                )
            )  # fmt: skip
    assert mark_interrupted(engine) == 1
    assert {r["source"]: r["status"] for r in list_runs(engine)} == {"live": "running", "dead": "interrupted"}
    release(engine, "source:live", alive)
    assert mark_interrupted(engine) == 1  # its lease is gone now too
    assert mark_interrupted(engine) == 0


def test_a_score_run_of_a_process_that_died_on_this_host_is_marked_interrupted(engine):
    child = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    dead = f"{holder_id().split(':')[0]}:{child.stdout.strip()}:gone"
    with engine.begin() as connection:
        connection.execute(
            SyncRun.__table__.insert().values(
                source="*", step="score", trigger="command", command="score", worker=dead,
                started_at=datetime.now(UTC), status="running", counts={},
            )
        )  # fmt: skip
    with recorded_run(engine, source="*", step=Step.SCORE):  # a live score run is left alone
        assert mark_interrupted(engine) == 1
    assert [r["status"] for r in list_runs(engine)] == ["ok", "interrupted"]


def test_pruning_deletes_finished_runs_older_than_the_age_and_keeps_running_ones(engine):
    with engine.begin() as connection:
        for days, status in [(100, "ok"), (100, "running"), (10, "failed")]:
            connection.execute(
                SyncRun.__table__.insert().values(
                    source="s", step="pull", command="pull", started_at=NOW - timedelta(days=days),
                    status=status, counts={},
                )
            )  # fmt: skip
    assert prune_runs(engine, older_than=timedelta(days=90), now=NOW) == 1
    assert sorted(r["status"] for r in list_runs(engine)) == ["failed", "running"]


def test_counts_round_trip_and_add_request_growth():
    counts = RunCounts()
    assert (
        counts.add_requests({"requests": 2, "throttled": 0}, {"requests": 7, "throttled": 1, "retries": 1})
        == 5
    )
    assert RunCounts.from_dict({**counts.as_dict(), "unknown": 1}) == counts
    assert counts.as_dict() == {"requests": 5, "throttled": 1, "retries": 1}
    assert Outcome("interrupted") is Outcome.INTERRUPTED
