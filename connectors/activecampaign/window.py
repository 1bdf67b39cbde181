"""Incremental windows with overlap and de-duplication, as JSON cursor state (pure).

ActiveCampaign's date filters (``filters[updated_after]``, ``after``) have an unconfirmed boundary
and timezone interpretation, and unsupported filters are silently ignored (activecampaign.md §2,
§11.2). So we never trust them:

* the request asks from ``since - lookback`` (overlap);
* every record is checked on our side: one older than ``since - lookback`` was covered by an
  earlier complete run and is dropped (an ignored filter costs requests, never wrong data);
* one inside the overlap whose (key, stamp) was already emitted is dropped (de-duplication);
* at the end of a run ``since`` moves to the newest stamp seen and ``seen`` keeps the keys whose
  stamps fall inside the next overlap, so a second run with nothing changed emits nothing.

Cursor shape: ``{"since": ISO, "seen": {key: ISO}, "tz": "-05:00"}`` between runs; during a run
``resume`` (the paginator position), ``high`` and ``recent`` are added so a run that dies half-way
continues where its last committed page ended, and ``floor`` when the run accepts from earlier
than ``since`` (a tracking-log sweep re-reading what runs between sweeps could not see).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

__all__ = ["Window"]


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


@dataclass
class Window:
    """One run of one incremental stream."""

    since: datetime | None
    lookback: timedelta
    seen: dict[str, str] = field(default_factory=dict)
    tz: str | None = None
    resume: dict[str, Any] | None = None
    high: datetime | None = None
    recent: dict[str, str] = field(default_factory=dict)
    dropped_old: int = 0
    dropped_seen: int = 0
    floor: datetime | None = None  # accept from here instead when earlier than since (a sweep)

    @classmethod
    def start(cls, cursor: Any, *, lookback: timedelta, full: bool) -> Window:
        if full or not isinstance(cursor, Mapping) or not cursor.get("since"):
            return cls(
                since=None,
                lookback=lookback,
                tz=(cursor or {}).get("tz") if isinstance(cursor, Mapping) else None,
            )
        window = cls(
            since=_parse(str(cursor["since"])),
            lookback=lookback,
            seen={str(k): str(v) for k, v in (cursor.get("seen") or {}).items()},
            tz=cursor.get("tz"),
            resume=dict(cursor["resume"]) if cursor.get("resume") else None,
            high=_parse(str(cursor["high"])) if cursor.get("high") else None,
            recent={str(k): str(v) for k, v in (cursor.get("recent") or {}).items()},
            floor=_parse(str(cursor["floor"])) if cursor.get("floor") else None,
        )
        return window

    @property
    def bound(self) -> datetime | None:
        """The earliest stamp to ask for (and to accept): ``since`` or an earlier ``floor``, less
        the lookback. ``since`` itself still moves only forward."""
        if self.since is None:
            return None
        start = self.since if self.floor is None else min(self.since, self.floor)
        return start - self.lookback

    def bound_text(self) -> str | None:
        """``bound`` in the account's own offset when we know it (§2: interpretation unconfirmed)."""
        bound = self.bound
        if bound is None:
            return None
        offset = _offset(self.tz) if self.tz else None
        return bound.astimezone(offset or UTC).isoformat(timespec="seconds")

    def learn_offset(self, stamp_text: str) -> None:
        """Remember the account's UTC offset from a platform stamp such as ``...-05:00``."""
        if len(stamp_text) >= 6 and stamp_text[-6] in "+-" and stamp_text[-3] == ":":
            self.tz = stamp_text[-6:]

    def accept(self, key: str, stamp: datetime) -> bool:
        """Whether to emit a record; records every stamp for the next run's de-duplication."""
        bound = self.bound
        if bound is not None and stamp < bound:
            self.dropped_old += 1
            return False
        stamp_text = _iso(stamp)
        if self.high is None or stamp > self.high:
            self.high = stamp
        self.recent[key] = stamp_text
        if self.seen.get(key) == stamp_text:
            self.dropped_seen += 1
            return False
        return True

    def accept_from(self, key: str, stamp: datetime, floor: datetime | None) -> bool:
        """``accept`` with ``floor`` (a sweep's: None, everything) in place of the window's bound."""
        if floor is not None and stamp < floor:
            self.dropped_old += 1
            return False
        stamp_text = _iso(stamp)
        if self.high is None or stamp > self.high:
            self.high = stamp
        self.recent[key] = stamp_text
        if self.seen.get(key) == stamp_text:
            self.dropped_seen += 1
            return False
        return True

    def _trimmed(self, entries: Mapping[str, str], high: datetime) -> dict[str, str]:
        floor = high - self.lookback
        return {k: v for k, v in entries.items() if _parse(v) >= floor}

    def checkpoint(self, resume: Mapping[str, Any] | None) -> dict[str, Any]:
        """The cursor to commit after a page; ``resume=None`` means the run is complete."""
        if resume is None:
            return self.final()
        state: dict[str, Any] = {
            "since": _iso(self.since) if self.since else _iso(datetime(1970, 1, 1, tzinfo=UTC)),
            "seen": self.seen,
            "resume": dict(resume),
        }
        if self.since is None:
            state["full"] = True
        if self.floor is not None:
            state["floor"] = _iso(self.floor)
        if self.high is not None:
            state["high"] = _iso(self.high)
            self.recent = self._trimmed(self.recent, self.high)
            state["recent"] = self.recent
        if self.tz:
            state["tz"] = self.tz
        return state

    def final(self) -> dict[str, Any]:
        high = max((h for h in (self.high, self.since) if h is not None), default=None)
        if high is None:
            return {"since": None, "seen": {}, **({"tz": self.tz} if self.tz else {})}
        merged = {**self._trimmed(self.seen, high), **self._trimmed(self.recent, high)}
        state: dict[str, Any] = {"since": _iso(high), "seen": merged}
        if self.tz:
            state["tz"] = self.tz
        return state


def _offset(text: str) -> timezone | None:
    try:
        sign = -1 if text.startswith("-") else 1
        hours, minutes = text.lstrip("+-").split(":")
        return timezone(sign * timedelta(hours=int(hours), minutes=int(minutes)))
    except ValueError:
        return None
