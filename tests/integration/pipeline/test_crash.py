"""Acceptance 4: ``leadsync sync`` killed with SIGKILL at 10+ random moments, then rerun once, ends
with the same store and the same platform state as one uninterrupted run of the same world.

What must be equal: persons, identities (and the person each belongs to), events (count and the set
of (source, source id): nothing lost, nothing counted twice), current scores, the write-back state,
and what each platform holds in leadsync's fields, its lifecycle stage and tags. Scored-at times
and run timestamps legitimately differ and are left out; both stores score at the same pinned time.
"""

from __future__ import annotations

import random
import signal
import time
from pathlib import Path
from typing import Any

from sqlalchemy import text

from tests.integration.pipeline.harness import Leadsync, platform_view, serve, store_state
from tests.worlds import private_copy

KILLS = 12
RNG_SEED = 20261123


def test_sigkill_at_random_moments_converges(world: Any, pipeline_world: Any, tmp_path: Path) -> None:
    emails = sorted({p.email.strip().lower() for p in world.persons})
    with serve(private_copy(pipeline_world)) as clean_server:
        clean = Leadsync.create(clean_server, tmp_path / "clean")
        started = time.monotonic()
        clean.run("sync", "--json")
        uninterrupted_s = time.monotonic() - started
        expected_store = store_state(clean)
        expected_platform = platform_view(clean_server, emails)

    rng = random.Random(RNG_SEED)
    moments: list[float] = []
    with serve(world) as server:
        lead = Leadsync.create(server, tmp_path / "killed")
        attempts = 0
        upper = uninterrupted_s  # later runs have less left to do: shrink the window when one finishes first
        while len(moments) < KILLS:
            attempts += 1
            assert attempts < KILLS * 6, f"only {len(moments)} runs were still running when killed"
            delay = rng.uniform(0.05, upper)
            process = lead.start("sync", "--json")
            time.sleep(delay)
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
                moments.append(round(delay, 2))
            else:
                upper = max(0.3, upper * 0.7)
            process.communicate(timeout=60)  # reap it: a zombie still looks alive to the lease check
        rerun = lead.run("sync", "--json")
        assert '"ok": true' in rerun.stdout, rerun.stdout + rerun.stderr
        got_store = store_state(lead)
        got_platform = platform_view(server, emails)
        engine = lead.engine()
        with engine.connect() as connection:
            outcomes = [row[0] for row in connection.execute(text("SELECT status FROM syncrun"))]
        engine.dispose()
        # every killed run's record was closed by a later run: none is left "running"
        assert "running" not in outcomes and outcomes.count("interrupted") >= 1, outcomes

    print(f"uninterrupted run {uninterrupted_s:.1f}s; killed at {moments} s after start")
    for key in ("persons", "identities", "event_count", "events", "scores", "writeback_state"):
        assert got_store[key] == expected_store[key], _difference(key, got_store[key], expected_store[key])
    assert got_platform == expected_platform, _difference("platform", got_platform, expected_platform)


def _difference(what: str, got: Any, want: Any) -> str:
    if isinstance(got, dict) and isinstance(want, dict):
        keys = sorted(k for k in set(got) | set(want) if got.get(k) != want.get(k))
        sample = {str(k): (got.get(k), want.get(k)) for k in keys[:5]}
        return f"{what}: {len(keys)} differ (killed+rerun, uninterrupted): {sample}"
    if isinstance(got, set):
        return (
            f"{what}: only after kills {sorted(got - want)[:5]}, only uninterrupted {sorted(want - got)[:5]}"
        )
    return f"{what}: {got!r} != {want!r}"
