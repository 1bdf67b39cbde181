"""The real ``leadsync`` CLI with one test-only adjustment, run as ``python -m`` by the pipeline tests.

``LEADSYNC_TEST_SCORE_NOW`` (ISO time) pins the time the score step scores at, so two runs minutes
apart score the same data to the same values (engagement decays with real time).

Everything else (config, store, pipeline, leases, connectors, HTTP) is the code users run. The
connectors' client-side throttles are lifted by the config itself: ``write_sandbox_config`` writes
``rate_limit = false`` / ``requests_per_second = 0`` for a sandbox running without limits.
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import Any


def _pin_score_time(moment: datetime) -> None:
    import leadsync.sync.pipeline as pipeline

    original = pipeline.score

    def score(engine: Any, model: Any, *, now: datetime | None = None, **kwargs: Any) -> Any:
        return original(engine, model, now=now or moment, **kwargs)

    pipeline.score = score  # type: ignore[assignment]
    import leadsync.sync.workers as workers

    workers.score_time = lambda: moment  # the range jobs of a split re-score (issue 20)
    import leadsync.sync.scheduler as scheduler

    scheduler.score = score  # type: ignore[attr-defined]


def main() -> None:
    pinned = os.environ.get("LEADSYNC_TEST_SCORE_NOW")
    if pinned:
        _pin_score_time(datetime.fromisoformat(pinned))
    from leadsync.sync.cli import main as cli_main

    cli_main()


if __name__ == "__main__":
    main()
