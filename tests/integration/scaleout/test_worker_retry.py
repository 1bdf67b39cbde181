"""A job whose pull fails (the platform answers 500 past the connector's own retries) is retried by
Procrastinate with back-off, and the retry, from the committed cursors, completes the sync."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import httpx
import tomli_w
from sqlalchemy import select

from leadsync.sync.store import make_engine
from leadsync.sync.store.models import SyncRun
from tests.integration.scaleout.harness import (
    log_messages,
    serve_accounts,
    start,
    stop_all,
    wait_for,
    write_config,
)


def test_a_failed_job_is_retried_with_back_off_and_completes(tmp_path: Path, pg_url: str) -> None:
    engine = make_engine(pg_url)
    with serve_accounts(1, 40) as server:
        config = write_config(
            server,
            tmp_path / "leadsync.toml",
            store_url=pg_url,
            engine="procrastinate",
            only=lambda source: source["name"] == "hubspot",
        )
        document: dict[str, Any] = tomllib.loads(config.read_text())
        # the connector gives up after 2 tries: the job fails, and Procrastinate retries it
        document["sources"][0]["options"].update({"max_attempts": 2, "backoff_initial_s": 0.1})
        # one stream, so that both 503s meet it (a source's streams run side by side)
        document["sources"][0]["streams"] = ["contacts"]
        config.write_text(tomli_w.dumps(document))
        faults = httpx.post(
            f"{server.base_url('hubspot')}/_sandbox/faults",
            json={"queue": [{"kind": "server_error", "status": 503, "count": 2}]},
        )
        faults.raise_for_status()
        log = tmp_path / "worker.log"
        worker = start(config, "worker", "--heartbeat", "1", log=log)
        try:
            wait_for(
                lambda: any(": hubspot done" in m for m in log_messages(log)),
                timeout=120,
                what="the retried job",
            )
        finally:
            stop_all([worker])
    with engine.connect() as connection:
        pulls = list(
            connection.execute(
                select(SyncRun.status, SyncRun.started_at, SyncRun.finished_at)
                .where(SyncRun.source == "hubspot", SyncRun.command == "pull")
                .order_by(SyncRun.id)
            )
        )
    engine.dispose()
    assert [row.status for row in pulls] == ["failed", "ok"]
    waited = (pulls[1].started_at - pulls[0].finished_at).total_seconds()
    assert waited >= 2  # Procrastinate's exponential back-off: 2 s before the second try
    jobs = [re.match(r"job (\d+): syncing hubspot", m) for m in log_messages(log)]
    numbers = [match[1] for match in jobs if match]
    assert len(numbers) == 2 and numbers[0] == numbers[1]  # the same job, tried twice
