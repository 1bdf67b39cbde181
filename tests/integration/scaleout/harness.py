"""Plumbing of the scale-out tests: a sandbox of many accounts, a config on a PostgreSQL store,
leadsync processes (workers, daemons) and what the run records say about them."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import tomllib
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import tomli_w
from sqlalchemy import Engine, select

from leadsync.sandbox.configfile import write_sandbox_config
from leadsync.sandbox.server import SandboxServer
from leadsync.sandbox.world import generate_world
from leadsync.sync.store.models import SyncRun
from tests import forkcli

ROOT = Path(__file__).resolve().parents[3]
PLATFORMS = ("hubspot", "mailchimp", "activecampaign")
NOW = datetime(2026, 11, 1, tzinfo=UTC)


def serve_accounts(count: int, contacts: int, *, seed: int = 11, **kwargs: Any) -> SandboxServer:
    kwargs.setdefault("rate_limits", False)
    worlds = [generate_world(contacts, seed + index, now=NOW) for index in range(count)]
    return SandboxServer.for_accounts(worlds, ports={name: 0 for name in PLATFORMS}, **kwargs)


def write_config(
    server: SandboxServer,
    path: Path,
    *,
    store_url: str,
    engine: str,
    interval: str | None = None,
    only: Callable[[dict[str, Any]], bool] | None = None,
) -> Path:
    write_sandbox_config(server, path, store_url=store_url, engine=engine)
    document = tomllib.loads(path.read_text())
    if interval is not None:
        document["schedule"] = {"interval": interval}
    if only is not None:
        document["sources"] = [source for source in document["sources"] if only(source)]
    path.write_text(tomli_w.dumps(document))
    return path


def start(config: Path, *args: str, log: Path, score_now: str | None = None) -> Any:
    """A leadsync process (the real CLI; ``score_now`` pins the score time, see pipeline/fastcli.py)."""
    env = {**os.environ, "COLUMNS": "200"}
    env.pop("LEADSYNC_CONFIG", None)
    env.pop("LEADSYNC_TEST_SCORE_NOW", None)
    if score_now:
        env["LEADSYNC_TEST_SCORE_NOW"] = score_now
    command = [
        sys.executable,
        "-m",
        "tests.integration.pipeline.fastcli",
        "--config",
        str(config),
        "--log-json",
        "--log-level",
        "INFO",
        *args,
    ]
    handle = log.open("wb")
    return forkcli.popen(command, cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT)


def stop_all(processes: list[subprocess.Popen[bytes]], *, timeout: float = 60) -> None:
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def runs(engine: Engine) -> list[Any]:
    with engine.connect() as connection:
        return list(
            connection.execute(
                select(
                    SyncRun.id,
                    SyncRun.source,
                    SyncRun.command,
                    SyncRun.step,
                    SyncRun.started_at,
                    SyncRun.finished_at,
                    SyncRun.status,
                    SyncRun.error,
                )
            )
        )


def refused(row: Any) -> bool:
    """A run record of an attempt the source's lease refused (another process was syncing it): it
    read and wrote nothing (``sync.lease.LeaseHeld``)."""
    return row.status == "failed" and "is being synced by" in (row.error or "")


def overlapping_runs(rows: list[Any]) -> list[tuple[Any, Any]]:
    """Pairs of runs of one source whose times overlap (a run not finished lasts for ever);
    attempts refused by the lease did no work and are left out."""
    by_source: dict[str, list[Any]] = defaultdict(list)
    for row in rows:
        # a score run (source "*") covers every source's changed persons and holds no source's
        # lease: two processes may score at once (each claims its own change marks)
        if not refused(row) and row.source != "*":
            by_source[row.source].append(row)
    found = []
    for source_runs in by_source.values():
        source_runs.sort(key=lambda row: row.started_at)
        for earlier, later in zip(source_runs, source_runs[1:], strict=False):
            if earlier.finished_at is None or later.started_at < earlier.finished_at:
                found.append((earlier, later))
    return found


def wait_for(condition: Callable[[], bool], *, timeout: float, what: str, every: float = 0.5) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


HELD = re.compile(r"lease source:(\S+) held by (\S+) from ([\d.]+) to ([\d.]+)")


def lease_windows(logs: list[str]) -> list[tuple[str, str, float, float]]:
    """(source, holder, from, to) of every lease held, from the processes' JSON log lines."""
    found = []
    for text in logs:
        for line in text.splitlines():
            if not line.startswith("{"):
                continue
            try:
                message = json.loads(line).get("message", "")
            except ValueError:
                continue
            match = HELD.search(message)
            if match:
                found.append((match[1], match[2], float(match[3]), float(match[4])))
    return found


def overlapping_windows(windows: list[tuple[str, str, float, float]]) -> list[tuple[Any, Any]]:
    by_source: dict[str, list[tuple[str, str, float, float]]] = defaultdict(list)
    for window in windows:
        by_source[window[0]].append(window)
    found = []
    for held in by_source.values():
        held.sort(key=lambda window: window[2])
        found += [(a, b) for a, b in zip(held, held[1:], strict=False) if b[2] < a[3]]
    return found


def describe(pairs: list[tuple[Any, Any]]) -> str:
    def one(row: Any) -> str:
        end = "-" if row.finished_at is None else f"{row.finished_at:%H:%M:%S.%f}"
        return f"#{row.id} {row.command} {row.started_at:%H:%M:%S.%f}..{end} {row.status} {row.error or ''}"[
            :200
        ]

    return f"{len(pairs)} overlaps: " + "; ".join(f"{a.source}: {one(a)} / {one(b)}" for a, b in pairs[:4])


def log_messages(log: Path) -> list[str]:
    """The ``message`` of each JSON line a worker logged (``--log-json``); other lines are skipped."""
    found = []
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            try:
                found.append(json.loads(line).get("message", ""))
            except ValueError:
                continue
    return found


class StoreAt:
    """What ``tests.integration.pipeline.harness.store_state`` needs: an engine on the store at ``url``."""

    def __init__(self, url: str) -> None:
        self.url = url

    def engine(self) -> Engine:
        from sqlalchemy import create_engine

        return create_engine(self.url)
