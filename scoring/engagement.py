"""Engagement: points per event kind, decayed by half-life, capped, mapped to 0–100.

For each person and channel (event kind, see ``scoring.compiled``):

1. events after ``now`` and machine activity are dropped;
2. caps: at most ``cap.count`` events per ``cap.window_days`` window count (windows aligned to the
   epoch, the most recent events of a window are the ones kept);
3. each counted event is worth ``points * 0.5 ** (age_days / half_life_days)``, so an event one
   half-life old counts exactly half;
4. the channel's total is bounded by ``max_points`` (in absolute value).

The person's *engagement points* are the sum over channels. The 0–100 engagement applies the
model's curve (``saturating``: ``100 * (1 - exp(-points / scale))``; ``linear``:
``100 * points / scale`` clamped), 0 for totals at or below zero.

Everything works on columns for all persons at once; ``EngagementParts`` keeps dense
``persons x channels`` matrices, which the explanation reads back per person.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from leadsync.connectors.records import EventType
from leadsync.scoring.columns import EVENT_TYPES, HARD_BOUNCE, EventColumns
from leadsync.scoring.compiled import CompiledModel
from leadsync.scoring.ordering import group_time_order

__all__ = ["EngagementParts", "KeptEvents", "aggregate", "assign_channels", "engagement_curve", "keep_events"]

_BOUNCE = EVENT_TYPES.index(EventType.EMAIL_BOUNCE)
_PAGE_VIEW = EVENT_TYPES.index(EventType.PAGE_VIEW)


def assign_channels(events: EventColumns, compiled: CompiledModel) -> np.ndarray:
    """The channel code of each event."""
    channel = compiled.type_channel[events.kind]
    hard = (events.kind == _BOUNCE) & ((events.flags & HARD_BOUNCE) != 0)
    channel[hard] = compiled.hard_bounce_channel
    for kind, flag, outcome_channel in compiled.outcome_channels:
        channel[(events.kind == kind) & ((events.flags & flag) != 0)] = outcome_channel
    if compiled.page_channels:
        plain = compiled.type_channel[_PAGE_VIEW]
        # one regex pass per distinct URL; the extra last entry serves url == -1
        by_url = np.array([compiled.classify_url(u) for u in events.urls] + [plain], dtype=np.int64)
        views = events.kind == _PAGE_VIEW
        channel[views] = by_url[events.url[views]]
    return channel


@dataclass(frozen=True, slots=True)
class KeptEvents:
    """Human events up to ``now``, sorted by person, channel, time; grouped by (person, channel)."""

    person: np.ndarray
    channel: np.ndarray
    at: np.ndarray
    group_start: np.ndarray  # index of the first event of each (person, channel) group
    group_end: np.ndarray  # index of the last event of each group
    machine_filtered: np.ndarray  # per person: events dropped as machine activity


def keep_events(
    events: EventColumns,
    channel: np.ndarray,
    machine: np.ndarray,
    n_persons: int,
    n_channels: int,
    now: float,
) -> KeptEvents:
    due = events.at <= now
    keep = due & ~machine
    filtered = np.bincount(events.person[due & machine], minlength=n_persons)
    person, chan, at = events.person[keep], channel[keep], events.at[keep]
    order = group_time_order(person * n_channels + chan, at)
    person, chan, at = person[order], chan[order], at[order]
    m = len(person)
    if m:
        new = np.ones(m, dtype=bool)
        new[1:] = (person[1:] != person[:-1]) | (chan[1:] != chan[:-1])
        start = np.flatnonzero(new)
        end = np.append(start[1:] - 1, m - 1)
    else:
        start = end = np.zeros(0, dtype=np.int64)
    return KeptEvents(person, chan, at, start, end, filtered.astype(np.int64))


@dataclass(frozen=True, slots=True)
class EngagementParts:
    """Dense ``persons x channels`` matrices."""

    points: np.ndarray  # float64: decayed, capped points of the channel (the raw contribution)
    counted: np.ndarray  # int64: events that counted (after caps)
    kept: np.ndarray  # int64: human events up to now (before caps)
    last_seen: np.ndarray  # float64: time of the latest such event, -inf when none

    @property
    def total(self) -> np.ndarray:
        """Engagement points per person, before the 0–100 mapping."""
        return self.points.sum(axis=1)


def aggregate(kept: KeptEvents, compiled: CompiledModel, n_persons: int, now: float) -> EngagementParts:
    n_channels = compiled.n_channels
    shape = (n_persons, n_channels)
    points = np.zeros(shape)
    counted = np.zeros(shape, dtype=np.int64)
    n_kept = np.zeros(shape, dtype=np.int64)
    last_seen = np.full(shape, -np.inf)
    m = len(kept.person)
    if not m:
        return EngagementParts(points, counted, n_kept, last_seen)
    person, chan, at = kept.person, kept.channel, kept.at

    # caps: rank events from the end of their (person, channel, window) bucket
    bucket = np.floor(at / compiled.cap_window[chan])
    new_bucket = np.ones(m, dtype=bool)
    new_bucket[1:] = (person[1:] != person[:-1]) | (chan[1:] != chan[:-1]) | (bucket[1:] != bucket[:-1])
    bucket_id = np.cumsum(new_bucket) - 1
    bucket_start = np.flatnonzero(new_bucket)
    bucket_end = np.append(bucket_start[1:] - 1, m - 1)
    from_end = bucket_end[bucket_id] - np.arange(m)
    counts = from_end < compiled.cap_count[chan]

    weight = np.where(counts, compiled.points[chan] * np.exp2(-(now - at) / compiled.half_life[chan]), 0.0)
    start, end = kept.group_start, kept.group_end
    g_person, g_chan = person[start], chan[start]
    g_points = np.add.reduceat(weight, start)
    bound = compiled.max_points[g_chan]
    g_points = np.sign(g_points) * np.minimum(np.abs(g_points), bound)

    flat = g_person * n_channels + g_chan
    points.flat[flat] = g_points
    counted.flat[flat] = np.add.reduceat(counts.astype(np.int64), start)
    n_kept.flat[flat] = end - start + 1
    last_seen.flat[flat] = np.maximum.reduceat(at, start)
    return EngagementParts(points, counted, n_kept, last_seen)


def engagement_curve(total: np.ndarray, curve: str, scale: float) -> np.ndarray:
    """Engagement points to 0–100 (float; the engine rounds)."""
    positive = np.maximum(total, 0.0)
    if curve == "saturating":
        return 100.0 * -np.expm1(-positive / scale)
    return np.minimum(100.0 * positive / scale, 100.0)
