"""Counters the sandbox keeps per platform: what a benchmark or a test reads back."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

__all__ = ["PlatformStats"]


@dataclass
class PlatformStats:
    """Requests, TCP connections and refusals seen by one platform emulator.

    ``connections_opened`` counts TCP connections that carried at least one API request (admin-only
    connections, such as the one reading these stats, are left out); ``connections_peak`` is the
    most connections open at once. ``rate_limited`` counts 429s sent by the rate limiter, ``faults_injected``
    counts injected faults by kind (an injected 429 is counted there, not in ``rate_limited``).
    ``write_requests`` counts requests with a method other than GET/HEAD to the platform API.
    """

    requests: int = 0
    write_requests: int = 0
    connections_opened: int = 0
    connections_open: int = 0
    connections_peak: int = 0
    in_flight: int = 0
    in_flight_peak: int = 0
    rate_limited: int = 0
    by_status: Counter[int] = field(default_factory=Counter)
    by_route: Counter[str] = field(default_factory=Counter)
    faults_injected: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def connection_opened(self) -> None:
        with self._lock:
            self.connections_open += 1
            self.connections_peak = max(self.connections_peak, self.connections_open)

    def connection_closed(self) -> None:
        with self._lock:
            self.connections_open = max(0, self.connections_open - 1)

    def request_started(self, route: str, *, write: bool, new_connection: bool = False) -> None:
        with self._lock:
            self.connections_opened += int(new_connection)
            self.requests += 1
            self.write_requests += int(write)
            self.in_flight += 1
            self.in_flight_peak = max(self.in_flight_peak, self.in_flight)
            self.by_route[route] += 1

    def request_finished(self, status: int) -> None:
        with self._lock:
            self.in_flight = max(0, self.in_flight - 1)
            self.by_status[status] += 1

    def count_rate_limited(self) -> None:
        with self._lock:
            self.rate_limited += 1

    def count_fault(self, kind: str) -> None:
        with self._lock:
            self.faults_injected[kind] += 1

    @property
    def answered_429(self) -> int:
        return self.by_status.get(429, 0)

    def reset(self) -> None:
        with self._lock:
            self.requests = self.write_requests = 0
            self.connections_opened = 0
            self.connections_peak = self.connections_open
            self.in_flight_peak = self.in_flight
            self.rate_limited = 0
            self.by_status.clear()
            self.by_route.clear()
            self.faults_injected.clear()

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "requests": self.requests,
                "write_requests": self.write_requests,
                "connections_opened": self.connections_opened,
                "connections_open": self.connections_open,
                "connections_peak": self.connections_peak,
                "in_flight_peak": self.in_flight_peak,
                "rate_limited": self.rate_limited,
                "answered_429": self.by_status.get(429, 0),
                "by_status": {str(k): v for k, v in sorted(self.by_status.items())},
                "by_route": dict(sorted(self.by_route.items())),
                "faults_injected": dict(sorted(self.faults_injected.items())),
            }
