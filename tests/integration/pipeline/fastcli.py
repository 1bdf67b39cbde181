"""The real ``leadsync`` CLI, with two test-only adjustments, run as ``python -m`` by the pipeline tests.

1. The connectors' own client-side throttles are lifted (ActiveCampaign 5 requests/second, HubSpot
   100 per 10 s). The sandbox runs with its limits off in these tests, and the config file cannot
   say so: ``config.settings`` accepts no ActiveCampaign options and no HubSpot ``rate_limit``.
2. ``LEADSYNC_TEST_SCORE_NOW`` (ISO time) pins the time the score step scores at, so two runs
   minutes apart score the same data to the same values (engagement decays with real time).

Everything else (config, store, pipeline, leases, connectors, HTTP) is the code users run.
"""

from __future__ import annotations

import dataclasses
import os
from datetime import datetime
from typing import Any

from connectors.activecampaign.connector import ActiveCampaignConnector
from connectors.hubspot.connector import HubSpotConnector

FAST_OPTIONS: dict[type, dict[str, Any]] = {
    ActiveCampaignConnector: {"requests_per_second": 0, "import_poll_s": 0.02, "bulk_rate_wait_s": 0.05},
    HubSpotConnector: {"rate_limit": False},
}


def _fast(cls: type) -> None:
    original = cls.__init__

    def __init__(self: Any, settings: Any, *args: Any, **kwargs: Any) -> None:
        options = {**FAST_OPTIONS[cls], **dict(settings.options)}
        original(self, dataclasses.replace(settings, options=options), *args, **kwargs)

    cls.__init__ = __init__  # type: ignore[method-assign]


def _pin_score_time(moment: datetime) -> None:
    import sync.pipeline as pipeline

    original = pipeline.score

    def score(engine: Any, model: Any, *, now: datetime | None = None, **kwargs: Any) -> Any:
        return original(engine, model, now=now or moment, **kwargs)

    pipeline.score = score  # type: ignore[assignment]
    import sync.scheduler as scheduler

    scheduler.score = score  # type: ignore[attr-defined]


def main() -> None:
    for cls in FAST_OPTIONS:
        _fast(cls)
    pinned = os.environ.get("LEADSYNC_TEST_SCORE_NOW")
    if pinned:
        _pin_score_time(datetime.fromisoformat(pinned))
    from sync.cli import main as cli_main

    cli_main()


if __name__ == "__main__":
    main()
