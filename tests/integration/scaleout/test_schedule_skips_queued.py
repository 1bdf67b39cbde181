"""The workers' schedule never queues a source again while a job of it waits or runs: a job taken
by a worker records its run only once it holds the lease, and a tick in between saw the source as
never run (13 pulls of 12 sources in ``bench.scaleout --quick``)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import text

from leadsync.config.settings import LeadsyncConfig
from leadsync.sync.store import make_engine
from leadsync.sync.workers import due_sources, enqueue, queued_sources


def _config(url: str, *names: str) -> LeadsyncConfig:
    return LeadsyncConfig.model_validate(
        {
            "store": {"url": url},
            "engine": {"kind": "procrastinate"},
            "sources": [
                {
                    "name": name,
                    "platform": "hubspot",
                    "base_url": "http://127.0.0.1:9",
                    "inline_secrets": {"token": "pat-na1-x"},
                }
                for name in names
            ],
        }
    )


def test_a_source_whose_job_a_worker_took_before_its_run_began_is_not_queued_again(
    new_database: Callable[[], str],
) -> None:
    url = new_database()
    engine = make_engine(url)
    config = _config(url, "taken", "waiting", "idle")
    assert set(enqueue(engine, config, ["taken", "waiting"])) == {"taken", "waiting"}
    with engine.begin() as connection:  # a worker took it: no run recorded yet, no lease yet
        connection.execute(text("UPDATE procrastinate_jobs SET status = 'doing' WHERE lock = 'source:taken'"))
    due = due_sources(engine, config, now=datetime.now(UTC))
    assert due == ["taken", "waiting", "idle"]  # none has run
    queued = queued_sources(engine)
    assert queued == {"taken", "waiting"}
    assert [name for name in due if name not in queued] == ["idle"]
    with engine.begin() as connection:
        connection.execute(text("UPDATE procrastinate_jobs SET status = 'succeeded'"))
    assert queued_sources(engine) == set()
    engine.dispose()
