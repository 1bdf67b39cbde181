"""``leadsync state``: each stream's cursor in plain words, and resetting one.

A cursor is whatever JSON a connector commits with a page (``SyncCursor.value``); the shapes are the
connectors' own, but they share a vocabulary this module reads: ``since`` (an ISO time, or epoch
milliseconds for HubSpot), ``resume`` (a run stopped mid-stream resumes at that page), per-part
cursors under ``lists`` (Mailchimp audiences) or ``campaigns`` (Mailchimp campaigns), and the
ActiveCampaign tracking-log sweep (``sweep_started``, ``swept_at``: epoch seconds). Reading them is
pure (``describe``); resetting deletes the rows under the source's lease (``reset_streams``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, delete, desc, select

from leadsync.config.settings import SourceConfig
from leadsync.connectors.catalog import stream_names
from leadsync.sync.lease import LeaseKeeper
from leadsync.sync.store.models import SyncCursor, SyncRun

__all__ = ["StreamState", "describe", "reset_streams", "source_state"]


@dataclass
class StreamState:
    """One stream of one source, as ``leadsync state`` shows it."""

    source: str
    stream: str
    selected: bool
    since: datetime | None  # the next incremental pull reads what changed from about here
    progress: str  # in plain words
    committed_at: datetime | None  # the last page committed with this cursor
    last_success: datetime | None  # the last pull of the source that ended ok


def _time(value: Any) -> datetime | None:
    """An ISO time or epoch milliseconds (HubSpot) as an aware datetime; None when unreadable."""
    if value in (None, "", 0):
        return None
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value / 1000, tz=UTC)
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _wall(value: Any) -> datetime | None:
    """Epoch seconds (our own wall clock, as the sweep records it)."""
    try:
        return datetime.fromtimestamp(float(value), tz=UTC)
    except (TypeError, ValueError):
        return None


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC") if moment else "never"


def describe(value: Any) -> tuple[datetime | None, str]:
    """(since, progress in plain words) of one committed cursor (None: never pulled)."""
    if value is None:
        return None, "no cursor yet: the next pull reads from the start"
    if not isinstance(value, Mapping):
        return None, f"cursor {value!r}"
    words: list[str] = []
    since = _time(value.get("since"))
    for key, what in (("lists", "audience"), ("campaigns", "campaign")):
        parts = value.get(key)
        if isinstance(parts, Mapping) and parts:
            times = [
                t for part in parts.values() if isinstance(part, Mapping) and (t := _time(part.get("since")))
            ]
            words.append(f"{len(parts)} {what}{'s' if len(parts) != 1 else ''} read")
            if times:
                since = min(times)
                if max(times) != since:
                    words.append(f"the newest up to {_when(max(times))}")
    if value.get("resume"):
        position = ", ".join(f"{k} {v}" for k, v in dict(value["resume"]).items())
        started = "a full read" if value.get("full") or since is None else "a run"
        words.append(f"{started} stopped part-way: the next pull resumes at {position}")
    if value.get("sweep_started") is not None:
        words.append(f"tracking-log sweep under way since {_when(_wall(value['sweep_started']))}")
    if value.get("swept_at") is not None:
        words.append(f"last complete sweep of every contact {_when(_wall(value['swept_at']))}")
    if not words:
        words.append("up to date" if since else "read once, nothing found yet")
    return since, "; ".join(words)


def _last_success(engine: Engine, source: str) -> datetime | None:
    with engine.connect() as connection:
        rows = connection.execute(
            select(SyncRun.finished_at, SyncRun.step, SyncRun.counts)
            .where(SyncRun.source == source, SyncRun.status == "ok")
            .order_by(desc(SyncRun.id))
            .limit(50)
        ).all()
    for finished_at, step, _ in rows:
        if step == "pull":
            return (
                finished_at if finished_at is None or finished_at.tzinfo else finished_at.replace(tzinfo=UTC)
            )
    return None


def source_state(engine: Engine, source: SourceConfig) -> list[StreamState]:
    """Every stream of ``source`` (selected or not), in pull order."""
    with engine.connect() as connection:
        cursors = {
            stream: (value, updated_at)
            for stream, value, updated_at in connection.execute(
                select(SyncCursor.stream, SyncCursor.value, SyncCursor.updated_at).where(
                    SyncCursor.source == source.name
                )
            )
        }
    last = _last_success(engine, source.name)
    states = []
    for stream in stream_names(source.platform):
        value, committed = cursors.get(stream, (None, None))
        since, progress = describe(value)
        states.append(
            StreamState(
                source=source.name,
                stream=stream,
                selected=source.streams is None or stream in source.streams,
                since=since,
                progress=progress,
                committed_at=committed
                if committed is None or committed.tzinfo
                else committed.replace(tzinfo=UTC),
                last_success=last,
            )
        )
    return states


def reset_streams(engine: Engine, source: SourceConfig, streams: Sequence[str]) -> int:
    """Forget the cursors of ``streams`` of ``source`` so the next pull re-reads them from the start;
    under the source's lease (``LeaseHeld`` names who holds it). Returns the cursors deleted.

    Re-reading is safe: every row is an idempotent upsert keyed by the platform's ids, so nothing is
    counted twice (DESIGN.md "Sync state")."""
    with LeaseKeeper(engine, f"source:{source.name}"), engine.begin() as connection:
        result = connection.execute(
            delete(SyncCursor).where(SyncCursor.source == source.name, SyncCursor.stream.in_(list(streams)))
        )
    return int(result.rowcount or 0)
