"""A worker stops promptly on SIGTERM even when its job is retrying against a platform that is gone:
the signal ends the retry back-off at once (``connectors.stopping``), and the job is tried again
later from its committed cursors.

Before, the worker's own stop flag was only read between pages: a job whose platform went away
retried each request for about half a minute (the retry policy's 6 attempts) before the worker
could exit (seen in the bench's scale-out run, 2026-12-06: about 50 s after SIGTERM)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from leadsync.sync.store import make_engine
from leadsync.sync.store.models import Event
from tests.integration.scaleout.harness import log_messages, serve_accounts, start, wait_for, write_config

SOURCE = "hubspot"
WORKER = ["worker", "--heartbeat", "0.5"]
STOP_WITHIN_S = 10.0  # the retry back-off alone lasts 30 s and more


def _contacts_stored(engine: Any) -> bool:
    with engine.connect() as connection:
        stored = select(func.count()).select_from(Event).where(Event.source_id.like("pv:%"))
        return connection.execute(stored).scalar_one() > 0


def _retrying(log: Path) -> bool:
    return any("retrying in" in message for message in log_messages(log))


def _done(log: Path) -> bool:
    return any(f": {SOURCE} done" in message for message in log_messages(log))


@pytest.mark.slow(30)
def test_sigterm_stops_a_worker_whose_job_is_retrying_against_a_platform_that_is_gone(
    tmp_path: Path, new_database: Any
) -> None:
    url = new_database()
    engine = make_engine(url)
    server = serve_accounts(1, 1000, latency_ms=50)
    log = tmp_path / "worker.log"
    worker = None
    try:
        with server:
            config = write_config(
                server,
                tmp_path / "leadsync.toml",
                store_url=url,
                engine="procrastinate",
                only=lambda source: source["name"] == SOURCE,
            )
            worker = start(config, *WORKER, log=log)
            wait_for(
                lambda: _contacts_stored(engine), timeout=120, what="the first page of contacts", every=0.02
            )
        # the platform is gone: the job's requests now fail to connect, and are retried after a wait
        wait_for(lambda: _retrying(log), timeout=30, what="a request retried after a back-off", every=0.05)
        assert not _done(log), "the job ended before the platform went away: make it longer"
        signalled = time.monotonic()
        worker.terminate()
        worker.wait(timeout=60)
        took = time.monotonic() - signalled
    finally:
        if worker is not None and worker.poll() is None:
            worker.kill()
            worker.wait()
        engine.dispose()
    messages = log_messages(log)
    assert took < STOP_WITHIN_S, f"the worker took {took:.1f} s to stop; its log ends {messages[-5:]}"
    assert any("stopping: running jobs stop before their next request" in m for m in messages), messages[-5:]
    assert not _done(log)  # cut short, to be tried again
