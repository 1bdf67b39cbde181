"""A receiver killed with SIGKILL after acknowledging deliveries loses none of them: on restart
every queued delivery is processed once, compared with the sandbox's sent log."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from sqlalchemy import select

from leadsync.sandbox.world import generate_world
from leadsync.sync.store.models import WebhookDelivery
from tests.integration.webhooks.live import Live
from tests.integration.webhooks.processes import receiver_port, start_logged


def _serve(live: Live, port: int, *extra: str) -> tuple[subprocess.Popen[str], int]:
    """``webhooks serve`` on ``port`` (0: any free port); the process and the port it listens on."""
    env = {k: v for k, v in os.environ.items() if k not in ("LEADSYNC_CONFIG", "LEADSYNC_STORE_URL")}
    command = [
        sys.executable,
        "-m",
        "leadsync.sync.cli",
        "--config",
        str(live.folder / "leadsync.toml"),
        "webhooks",
        "serve",
        "--port",
        str(port),
        *extra,
    ]
    process, lines = start_logged(command, env)
    try:
        return process, receiver_port(process, lines)
    except AssertionError:
        process.kill()  # the caller never gets it to stop
        raise


def test_sigkill_after_ack_loses_nothing_and_restart_processes_each_once(tmp_path: Path) -> None:
    live = Live.start(generate_world(50, 4), tmp_path)
    first = second = None
    try:
        live.sync()
        first, port = _serve(live, 0, "--no-process")  # acknowledges and queues, works nothing
        live.send_webhooks_to(f"http://127.0.0.1:{port}")
        people = [p for p in live.server.state.world.persons if len(p.platforms) >= 2][:6]
        for person in people:
            for platform in {str(p) for p in person.platforms}:
                if person.email_on(platform) != person.email:
                    continue
                kind = {
                    "hubspot": "page_view",
                    "activecampaign": "email_click",
                    "mailchimp": "email_unsubscribe",
                }[platform]
                live.act(person.email, kind, platform, url="https://example.com/pricing")
        assert live.server.state.webhooks.drain(30)
        acked = [entry for entry in live.sent() if entry["status"] == 200]
        assert acked and all(entry["status"] == 200 for entry in live.sent()), live.sent()
        queued_before_kill = {row.event_id for row in live.rows()}
        assert queued_before_kill == {event_id for entry in acked for event_id in entry["ids"]}
        assert all(row.status == "queued" for row in live.rows())

        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        second, _ = _serve(live, port)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            rows = {row.event_id: row for row in live.rows() if row.event_id in queued_before_kill}
            if all(row.status != "queued" for row in rows.values()):
                break
            time.sleep(0.2)
        with live.engine.connect() as connection:
            rows = {
                row.event_id: row
                for row in connection.execute(select(WebhookDelivery)).all()
                if row.event_id in queued_before_kill
            }
        assert set(rows) == queued_before_kill  # none lost, none twice (one row per event id)
        assert {row.status for row in rows.values()} == {"done"}, {r.event_id: r.error for r in rows.values()}
        assert {row.attempts for row in rows.values()} == {1}  # each worked once
        assert "rescored" in {row.outcome for row in rows.values()}
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
        live.close()


def test_sigkill_while_working_a_delivery_works_it_again_on_restart_and_it_lands_once(tmp_path: Path) -> None:
    live = Live.start(generate_world(40, 11), tmp_path)
    first = second = None
    try:
        live.sync()
        first, port = _serve(live, 0)
        live.send_webhooks_to(f"http://127.0.0.1:{port}")
        person = next(
            p for p in live.server.state.world.persons
            if "hubspot" in {str(x) for x in p.platforms} and len(p.platforms) > 1 and p.email_on("hubspot") == p.email
        )  # fmt: skip
        before = live.scores(person.email)
        # HubSpot answers slowly: the fast path is inside its read of the contact when the kill comes
        httpx.post(
            live.server.base_url("hubspot") + "/_sandbox/latency", json={"ms": 4000}
        ).raise_for_status()
        for _ in range(3):
            live.act(person.email, "page_view", "hubspot", url="https://example.com/pricing")
        assert live.server.state.webhooks.drain(30)
        deadline = time.monotonic() + 30
        while not any(row.attempts for row in live.rows()):
            assert time.monotonic() < deadline, "the delivery was never taken up"
            time.sleep(0.05)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        taken = {row.event_id for row in live.rows()}
        assert {row.status for row in live.rows()} == {"queued"}  # acknowledged, not finished
        httpx.post(live.server.base_url("hubspot") + "/_sandbox/latency", json={"ms": 0}).raise_for_status()
        second, _ = _serve(live, port)
        live.settle(timeout=60)
        rows = {row.event_id: row for row in live.rows() if row.event_id in taken}
        assert set(rows) == taken and {row.status for row in rows.values()} == {"done"}
        assert max(row.attempts for row in rows.values()) == 2  # the killed attempt, then this one
        after = live.scores(person.email)
        assert after != before
        for name, values in live.on_platforms(person.email).items():
            assert values == after, f"{name} holds {values}, the store scored {after}"
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
        live.close()
