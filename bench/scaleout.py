"""Scale-out: many sandbox accounts synced by 1, 2 and 4 ``leadsync worker`` processes.

Each worker count gets the same thing, side by side in one bench run: a fresh PostgreSQL database,
a fresh sandbox (``leadsync sandbox serve --accounts N``, in its own process, the same seed and
``--now``, so the same worlds) with injected latency, one ``sync_source`` job per source queued
(``leadsync enqueue``), then N workers (``--concurrency 1``: one job at a time each) started at once.

Wall time: from the first run record's start to the last one's end, read from the store's run
history, so the workers' start-up is not counted. Speed-up: wall time with one worker over wall
time with N. The goal is at least 0.8 x N up to the machine's core count; past it the workers share
cores with each other, with PostgreSQL and with the sandbox, so the figure is reported, not judged.

    .venv/bin/python -m bench.scaleout [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SERVER = os.environ.get(
    "LEADSYNC_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
NOW = "2026-11-01T00:00:00+00:00"

FULL = {"accounts": 100, "contacts": 500, "days": 30, "workers": (1, 2, 4)}
QUICK = {"accounts": 4, "contacts": 40, "days": 30, "workers": (1, 2, 4)}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _leadsync(*args: str) -> list[str]:
    return [sys.executable, "-m", "leadsync.sync.cli", *args]


def _admin(server: str) -> Any:
    import psycopg
    from sqlalchemy.engine import make_url

    conninfo = make_url(server).set(drivername="postgresql").render_as_string(hide_password=False)
    return psycopg.connect(conninfo, autocommit=True)


def server_answers(server: str) -> str | None:
    """None when the PostgreSQL server answers, else why not."""
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed (pip install 'leadsync[postgres]')"
    try:
        _admin(server).close()
    except psycopg.OperationalError as exc:
        return f"no PostgreSQL server answers: {' '.join(str(exc).split())}"
    return None


def _database(server: str) -> tuple[str, str]:
    from sqlalchemy.engine import make_url

    name = f"leadsync_bench_{uuid.uuid4().hex[:10]}"
    with _admin(server) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = make_url(server).set(drivername="postgresql+psycopg", database=name)
    return name, url.render_as_string(hide_password=False)


def _pending(engine: Any) -> tuple[int, int]:
    """(jobs still to run or running, jobs failed for good) of ``sync_source``."""
    from sqlalchemy import text

    with engine.connect() as connection:
        rows = dict(
            connection.execute(
                text(
                    "SELECT status::text, count(*) FROM procrastinate_jobs "
                    "WHERE task_name = 'leadsync.sync_source' GROUP BY status"
                )
            ).all()
        )
    return rows.get("todo", 0) + rows.get("doing", 0), rows.get("failed", 0)


def _sandbox(
    plan: dict[str, Any], latency_ms: float, config: Path, store_url: str, log: Path
) -> subprocess.Popen[bytes]:
    ports = [str(_free_port()) for _ in range(3)]
    process = subprocess.Popen(
        _leadsync(
            "sandbox",
            "serve",
            "--accounts",
            str(plan["accounts"]),
            "--contacts",
            str(plan["contacts"]),
            "--days",
            str(plan["days"]),
            "--now",
            NOW,
            "--seed",
            "7",
            "--latency-ms",
            str(latency_ms),
            "--rate-limits",
            "off",
            "--hubspot-port",
            ports[0],
            "--mailchimp-port",
            ports[1],
            "--activecampaign-port",
            ports[2],
            "--write-config",
            str(config),
            "--store-url",
            store_url,
            "--engine",
            "procrastinate",
        ),
        cwd=ROOT,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 1800
    while b"Ctrl-C to stop" not in log.read_bytes():
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the sandbox did not start: {log.read_text(errors='replace')[-2000:]}")
        time.sleep(0.5)
    # each source is synced once: the workers' periodic task queues a source again once its interval
    # (15 minutes by default) has passed since its last run, and one worker takes longer than that
    # over 300 sources, so it would never see an empty queue
    with config.open("a", encoding="utf-8") as handle:
        handle.write('\n[schedule]\ninterval = "24h"\n')
    return process


def _stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def run_one(
    workers: int, plan: dict[str, Any], *, latency_ms: float, workdir: Path, server: str
) -> dict[str, Any]:
    from sqlalchemy import func, select

    from leadsync.sync.store import make_engine
    from leadsync.sync.store.models import Event, Identity, SyncRun

    name, url = _database(server)
    folder = workdir / f"workers-{workers}"
    folder.mkdir(parents=True, exist_ok=True)
    engine = make_engine(url)  # the schema before anyone starts
    started_setup = time.perf_counter()
    sandbox = _sandbox(plan, latency_ms, folder / "leadsync.toml", url, folder / "sandbox.log")
    processes: list[subprocess.Popen[bytes]] = [sandbox]
    try:
        setup_s = time.perf_counter() - started_setup
        config = str(folder / "leadsync.toml")
        subprocess.run(
            _leadsync("--config", config, "enqueue", "--json"), cwd=ROOT, check=True, capture_output=True
        )
        launched = time.perf_counter()
        processes += [
            subprocess.Popen(
                _leadsync("--config", config, "--log-level", "WARNING", "worker", "--concurrency", "1"),
                cwd=ROOT,
                stdout=(folder / f"worker-{n}.log").open("wb"),
                stderr=subprocess.STDOUT,
            )
            for n in range(workers)
        ]
        while True:
            pending, failed = _pending(engine)
            if pending == 0:
                break
            if time.perf_counter() - launched > 3600:
                raise RuntimeError(f"{workers} workers: {pending} jobs still pending after an hour")
            time.sleep(1.0)
        launched_s = time.perf_counter() - launched
    finally:
        _stop(processes[1:])
        _stop(processes[:1])
    with engine.connect() as connection:
        first, last = connection.execute(
            select(func.min(SyncRun.started_at), func.max(SyncRun.finished_at))
        ).one()
        events = connection.execute(select(func.count()).select_from(Event)).scalar_one()
        contacts = connection.execute(select(func.count()).select_from(Identity)).scalar_one()
        failed_runs = connection.execute(
            select(func.count()).select_from(SyncRun).where(SyncRun.status == "failed")
        ).scalar_one()
        pulls = connection.execute(
            select(func.count(), func.count(SyncRun.source.distinct())).where(SyncRun.step == "pull")
        ).one()
    engine.dispose()
    with _admin(server) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    wall = (last - first).total_seconds()
    if pulls[0] != pulls[1]:
        raise RuntimeError(f"{workers} workers: {pulls[0]} pulls of {pulls[1]} sources: a source ran twice")
    return {
        "workers": workers,
        "wall_seconds": round(wall, 2),
        "seconds_from_launch": round(launched_s, 2),
        "sandbox_start_seconds": round(setup_s, 1),
        "sources": plan["accounts"] * 3,
        "contacts": contacts,
        "events": events,
        "records_per_second": round((contacts + events) / wall) if wall else None,
        "failed_jobs": failed,
        "failed_runs": failed_runs,
    }


def run_scaleout(
    *,
    quick: bool,
    latency_ms: float,
    workdir: Path,
    server: str = SERVER,
    progress: Path | None = None,
    sizes: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """``progress``: a JSON Lines file that gets each worker count's figures as soon as they are in;
    ``sizes``: ``accounts``, ``contacts``, ``days`` or ``workers`` instead of the plan's."""
    started = time.perf_counter()
    plan = {**(QUICK if quick else FULL), **(sizes or {})}
    runs = []
    for n in plan["workers"]:
        runs.append(run_one(n, plan, latency_ms=latency_ms, workdir=workdir, server=server))
        print(f"scale-out: {n} worker(s): {runs[-1]['wall_seconds']} s", file=sys.stderr, flush=True)
        if progress is not None:
            with progress.open("a") as handle:
                handle.write(json.dumps(runs[-1], default=str) + "\n")
    base = runs[0]["wall_seconds"]
    cores = os.cpu_count() or 1
    for run in runs:
        run["speedup"] = round(base / run["wall_seconds"], 2) if run["wall_seconds"] else None
        run["goal"] = round(0.8 * run["workers"], 2) if run["workers"] <= cores else None
        run["holds"] = None if run["goal"] is None else (run["speedup"] or 0) >= run["goal"]
    return {
        "accounts": plan["accounts"],
        "contacts_per_account": plan["contacts"],
        "days_of_history": plan["days"],
        "latency_ms": latency_ms,
        "concurrency_per_worker": 1,
        "cores": cores,
        "load_average_1m": round(os.getloadavg()[0], 2),
        "seconds": round(time.perf_counter() - started, 1),
        "runs": runs,
    }


def markdown(figures: dict[str, Any]) -> str:
    lines = [
        f"Scale-out: {figures['accounts']} sandbox accounts x 3 platforms ({figures['accounts'] * 3} sources), "
        f"{figures['contacts_per_account']} persons and {figures['days_of_history']} days of activity each, "
        f"{figures['latency_ms']:.0f} ms latency; PostgreSQL store; workers at concurrency "
        f"{figures['concurrency_per_worker']}; {figures['cores']} cores, load {figures['load_average_1m']}.",
        "",
        "| workers | wall time | speed-up | goal | records/s | failed jobs |",
        "| ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for run in figures["runs"]:
        goal = "n/a (past the cores)" if run["goal"] is None else f">= {run['goal']:.1f}x"
        mark = "" if run["holds"] is None else (" (holds)" if run["holds"] else " (misses)")
        lines.append(
            f"| {run['workers']} | {run['wall_seconds']:.1f} s | {run['speedup']:.2f}x{mark} | {goal} | "
            f"{run['records_per_second']:,} | {run['failed_jobs']} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few small accounts: a smoke run")
    parser.add_argument(
        "--out", type=Path, default=Path("bench/results"), help="folder for scaleout.json / .md"
    )
    parser.add_argument("--accounts", type=int, help="accounts per platform (default 100, --quick 4)")
    parser.add_argument("--contacts", type=int, help="persons per account (default 500, --quick 40)")
    parser.add_argument("--workers", type=int, nargs="+", help="worker counts to compare (default 1 2 4)")
    args = parser.parse_args()
    import tempfile

    # SIGTERM (a timeout, Ctrl-C from a wrapper) unwinds: the sandbox and workers started are stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    sizes: dict[str, Any] = {}
    if args.accounts:
        sizes["accounts"] = args.accounts
    if args.contacts:
        sizes["contacts"] = args.contacts
    if args.workers:
        sizes["workers"] = tuple(args.workers)

    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="leadsync-scaleout-") as tmp:
        figures = run_scaleout(
            quick=args.quick,
            latency_ms=50.0,
            workdir=Path(tmp),
            progress=args.out / "scaleout-progress.jsonl",
            sizes=sizes,
        )
    (args.out / "scaleout.json").write_text(json.dumps(figures, indent=2, default=str) + "\n")
    table = markdown(figures)
    (args.out / "scaleout.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
