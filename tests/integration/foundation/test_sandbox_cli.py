"""The sandbox from the command line: deterministic worlds, serve + write-config + check, admin stats and faults."""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests import forkcli

LEADSYNC = [sys.executable, "-m", "leadsync"]


def run(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    return forkcli.run([*LEADSYNC, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)


def clean_env(tmp_path: Path) -> dict[str, str]:
    """Nothing set but the basics: the written config must work on its own."""
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path), "PYTHONPATH": os.getcwd()}


def free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def test_the_same_seed_and_now_give_identical_world_files_which_load_back_through_world(tmp_path):
    for name in ("a.jsonl", "b.jsonl"):
        result = run(
            "sandbox", "world", "--contacts", "5000", "--seed", "7", "--now", "2026-11-01T00:00:00Z",
            "--out", name, cwd=tmp_path,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
    a, b = (tmp_path / "a.jsonl").read_bytes(), (tmp_path / "b.jsonl").read_bytes()
    assert hashlib.sha256(a).hexdigest() == hashlib.sha256(b).hexdigest()
    assert a.count(b'"kind":"person"') == 5000

    from leadsync.sandbox.world import World

    world = World.read(tmp_path / "a.jsonl")
    assert len(world.persons) == 5000
    assert world.now == datetime(2026, 11, 1, tzinfo=UTC)  # the file records its now
    assert world.dumps() == a  # loads back to the very same world


def test_a_world_runs_up_to_now_so_a_first_run_scores_fresh_activity(tmp_path):
    """Without --now a world ends at the current time (not a fixed date a month or more ago)."""
    from leadsync.sandbox.world import World

    started = datetime.now(UTC)
    result = run("sandbox", "world", "--contacts", "300", "--seed", "2", "--out", "w.jsonl", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    world = World.read(tmp_path / "w.jsonl")
    assert started - timedelta(seconds=2) <= world.now <= datetime.now(UTC)
    last = max(e.at for person in world.persons for e in world.events_of(person.id))
    assert timedelta(0) <= world.now - last <= timedelta(days=3), (world.now, last)


def test_serve_loads_a_world_file_through_world(tmp_path):
    assert (
        run(
            "sandbox", "world", "--contacts", "50", "--seed", "3", "--out", "w.jsonl", cwd=tmp_path
        ).returncode
        == 0
    )
    from leadsync.sandbox.world import World

    person = World.read(tmp_path / "w.jsonl").persons[0]
    with serving(tmp_path, "--world", "w.jsonl") as ports:
        found = httpx.get(f"http://127.0.0.1:{ports['hubspot']}/_sandbox/persons/{person.email}")
    assert found.status_code == 200, found.text
    assert found.json()["email"] == person.email


@contextmanager
def serving(cwd: Path, *args: str) -> Iterator[dict[str, int]]:
    """`leadsync sandbox serve ... --write-config sb.toml` in its own process, until the block ends."""
    hub, chimp, ac = free_ports(3)
    process = subprocess.Popen(
        [
            *LEADSYNC,
            "sandbox",
            "serve",
            *args,
            "--write-config",
            "sb.toml",
            "--hubspot-port",
            str(hub),
            "--mailchimp-port",
            str(chimp),
            "--activecampaign-port",
            str(ac),
        ],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env(cwd),
    )
    deadline = time.monotonic() + 120
    while not (cwd / "sb.toml").exists():
        if process.poll() is not None:
            raise AssertionError(f"sandbox serve exited: {process.stderr.read()}")
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError("sandbox serve did not write its config in time")
        time.sleep(0.1)
    try:
        yield {"hubspot": hub, "mailchimp": chimp, "activecampaign": ac}
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture
def served(tmp_path):
    with serving(tmp_path, "--contacts", "2000", "--seed", "1") as ports:
        yield tmp_path, ports


def test_serve_writes_a_config_that_check_passes_with_nothing_else_set(served):
    cwd, _ = served
    result = run("--config", "sb.toml", "check", "--json", cwd=cwd, env=clean_env(cwd))
    assert result.returncode == 0, result.stdout + result.stderr
    assert '"ok": true' in result.stdout


def test_stats_count_requests_connections_and_429s_and_a_fault_takes_effect_on_the_next_request(served):
    _, ports = served
    base = f"http://127.0.0.1:{ports['activecampaign']}"
    token = next(
        line.split('"')[1]
        for line in (served[0] / "sb.toml").read_text().splitlines()
        if line.startswith("api_token")
    )
    httpx.post(f"{base}/_sandbox/stats/reset")
    with httpx.Client(base_url=base, headers={"Api-Token": token}) as client:
        statuses = [client.get("/api/3/users/me").status_code for _ in range(12)]  # 5/s: some get 429
        httpx.post(f"{base}/_sandbox/faults", json={"queue": [{"kind": "server_error", "status": 503}]})
        time.sleep(1.1)
        assert client.get("/api/3/users/me").status_code == 503
        assert client.get("/api/3/users/me").status_code == 200
    with httpx.Client(base_url=base, headers={"Api-Token": token}) as second:
        second.get("/api/3/users/me")
    stats = httpx.get(f"{base}/_sandbox/stats").json()
    assert stats["requests"] == 15
    assert stats["connections_opened"] == 2
    assert stats["answered_429"] == statuses.count(429) >= 1
    assert stats["rate_limited"] == statuses.count(429)
    assert stats["faults_injected"] == {"server_error": 1}
