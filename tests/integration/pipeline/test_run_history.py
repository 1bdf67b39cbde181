"""Run history wired into the pipeline, against the sandbox over loopback HTTP: every pull, score and
push records its run with its trigger, worker and counts (requests, 429 answers and retries as the
sandbox saw them), and a run whose process is gone is closed as interrupted by the next run."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from leadsync.config.scoring_model import load_model
from leadsync.config.settings import load_config
from leadsync.sandbox.world import generate_world
from leadsync.sync.lease import acquire
from leadsync.sync.pipeline import pull_sources, push_sources, score
from leadsync.sync.runs import ALL_SOURCES, Step, Trigger, list_runs, start_run
from leadsync.sync.scheduler import Daemon
from leadsync.sync.store import make_engine
from leadsync.sync.store.models import SyncRun, WritebackAudit
from tests.integration.pipeline.harness import Leadsync, serve


def _dead_worker() -> str:
    """The holder id of a process on this host that has exited."""
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )

    return f"{socket.gethostname()}:{int(done.stdout)}:dead00"


def test_each_step_records_its_run_with_trigger_worker_and_the_sandboxs_counts(
    world: Any, tmp_path: Path
) -> None:
    with serve(world) as server:
        lead = Leadsync.create(server, tmp_path / "store")
        config = load_config(lead.config)
        engine = make_engine(lead.store_url)
        try:
            # two 429 answers on HubSpot (with a short Retry-After): the client retries both
            httpx.post(
                f"{server.base_url('hubspot')}/_sandbox/faults",
                json={"queue": [{"kind": "rate_limit", "count": 2, "retry_after": 0.05}]},
                timeout=10,
            ).raise_for_status()
            before = {name: stats["requests"] for name, stats in server.stats().items()}
            pulls = pull_sources(engine, config)
            sent = {name: stats["requests"] - before[name] for name, stats in server.stats().items()}
            assert all(r.ok for r in pulls), pulls
            runs = {run["source"]: run for run in list_runs(engine, step=Step.PULL)}
            assert set(runs) == {"hubspot", "mailchimp", "activecampaign"}
            for pulled in pulls:
                run = runs[pulled.source]
                counts = run["counts"]
                assert (run["status"], run["trigger"], run["step"]) == ("ok", "command", "pull")
                assert run["worker"] and run["finished_at"] is not None
                # what the sandbox answered is what the run says it asked
                assert counts["requests"] == sent[pulled.source], (pulled.source, counts, sent)
                assert counts["contacts"] == pulled.contacts > 0
                assert counts["upserted"] == pulled.contacts + pulled.events
                assert counts["records_read"] == pulled.contacts + pulled.events + pulled.quarantined
                assert sum(s["requests"] for s in counts["streams"].values()) == counts["requests"]
                assert sum(s["records"] for s in counts["streams"].values()) == counts["upserted"]
            assert runs["hubspot"]["counts"]["throttled"] == 2
            assert runs["hubspot"]["counts"]["retries"] >= 2
            assert server.stats()["hubspot"]["answered_429"] == 2

            scored = score(engine, load_model("default"))
            (score_run,) = list_runs(engine, step=Step.SCORE)
            assert score_run["source"] == ALL_SOURCES and score_run["status"] == "ok"
            assert score_run["counts"]["persons_scored"] == scored.scored > 0

            pushes = push_sources(engine, config, ["hubspot", "activecampaign"])
            assert all(r.ok and r.written > 0 for r in pushes), pushes
            push_runs = {run["source"]: run for run in list_runs(engine, step=Step.PUSH)}
            with engine.connect() as connection:
                for pushed in pushes:
                    run = push_runs[pushed.source]
                    assert run["status"] == "ok"
                    assert run["counts"]["written"] == pushed.written
                    assert run["counts"]["planned"] == pushed.planned
                    assert run["counts"]["requests"] >= pushed.requests > 0
                    audited = connection.execute(
                        select(WritebackAudit.remote_id).where(WritebackAudit.run_id == run["id"])
                    ).all()
                    assert {r.remote_id for r in audited} and len(
                        {r.remote_id for r in audited}
                    ) == pushed.written

            # the daemon's runs say so (it pushes mailchimp's first writes)
            Daemon(engine, config, load_model("default")).run_source("mailchimp")
            newest = list_runs(engine, sources=["mailchimp"], limit=2)
            assert [(r["step"], r["trigger"], r["command"]) for r in newest] == [
                ("push", "daemon", "daemon"),
                ("pull", "daemon", "daemon"),
            ]
            assert list_runs(engine, step=Step.SCORE, limit=1)[0]["trigger"] == Trigger.DAEMON.value
            # a push with nothing to write makes no request and records no run
            assert push_sources(engine, config, ["mailchimp"])[0].planned == 0
            assert list_runs(engine, sources=["mailchimp"], limit=1)[0]["trigger"] == "daemon"
        finally:
            engine.dispose()


def test_a_run_whose_process_is_gone_is_marked_interrupted_by_the_next_run_and_never_shown_syncing(
    world: Any, tmp_path: Path
) -> None:
    with serve(world) as server:
        lead = Leadsync.create(server, tmp_path / "store")
        lead.run("status")  # creates the store
        engine = make_engine(lead.store_url)
        try:
            dead = _dead_worker()
            # a pull killed mid-run: its record says running and its lease (unexpired) is still there
            orphan = start_run(
                engine,
                source="hubspot",
                step=Step.PULL,
                trigger=Trigger.DAEMON,
                command="daemon",
                worker=dead,
            )
            acquire(engine, "source:hubspot", dead, ttl=timedelta(minutes=5))
            # a run that never held a lease (an older store's record, or one killed before taking it)
            other = start_run(
                engine,
                source="mailchimp",
                step=Step.PULL,
                trigger=Trigger.COMMAND,
                command="pull",
                worker="elsewhere:1:aaaaaa",
            )
            lead.run("pull", "hubspot", "mailchimp")
            with engine.connect() as connection:
                rows = {
                    row.id: row
                    for row in connection.execute(select(SyncRun).where(SyncRun.id.in_([orphan, other])))
                }
            assert rows[orphan].status == "interrupted" and "interrupted" in rows[orphan].error
            assert rows[other].status == "interrupted"
            # every run the CLI started has finished: none is left "running"
            with engine.connect() as connection:
                assert connection.execute(select(SyncRun).where(SyncRun.status == "running")).all() == []
            status = lead.run("status").stdout
            assert "syncing now" not in status and "No daemon is running" in status, status
        finally:
            engine.dispose()


def test_status_shows_the_next_run_only_while_a_daemon_runs_and_never_a_killed_one_as_syncing(
    world: Any, tmp_path: Path
) -> None:
    from tests.integration.pipeline.test_daemon import Daemon

    with serve(world) as server:
        lead = Leadsync.create(server, tmp_path / "store")
        status = json.loads(lead.run("status", "--json").stdout)
        assert all(item["daemon"] is False and item["next_run"] is None for item in status), status
        # 300 ms per ActiveCampaign request keeps the daemon pulling it while the test looks
        httpx.post(
            f"{server.base_url('activecampaign')}/_sandbox/latency", json={"ms": 300}
        ).raise_for_status()
        daemon = Daemon(lead)
        try:
            daemon.wait_started()
            engine = make_engine(lead.store_url)
            deadline = time.monotonic() + 60
            while not list_runs(engine, sources=["activecampaign"], limit=1):
                assert time.monotonic() < deadline, daemon.log
                time.sleep(0.1)
            engine.dispose()
            status = {item["source"]: item for item in json.loads(lead.run("status", "--json").stdout)}
            assert all(item["daemon"] is True and item["next_run"] is not None for item in status.values())
            syncing = status["activecampaign"]
            assert syncing["syncing"] and syncing["last_run"]["status"] == "running", syncing
            assert syncing["lease"]["holder"].split(":")[1] == str(daemon.process.pid), syncing
            text = " ".join(lead.run("status").stdout.split())
            assert "daemon running" in text and "No daemon" not in text, text
            assert "syncing now" in text, text
            daemon.process.send_signal(signal.SIGKILL)
            daemon.process.wait(timeout=10)
        finally:
            if daemon.process.poll() is None:
                daemon.process.kill()
        # killed mid-pull: its heartbeat and lease are left behind, unexpired, but its process is gone
        status = {item["source"]: item for item in json.loads(lead.run("status", "--json").stdout)}
        assert all(item["daemon"] is False and item["next_run"] is None for item in status.values()), status
        assert not any(item["syncing"] for item in status.values()), status
        assert status["activecampaign"]["last_run"]["status"] == "interrupted", status
        text = " ".join(lead.run("status").stdout.split())
        assert "No daemon is running" in text and "syncing now" not in text, text


@pytest.mark.slow(35)
@pytest.mark.timeout(600)
def test_status_json_carries_counts_under_10kb_for_2000_contacts_and_verbose_adds_the_lists(
    tmp_path: Path,
) -> None:
    with serve(generate_world(2_000, 7)) as server:
        lead = Leadsync.create(server, tmp_path / "store")
        lead.run("pull", timeout=540)
        lead.run("score", timeout=300)  # nothing pushed: every contact has writes pending
        done = lead.run("status", "--json")
        status = json.loads(done.stdout)
        size = len(done.stdout.encode())
        print(f"status --json for 2,000 contacts: {size} bytes")
        assert size < 10_000, size
        assert sum(item["identities"] for item in status) >= 2_000
        assert sum(item["pending_writes"] for item in status) >= 2_000
        for item in status:
            assert isinstance(item["pending_writes"], int) and isinstance(item["quarantined"], int)
            assert "cursors" not in item and item["streams"], item
        verbose = json.loads(lead.run("status", "--json", "--verbose").stdout)
        assert all(item["cursors"] for item in verbose)
