"""Issue 20, acceptance 3: a worker killed with SIGKILL in the middle of a job. Procrastinate hands
the job, whose worker stopped sending heartbeats, to another worker (``sync.workers.retry_stalled``),
which goes on from the committed cursors; the result equals an uninterrupted run of the same job:
the fields on the platform, the events in the store, no duplicates.

The kill comes as soon as the first page of contacts is stored: the connector has read the next
page ahead by then, so a cursor committed with what that reading changed would claim page views and
form submissions that were never stored (it did: 4,094 of 24,410 events lost, ``pipeline.as_handed_over``)."""

from __future__ import annotations

import copy
import os
import signal
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from leadsync.sync.store import make_engine
from leadsync.sync.store.models import Event
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

CONTACTS = 400
LATENCY_MS = 15
SOURCE = "hubspot"
WORKER = ["worker", "--heartbeat", "0.5", "--stalled-after", "2"]


def _done(log: Path) -> bool:
    return any(f": {SOURCE} done" in message for message in log_messages(log))


def _events(engine: Engine) -> int:
    with engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(Event)).scalar_one()


def _contacts_stored(engine: Engine) -> bool:
    """A page of contacts is stored: the page views of their counters are (``pv:{id}:{n}``)."""
    with engine.connect() as connection:
        stored = select(func.count()).select_from(Event).where(Event.source_id.like("pv:%"))
        return connection.execute(stored).scalar_one() > 0


def _only_source(source: dict[str, Any]) -> bool:
    return source["name"] == SOURCE


@pytest.mark.slow(40)
def test_a_worker_killed_mid_job_is_replaced_and_the_result_equals_an_uninterrupted_run(
    tmp_path: Path, new_database: Any
) -> None:
    server = serve_accounts(1, CONTACTS, latency_ms=LATENCY_MS)
    world = copy.deepcopy(server.state.world)
    emails = sorted({p.email.strip().lower() for p in world.persons})

    # The uninterrupted run: one worker takes the job (the periodic schedule defers it) to its end.
    clean_url = new_database()
    make_engine(clean_url).dispose()
    with server:
        config = write_config(
            server, tmp_path / "clean.toml", store_url=clean_url, engine="procrastinate", only=_only_source
        )
        log = tmp_path / "clean.log"
        worker = start(config, *WORKER, log=log, score_now=SCORE_NOW)
        try:
            wait_for(lambda: _done(log), timeout=240, what="the uninterrupted job")
        finally:
            stop_all([worker])
        expected_store = store_state(StoreAt(clean_url))  # type: ignore[arg-type]
        expected_platform = platform_view(server, emails)

    # The same job, its worker killed with SIGKILL part-way through the pull.
    killed_url = new_database()
    engine = make_engine(killed_url)
    with serve_accounts(1, CONTACTS, latency_ms=LATENCY_MS) as server:
        config = write_config(
            server, tmp_path / "killed.toml", store_url=killed_url, engine="procrastinate", only=_only_source
        )
        logs = [tmp_path / "worker-a.log", tmp_path / "worker-b.log"]
        workers = [start(config, *WORKER, log=path, score_now=SCORE_NOW) for path in logs]
        try:
            wait_for(
                lambda: _contacts_stored(engine), timeout=120, what="the first page of contacts", every=0.02
            )
            # the worker running the job: the one whose log says it started it
            victim = next(
                index
                for index, path in enumerate(logs)
                if any(f"syncing {SOURCE}" in message for message in log_messages(path))
            )
            assert not _done(logs[victim]), "the job ended before the kill: make it longer"
            os.kill(workers[victim].pid, signal.SIGKILL)
            workers[victim].wait(timeout=30)  # reaped: a zombie still looks alive to the lease check
            events_at_kill = _events(engine)
            survivor = 1 - victim
            wait_for(lambda: _done(logs[survivor]), timeout=180, what="another worker to finish the job")
        finally:
            stop_all(workers)
        got_store = store_state(StoreAt(killed_url))  # type: ignore[arg-type]
        got_platform = platform_view(server, emails)
    engine.dispose()

    started = [m for m in log_messages(logs[victim]) if f"syncing {SOURCE}" in m]
    retried = [m for m in log_messages(logs[survivor]) if f"syncing {SOURCE}" in m]
    assert started and retried
    assert started[0].split(":")[0] == retried[-1].split(":")[0]  # the same job ("job N"), retried
    assert any("lost its worker: retrying it" in m for log in logs for m in log_messages(log))
    print(f"killed after {events_at_kill} of {expected_store['event_count']} events were stored")
    # killed mid pull (the log shows the job unfinished)
    assert 0 < events_at_kill < expected_store["event_count"]
    assert got_store["event_count"] == len(got_store["events"])  # no event stored twice
    # which events differ, by the first part of their source id, when the stores do not match
    missing = sorted(set(expected_store["events"]) - set(got_store["events"]))
    extra = sorted(set(got_store["events"]) - set(expected_store["events"]))
    kinds = Counter(str(source_id).split(":")[0][:16] for _, source_id in missing)
    assert not missing and not extra, (
        f"{len(missing)} events missing ({kinds.most_common(5)}; first {missing[:3]}), {len(extra)} extra "
        f"(first {extra[:3]}), killed after {events_at_kill} events"
    )
    for key in ("persons", "identities", "event_count", "events", "scores", "writeback_state"):
        assert got_store[key] == expected_store[key], key
    assert got_platform == expected_platform
