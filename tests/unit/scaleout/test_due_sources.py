"""The workers' periodic schedule queues a source when its last run started at least its interval
ago, or when it never ran; never a disabled one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from leadsync.config.settings import LeadsyncConfig
from leadsync.sync.store import make_engine
from leadsync.sync.store.models import SyncRun
from leadsync.sync.workers import due_sources, queue_conninfo

NOW = datetime(2026, 12, 4, 6, 0, tzinfo=UTC)


def _source(name: str, **extra: object) -> dict[str, object]:
    return {
        "name": name,
        "platform": "hubspot",
        "base_url": "http://127.0.0.1:9",
        "inline_secrets": {"token": "pat-na1-x"},
        **extra,
    }


def test_due_sources_follow_each_interval(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'store.db'}")
    config = LeadsyncConfig.model_validate(
        {
            "schedule": {"interval": "15m"},
            "sources": [
                _source("fresh"),
                _source("stale"),
                _source("never"),
                _source("own-interval", interval="1m"),
                _source("off", enabled=False),
            ],
        }
    )
    started = {"fresh": NOW - timedelta(minutes=5), "stale": NOW - timedelta(minutes=20)}
    started["own-interval"] = NOW - timedelta(minutes=2)
    with engine.begin() as connection:
        for name, moment in started.items():
            connection.execute(
                SyncRun.__table__.insert().values(  # type: ignore[attr-defined]
                    source=name, command="pull", started_at=moment, status="ok", counts={}
                )
            )
    assert due_sources(engine, config, now=NOW) == ["stale", "never", "own-interval"]


def test_the_queue_address_drops_the_driver_and_keeps_the_password() -> None:
    url = "postgresql+psycopg://leadsync:s3cret@db.internal:5433/leadsync"
    assert queue_conninfo(url) == "postgresql://leadsync:s3cret@db.internal:5433/leadsync"
