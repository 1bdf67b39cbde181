"""The sandbox's own clock: world time, moved forward only by the admin endpoint."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

__all__ = ["SandboxClock"]


class SandboxClock:
    """World time. Starts at the world's ``now`` and moves only when advanced.

    Emulators stamp every write (``lastmodifieddate``, ``last_changed``, ``udate``) with it, so a
    run against the sandbox is reproducible whatever the wall clock says.
    """

    def __init__(self, now: datetime) -> None:
        if now.tzinfo is None:
            raise ValueError("the sandbox clock needs an aware datetime (UTC)")
        self._now = now
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, delta: timedelta) -> datetime:
        if delta < timedelta(0):
            raise ValueError("the sandbox clock only moves forward")
        with self._lock:
            self._now = self._now + delta
            return self._now

    def tick(self, seconds: float = 0.001) -> datetime:
        """Move by a tiny step so successive writes get distinct, increasing stamps."""
        return self.advance(timedelta(seconds=seconds))
