"""Issue 21, acceptance 4: HubSpot OAuth through the dated path ``/oauth/2026-03/token``.

An access token that expires in the middle of a sync is refreshed through the 2026-03 path and the
sync goes on; a token about to run out is refreshed before it does (``expires_in``); no token,
refresh token or client secret appears in the logs or in the store. The sandbox keeps serving v1
until its 2027-02-16 shutdown (hubspot.md §1) and answers 404 from then on.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import tomli_w

from leadsync.sandbox.configfile import write_sandbox_config
from leadsync.sandbox.hubspot.emulator import HubSpotEmulator
from leadsync.sandbox.server import SandboxServer
from leadsync.sandbox.world import generate_world
from tests import forkcli

ROOT = Path(__file__).resolve().parents[3]
OAUTH = {
    "client_id": "oauthtest-client-0c1d2e3f",
    "client_secret": "oauthtest-SECRET-9a8b7c6d5e4f",
    "refresh_token": "oauthtest-REFRESH-na1-7e6d5c4b3a29",
}


@pytest.fixture
def server() -> Iterator[SandboxServer]:
    with SandboxServer.for_world(
        generate_world(80, 3),
        emulators=[HubSpotEmulator],
        ports={"hubspot": 0},
        rate_limits=False,
        extra={"hubspot": {"oauth": OAUTH}},
    ) as running:
        yield running


def _issued(server: SandboxServer) -> list[str]:
    """Record every access token the sandbox issues (the test scans for them afterwards)."""
    emulator = server.state.hosts["hubspot"].emulator
    issued: list[str] = []
    original = emulator.issue_token

    def issue(token: str, expires_at: float) -> None:
        issued.append(token)
        original(token, expires_at)

    emulator.issue_token = issue  # type: ignore[method-assign]
    return issued


def _sync(server: SandboxServer, folder: Path) -> tuple[subprocess.CompletedProcess[str], Path]:
    config, store = folder / "leadsync.toml", folder / "store.db"
    write_sandbox_config(server, config, store_url=f"sqlite:///{store}")
    document: dict[str, Any] = tomllib.loads(config.read_text())
    document["sources"][0]["inline_secrets"] = dict(OAUTH)
    config.write_text(tomli_w.dumps(document))
    done = forkcli.run(
        [
            sys.executable,
            "-m",
            "leadsync.sync.cli",
            "--config",
            str(config),
            "--log-level",
            "DEBUG",
            "--log-json",
            "sync",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    return done, store


def _grants(server: SandboxServer) -> dict[str, int]:
    return dict(server.state.hosts["hubspot"].emulator.token_grants)


def _no_secret_in(texts: list[str], store: Path, secrets: list[str]) -> None:
    blob = store.read_bytes() + b"".join(p.read_bytes() for p in store.parent.glob("store.db*") if p != store)
    for secret in secrets:
        assert all(secret not in text for text in texts), "a secret is in the output"
        assert secret.encode() not in blob, "a secret is in the store"


def test_given_a_token_expiring_mid_sync_when_synced_then_it_is_refreshed_at_2026_03_and_the_sync_goes_on(
    server: SandboxServer, tmp_path: Path
) -> None:
    issued = _issued(server)
    # the access token dies at the first meetings search: a 401, a refresh, the same request again
    httpx.post(
        f"{server.base_url('hubspot')}/_sandbox/faults",
        json={"queue": [{"kind": "expire_token"}], "paths": "/crm/v3/objects/meetings/search"},
    ).raise_for_status()
    done, store = _sync(server, tmp_path)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    grants = _grants(server)
    assert grants.get("/oauth/2026-03/token", 0) >= 2 and "/oauth/v1/token" not in grants, grants
    stats = server.stats()["hubspot"]
    assert stats["by_status"].get("401", 0) >= 1 and stats["faults_injected"] == {"expire_token": 1}
    with sqlite3.connect(store) as db:  # the stream that met the 401 and the ones after it were stored
        kinds = dict(db.execute("SELECT type, count(*) FROM event GROUP BY type").fetchall())
    assert kinds.get("meeting_booked", 0) > 0 and kinds.get("call", 0) > 0 and kinds.get("deal_won", 0) > 0
    assert len(issued) == grants["/oauth/2026-03/token"]
    _no_secret_in(
        [done.stdout, done.stderr], store, [*issued, OAUTH["refresh_token"], OAUTH["client_secret"]]
    )


def test_given_short_lived_tokens_when_synced_then_they_are_refreshed_before_they_run_out(
    tmp_path: Path,
) -> None:
    with SandboxServer.for_world(
        generate_world(80, 3),
        emulators=[HubSpotEmulator],
        ports={"hubspot": 0},
        rate_limits=False,
        extra={"hubspot": {"oauth": OAUTH, "token_ttl_s": 2}},  # refreshed after half of 2 s
    ) as server:
        issued = _issued(server)
        done, store = _sync(server, tmp_path)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        grants = _grants(server)
        stats = server.stats()["hubspot"]
    assert grants.get("/oauth/2026-03/token", 0) >= 2, (grants, "the run was too short to need a refresh")
    assert stats["by_status"].get("401", 0) == 0  # refreshed ahead of expires_in, never on a refusal
    _no_secret_in(
        [done.stdout, done.stderr], store, [*issued, OAUTH["refresh_token"], OAUTH["client_secret"]]
    )


def test_given_the_sandbox_clock_past_the_v1_shutdown_when_refreshing_then_v1_is_gone_and_2026_03_serves(
    server: SandboxServer,
) -> None:
    form = {"grant_type": "refresh_token", **OAUTH}
    base = server.base_url("hubspot")
    assert httpx.post(f"{base}/oauth/v1/token", data=form).status_code == 200  # before 2027-02-16
    clock = server.state.clock
    clock.advance(datetime(2027, 2, 16, tzinfo=UTC) - clock.now())  # the clock alone, no new activity
    assert httpx.post(f"{base}/oauth/v1/token", data=form).status_code == 404
    answer = httpx.post(f"{base}/oauth/2026-03/token", data=form)
    assert answer.status_code == 200 and answer.json()["expires_in"] == 1800
