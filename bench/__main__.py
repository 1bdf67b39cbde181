"""``make bench``: pull, push and re-sync each platform against the sandbox at its default limits
with injected latency, the straightforward SDK loops in the same run, and local ingest and
re-scoring; writes ``bench.json`` and ``bench.md`` to ``--out`` and prints the table.

    .venv/bin/python -m bench [--quick] [--out bench/results]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.dryrun import run_dry_run
from bench.local import run_local
from bench.naive import run_naive
from bench.platforms import PLATFORMS, run_platform
from bench.report import markdown
from bench.webhooks import markdown as webhooks_markdown
from bench.webhooks import run_webhooks

LATENCY_MS = 50.0
SEED = 7

# persons in each platform's world (a person is on one to three platforms), chosen so that the full
# bench fits in 10 minutes: ActiveCampaign pulls tracking logs one contact at a time at 5 requests/s.
FULL = {
    "persons": {"hubspot": 4000, "mailchimp": 4000, "activecampaign": 1000},
    "naive": {"pages": 5, "updates": 50},
    "local": {"persons": 100_000, "events": 2_000_000},
    "dry_run": {"persons": 2000},
    "raw_sample_s": 10.0,
    "rate_limits": True,
    "latency_ms": LATENCY_MS,
    "webhooks": {"persons": 300, "actions": 200, "flood": 10_000},
}
QUICK = {
    "persons": {"hubspot": 300, "mailchimp": 300, "activecampaign": 25},
    "naive": {"pages": 1, "updates": 10},
    "local": {"persons": 2_000, "events": 30_000},
    "dry_run": {"persons": 300},
    "raw_sample_s": 2.0,
    # the platforms served without their limits (leadsync and the raw client still pace themselves),
    # so no step waits for a rate window to empty: a smoke run of the path, not a measurement
    "rate_limits": False,
    # a tenth of the latency: most of a quick run was spent waiting on it (56 s against 19 s of CPU)
    "latency_ms": LATENCY_MS / 10,
    # no rate limits: the quick run is a smoke test of the path, not a measurement
    "webhooks": {"persons": 40, "actions": 6, "flood": 300, "flood_seconds": 2.0, "rate_limits": False},
}


def _machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        memory_kb = next(
            int(line.split()[1])
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        )
    except (OSError, StopIteration, ValueError):
        memory_kb = 0
    return {
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "memory_gb": round(memory_kb / 2**20, 1),
        "python": platform.python_version(),
        "system": platform.platform(),
        "load_before": round(os.getloadavg()[0], 2),
    }


def run(
    *,
    quick: bool,
    platforms: tuple[str, ...] = PLATFORMS,
    local: bool = True,
    dry_run: bool = True,
    scaleout: bool = True,
    postgres: str | None = None,
    webhooks: bool = True,
) -> dict[str, Any]:
    plan = QUICK if quick else FULL
    started = time.perf_counter()
    figures: dict[str, Any] = {
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": quick,
        "latency_ms": plan["latency_ms"],
        "machine": _machine(),
        "platforms": {},
    }
    with tempfile.TemporaryDirectory(prefix="leadsync-bench-") as tmp:
        workdir = Path(tmp)
        for name in platforms:
            figures["platforms"][name] = run_platform(
                name,
                persons=plan["persons"][name],
                seed=SEED,
                latency_ms=plan["latency_ms"],
                workdir=workdir,
                after=lambda live: run_naive(live, **plan["naive"]),
                raw_sample_s=plan["raw_sample_s"],
                rate_limits=plan["rate_limits"],
            )
            figures["platforms"][name]["load_average_1m"] = round(os.getloadavg()[0], 2)
        if dry_run:
            figures["dry_run"] = run_dry_run(
                workdir, **plan["dry_run"], seed=SEED, latency_ms=plan["latency_ms"]
            )
        if local:
            figures["local"] = run_local(workdir, **plan["local"], seed=SEED, postgres=postgres)
        figures["machine"]["load_after"] = round(os.getloadavg()[0], 2)
        if webhooks:
            figures["webhooks"] = run_webhooks(
                workdir, **plan["webhooks"], seed=SEED, latency_ms=plan["latency_ms"]
            )
        # every part but the scale-out, which reports its own time (until 2026-12-06 this left
        # out the webhook runs too, about five minutes of a full run)
        figures["seconds"] = round(time.perf_counter() - started, 1)
        if scaleout:
            figures["scaleout"] = _scaleout(quick, workdir, plan["latency_ms"])
    return figures


def _scaleout(quick: bool, workdir: Path, latency_ms: float) -> dict[str, Any] | None:
    """Workers on PostgreSQL (``bench.scaleout``); left out, and said so, without a server."""
    from bench.scaleout import SERVER, run_scaleout, server_answers

    reason = server_answers(SERVER)
    if reason is not None:
        print(f"scale-out left out: {reason}")
        return None
    return run_scaleout(quick=quick, latency_ms=latency_ms, workdir=workdir / "scaleout")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small worlds: a smoke run in under a minute")
    parser.add_argument(
        "--out", type=Path, default=Path("bench/results"), help="folder for bench.json and bench.md"
    )
    parser.add_argument(
        "--platform", action="append", choices=PLATFORMS, help="only this platform (repeatable)"
    )
    parser.add_argument("--no-local", action="store_true", help="skip the local (no network) measurements")
    parser.add_argument("--no-scaleout", action="store_true", help="skip the workers on PostgreSQL (1, 2, 4)")
    parser.add_argument(
        "--postgres",
        default=os.environ.get("LEADSYNC_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
        help="PostgreSQL server for the local ingest and re-score beside SQLite's ('' to skip)",
    )
    parser.add_argument("--no-dry-run", action="store_true", help="skip the dry-run timing (2,000 persons)")
    parser.add_argument("--no-webhooks", action="store_true", help="skip the webhook latency and flood runs")
    parser.add_argument(
        "--dry-run-only",
        action="store_true",
        help="only the dry-run timing (no platform runs, nothing local)",
    )
    args = parser.parse_args()
    # SIGTERM unwinds, so that the scale-out's sandbox and workers are stopped with the bench.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    figures = run(
        quick=args.quick,
        platforms=() if args.dry_run_only else tuple(args.platform or PLATFORMS),
        local=not (args.no_local or args.dry_run_only),
        dry_run=not args.no_dry_run,
        scaleout=not (args.no_scaleout or args.dry_run_only),
        postgres=args.postgres or None,
        webhooks=not (args.no_webhooks or args.dry_run_only),
    )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench.json").write_text(json.dumps(figures, indent=2) + "\n")
    table = markdown(figures)
    if "webhooks" in figures:
        table += "\n" + webhooks_markdown(figures["webhooks"])
    (args.out / "bench.md").write_text(table)
    print(table)
    print(f"Wrote {args.out / 'bench.json'} and {args.out / 'bench.md'}.")


if __name__ == "__main__":
    main()
