"""Builders for scoring tests: a fixed clock, records, and small models written as TOML."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

from leadsync.config.scoring_model import ScoringModel, parse_model
from leadsync.connectors.records import EventRecord, EventType, Platform, Profile

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
_ids = itertools.count()


def ago(days: float = 0.0, seconds: float = 0.0) -> datetime:
    return NOW - timedelta(days=days, seconds=seconds)


def event(kind: str | EventType, at: datetime, **properties: Any) -> EventRecord:
    return EventRecord(
        source="test",
        platform=Platform.HUBSPOT,
        source_id=f"e{next(_ids)}",
        type=EventType(kind),
        occurred_at=at,
        remote_contact_id="c1",
        properties={k: v for k, v in properties.items() if v is not None},
    )


def profile(email: str = "ana@acme.io", **attributes: Any) -> Profile:
    return Profile(email=email, **attributes)


HEADER = 'version = 1\nname = "test"\n'
LINEAR = '[engagement]\ncurve = "linear"\nscale = 100\n'


def model(body: str, *, engagement: str = LINEAR) -> ScoringModel:
    """A model from TOML snippets. By default engagement = clamp(points, 0, 100)."""
    return parse_model(HEADER + engagement + body, file="test.toml")
