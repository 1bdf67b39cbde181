"""``daemon --webhook-port``: the daemon receives webhooks and works them while its scheduled jobs
keep running on time, and it still exits promptly on SIGTERM."""

from __future__ import annotations

import os
import signal
import sys
import time
import tomllib
from pathlib import Path

import tomli_w
from sqlalchemy import func, select

from leadsync.sandbox.world import generate_world
from leadsync.sync.store.models import SyncRun
from tests.integration.webhooks.live import Live
from tests.integration.webhooks.processes import receiver_port, start_logged


def _pulls(live: Live) -> int:
    with live.engine.connect() as connection:
        return connection.execute(
            select(func.count()).select_from(SyncRun).where(SyncRun.step == "pull")
        ).scalar_one()


def test_daemon_receives_webhooks_and_its_jobs_run_on_time(tmp_path: Path) -> None:
    live = Live.start(generate_world(40, 9), tmp_path)
    daemon = None
    try:
        live.sync()
        config_file = live.folder / "leadsync.toml"
        document = tomllib.loads(config_file.read_text(encoding="utf-8"))
        for source in document["sources"]:
            source["interval"] = 2
        config_file.write_text(tomli_w.dumps(document), encoding="utf-8")
        env = {k: v for k, v in os.environ.items() if k not in ("LEADSYNC_CONFIG", "LEADSYNC_STORE_URL")}
        # --log-json: one line a log record whatever the terminal's width (receiver_port reads them)
        daemon, lines = start_logged(
            [sys.executable, "-m", "leadsync.sync.cli", "--config", str(config_file), "--log-json", "daemon", "--webhook-port", "0"],
            env,
        )  # fmt: skip
        port = receiver_port(daemon, lines)
        live.send_webhooks_to(f"http://127.0.0.1:{port}")
        pulls = _pulls(live)
        people = [p for p in live.server.state.world.persons if "hubspot" in {str(x) for x in p.platforms}][
            :4
        ]
        for person in people:
            for _ in range(3):
                live.act(
                    person.email_on("hubspot"), "page_view", "hubspot", url="https://example.com/pricing"
                )
            time.sleep(1.0)
        live.settle(timeout=60)
        assert "rescored" in {row.outcome for row in live.rows()}
        assert _pulls(live) - pulls >= 3 * 2  # every source ran at least twice meanwhile
        daemon.send_signal(signal.SIGTERM)
        started = time.monotonic()
        daemon.wait(timeout=30)
        assert time.monotonic() - started < 10
    finally:
        if daemon is not None and daemon.poll() is None:
            daemon.kill()
        live.close()
