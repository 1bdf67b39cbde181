"""The dry run's cost (issue 19): ``sync --dry-run`` for 2,000 persons on the three platforms, timed
beside the pull it follows.

``sync --dry-run`` is a pull, a score and a push that plans from the store and prints the plan. The
pull's time is the platforms' (their limits and latency); what the dry run adds is the score, the
plan and the rendering, which make no request. The sandbox runs without rate limits here, so the
pull is as short as the emulators allow and the dry run's share is not hidden behind it.
"""

from __future__ import annotations

import io
import time
from pathlib import Path
from typing import Any

import tomli_w
from rich.console import Console

from bench.serve import RemoteSandbox
from leadsync.config.scoring_model import load_model
from leadsync.config.settings import load_config
from leadsync.sandbox.configfile import UNTHROTTLED
from leadsync.sync.cli.pipeline import _results_json, dry_run_table
from leadsync.sync.logsetup import register_secrets
from leadsync.sync.pipeline import pull_sources, push_sources, score
from leadsync.sync.store import make_engine

__all__ = ["run_dry_run"]


def run_dry_run(workdir: Path, *, persons: int, seed: int, latency_ms: float) -> dict[str, Any]:
    model = load_model("default")
    with RemoteSandbox("all", persons=persons, seed=seed, latency_ms=latency_ms, rate_limits=False) as server:
        store = workdir / "dryrun.db"
        for leftover in workdir.glob("dryrun.db*"):
            leftover.unlink()
        config_file = workdir / "dryrun.toml"
        sources = [
            {**source, "options": {**source.get("options", {}), **UNTHROTTLED.get(source["platform"], {})}}
            for source in server.sources
        ]
        document = {"store": {"url": f"sqlite:///{store}"}, "sources": sources}
        config_file.write_bytes(tomli_w.dumps(document).encode())
        config = load_config(config_file)
        register_secrets(config)
        engine = make_engine(config.store.url)
        started = time.perf_counter()
        pulls = pull_sources(engine, config)
        pull_s = time.perf_counter() - started
        started = time.perf_counter()
        scored = score(engine, model)
        score_s = time.perf_counter() - started
        started = time.perf_counter()
        pushes = push_sources(engine, config, dry_run=True)
        plan_s = time.perf_counter() - started
        started = time.perf_counter()
        table, note = dry_run_table(pushes)  # what the CLI prints, into a buffer
        console = Console(file=io.StringIO(), width=160)
        console.print(table)
        if note:
            console.print(note)
        text = _results_json(pulls, scored, pushes)  # and what --json builds
        render_s = time.perf_counter() - started
        engine.dispose()
    return {
        "persons_in_world": persons,
        "contacts": sum(r.contacts for r in pulls),
        "contacts_planned": sum(r.planned for r in pushes),
        "values_planned": len(text["diff"]),
        "latency_ms": latency_ms,
        "rate_limits": False,
        "pull_seconds": round(pull_s, 2),
        "score_seconds": round(score_s, 2),
        "plan_seconds": round(plan_s, 2),
        "render_seconds": round(render_s, 2),
        "dry_run_seconds": round(score_s + plan_s + render_s, 2),
    }
