"""Requests over time, sampled from the sandbox's stats while a step runs: shows whether a client
stays just under a platform's cap all the time, or idles between requests."""

from __future__ import annotations

import threading
import time
from types import TracebackType
from typing import Any

import httpx

__all__ = ["Timeline"]

PERIOD_S = 0.25


class Timeline:
    """``with Timeline(base_url) as t: ...`` then ``t.summary()``."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.samples: list[tuple[float, int, int]] = []  # (seconds, requests so far, in-flight peak so far)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-timeline", daemon=True)

    def _run(self) -> None:
        started = time.perf_counter()
        with httpx.Client(base_url=self.base_url, timeout=10) as client:
            while True:
                stats = client.get("/_sandbox/stats").json()
                self.samples.append(
                    (time.perf_counter() - started, stats["requests"], stats["in_flight_peak"])
                )
                if self._stop.wait(PERIOD_S):
                    stats = client.get("/_sandbox/stats").json()
                    self.samples.append(
                        (time.perf_counter() - started, stats["requests"], stats["in_flight_peak"])
                    )
                    return

    def __enter__(self) -> Timeline:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join()

    def _most_in(self, window_s: float) -> int:
        """The most requests counted in any ``window_s`` span between two samples."""
        best, j = 0, 0
        for t, requests, _ in self.samples:
            while t - self.samples[j][0] > window_s:
                j += 1
            best = max(best, requests - self.samples[j][1])
        return best

    def summary(self) -> dict[str, Any]:
        if len(self.samples) < 2:
            return {}
        per_second = []
        t0, r0 = self.samples[0][0], self.samples[0][1]
        for t, requests, _ in self.samples[1:]:
            if t - t0 >= 1.0:
                per_second.append(round((requests - r0) / (t - t0), 1))
                t0, r0 = t, requests
        return {
            "requests_per_second_by_second": per_second,
            "most_requests_in_1s": self._most_in(1.0),
            "most_requests_in_10s": self._most_in(10.0),
        }
