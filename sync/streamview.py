"""``leadsync streams``: each source's streams, whether selected, what they feed in the scoring model,
and what a run of each costs in requests, as measured in the last runs (the run history's per-stream
counts, ``leadsync.sync.runs``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, desc, select

from leadsync.config.scoring_model import ScoringModel
from leadsync.config.settings import SourceConfig
from leadsync.connectors.catalog import CATALOG
from leadsync.connectors.records import EventType
from leadsync.sync.store.models import SyncRun

__all__ = ["StreamRow", "feeds", "stream_rows"]

MEASURED_RUNS = 5  # the cost per run is the mean over this many of the last runs that measured it


@dataclass
class StreamRow:
    source: str
    stream: str
    selected: bool
    reads: str
    events: list[str]
    feeds: list[str]  # "affinity", "engagement", "stage: decision", "lifecycle", "disqualifier: …"
    requests_per_run: float | None  # None: not measured yet
    runs_measured: int = 0
    last_requests: int | None = None
    records_per_run: float | None = None
    notes: list[str] = field(default_factory=list)


def feeds(event_types: tuple[EventType, ...], model: ScoringModel) -> list[str]:
    """Which scores of ``model`` these event types feed (engagement points, stage signals, lifecycle
    and disqualifier conditions)."""
    found: list[str] = []
    names = {event.value for event in event_types}
    if names & set(model.engagement.events) or ("page_view" in names and model.engagement.pages):
        found.append("engagement")
    for stage in ("investigation", "decision", "action"):
        rule = getattr(model.stage, stage)
        if rule is None:
            continue
        signals = set(rule.signals)
        pages = "page_view" in names and any(signal.startswith("page:") for signal in signals)
        if signals & names or pages:
            found.append(f"stage: {stage}")
    for level in ("lead", "marketing_qualified_lead", "sales_qualified_lead", "opportunity", "customer"):
        rule = getattr(model.lifecycle, level)
        if rule is not None and any(names & set(c.events or ()) for c in rule.when):
            found.append(f"lifecycle: {level}")
    for disqualifier in model.disqualifiers:
        if names & set(disqualifier.events or ()):
            found.append(f"disqualifier: {disqualifier.name}")
    return found


def _measured(engine: Engine, source: str) -> list[Mapping[str, Any]]:
    """The per-stream counts of the source's last pull runs, newest first."""
    with engine.connect() as connection:
        rows = connection.execute(
            select(SyncRun.counts)
            .where(SyncRun.source == source, SyncRun.step == "pull")
            .order_by(desc(SyncRun.id))
            .limit(50)
        ).scalars()
        return [counts["streams"] for counts in rows if isinstance((counts or {}).get("streams"), Mapping)]


def stream_rows(engine: Engine, source: SourceConfig, model: ScoringModel) -> list[StreamRow]:
    runs = _measured(engine, source.name)
    rows: list[StreamRow] = []
    for info in CATALOG[source.platform]:
        scores = (["affinity", "leadsync's own field values (drift)"] if info.contacts else []) + feeds(
            info.events, model
        )
        measured = [run[info.name] for run in runs if isinstance(run.get(info.name), Mapping)][:MEASURED_RUNS]
        requests = [int(m.get("requests") or 0) for m in measured]
        records = [int(m.get("records") or 0) for m in measured]
        rows.append(
            StreamRow(
                source=source.name,
                stream=info.name,
                selected=source.streams is None or info.name in source.streams,
                reads=info.reads,
                events=[event.value for event in info.events],
                feeds=scores,
                requests_per_run=round(sum(requests) / len(requests), 1) if requests else None,
                runs_measured=len(requests),
                last_requests=requests[0] if requests else None,
                records_per_run=round(sum(records) / len(records), 1) if records else None,
            )
        )
    return rows
