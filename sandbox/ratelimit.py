"""Server-side rate limits the emulators enforce: rolling windows and concurrent requests.

A platform emulator returns, per request, the policies that apply to it (HubSpot's search has its
own 5/s bucket; Mailchimp counts simultaneous connections per key). The middleware checks them
before the handler runs and answers with the platform's own 429 when one refuses.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["ConcurrencyPolicy", "LimitDecision", "RollingWindowPolicy"]


@dataclass(frozen=True)
class LimitDecision:
    policy: str
    allowed: bool
    limit: int
    remaining: int
    retry_after: float | None = None
    window_s: float | None = None


@dataclass
class RollingWindowPolicy:
    """At most ``limit`` requests per ``window_s`` seconds per key, over a rolling window."""

    name: str
    limit: int
    window_s: float
    clock: Callable[[], float] = time.monotonic
    _hits: dict[str, deque[float]] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def check(self, key: str) -> LimitDecision:
        now = self.clock()
        with self._lock:
            hits = self._hits.setdefault(key, deque())
            while hits and hits[0] <= now - self.window_s:
                hits.popleft()
            if len(hits) >= self.limit:
                retry_after = max(0.0, hits[0] + self.window_s - now)
                return LimitDecision(self.name, False, self.limit, 0, retry_after, self.window_s)
            hits.append(now)
            return LimitDecision(self.name, True, self.limit, self.limit - len(hits), None, self.window_s)

    def retry_after_header(self, decision: LimitDecision) -> str:
        return str(max(1, math.ceil(decision.retry_after or 0)))


@dataclass
class ConcurrencyPolicy:
    """At most ``limit`` requests in flight at once per key; ``release`` when a request ends."""

    name: str
    limit: int
    _in_flight: dict[str, int] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def check(self, key: str) -> LimitDecision:
        with self._lock:
            current = self._in_flight.get(key, 0)
            if current >= self.limit:
                return LimitDecision(self.name, False, self.limit, 0)
            self._in_flight[key] = current + 1
            return LimitDecision(self.name, True, self.limit, self.limit - current - 1)

    def release(self, key: str) -> None:
        with self._lock:
            self._in_flight[key] = max(0, self._in_flight.get(key, 0) - 1)
