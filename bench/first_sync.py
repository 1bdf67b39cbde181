"""The first sync of one sandbox account into a fresh PostgreSQL database, run as a user runs it
(``leadsync sync`` in its own process), repeated: exit code, wall time, and the deadlock retries the
run records counted (issue 20, point 5: 0 deadlocks and exit 0 in 3 runs of 5,000 and of 20,000
contacts).

    python -m bench.first_sync --server postgresql://postgres@127.0.0.1:5432/postgres \\
        --contacts 5000 20000 --runs 3

Prints one JSON line per run, as it ends. The sandbox runs in this process without rate limits (the pulls of the
three sources then overlap as much as they can, which is what made the writers collide).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, select
from sqlalchemy.engine import make_url

SEED = 11
DEFAULT_SERVER = os.environ.get("LEADSYNC_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def _admin(server: str, sql: str) -> None:
    import psycopg

    libpq = make_url(server).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(libpq, autocommit=True) as connection:
        connection.execute(sql)


def first_sync(server: str, contacts: int, *, seed: int = SEED, timeout: float = 1800) -> dict[str, Any]:
    """One first sync of a ``contacts`` world into a new database on ``server``, then drop it."""
    from leadsync.sandbox.configfile import write_sandbox_config
    from leadsync.sandbox.server import SandboxServer
    from leadsync.sandbox.world import generate_world
    from leadsync.sync.store.db import store_url
    from leadsync.sync.store.models import SyncRun

    name = f"leadsync_first_sync_{secrets.token_hex(4)}"
    _admin(server, f'CREATE DATABASE "{name}"')
    url = make_url(server).set(database=name).render_as_string(hide_password=False)
    world = generate_world(contacts, seed)
    try:
        with (
            SandboxServer.for_world(
                world, ports={"hubspot": 0, "mailchimp": 0, "activecampaign": 0}, rate_limits=False
            ) as sandbox,
            tempfile.TemporaryDirectory(prefix="leadsync-first-sync-") as folder,
        ):
            config = Path(folder) / "leadsync.toml"
            write_sandbox_config(sandbox, config, store_url=url)
            env = {k: v for k, v in os.environ.items() if k not in ("LEADSYNC_CONFIG", "LEADSYNC_STORE_URL")}
            started = time.perf_counter()
            done = subprocess.run(
                [sys.executable, "-m", "leadsync.sync.cli", "--config", str(config), "sync"],
                capture_output=True,
                text=True,
                timeout=timeout,
                env=env,
                check=False,
            )
            seconds = time.perf_counter() - started
        engine = create_engine(store_url(url))
        with engine.connect() as connection:
            runs = connection.execute(
                select(SyncRun.step, SyncRun.status, SyncRun.counts, SyncRun.error)
            ).all()
        engine.dispose()
    finally:
        _admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    output = done.stdout + done.stderr
    return {
        "contacts": contacts,
        "exit": done.returncode,
        "seconds": round(seconds, 1),
        "deadlock_retries": sum(int((run.counts or {}).get("deadlock_retries", 0)) for run in runs),
        "deadlock_in_output": output.count("40P01") + output.lower().count("deadlock detected"),
        "failed_runs": [f"{run.step}: {run.error}" for run in runs if run.status != "ok"],
        "stderr_tail": done.stderr[-600:] if done.returncode else "",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", default=DEFAULT_SERVER)
    parser.add_argument("--contacts", type=int, nargs="+", default=[5000, 20000])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=1800, help="seconds a run may take (default 1800)")
    args = parser.parse_args()
    for contacts in args.contacts:
        for run in range(args.runs):
            # one line per run as it ends: a long series interrupted still says what it measured
            print(
                json.dumps(first_sync(args.server, contacts, seed=SEED + run, timeout=args.timeout)),
                flush=True,
            )


if __name__ == "__main__":
    main()
