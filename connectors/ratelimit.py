"""Proactive rate limiting: wait *before* sending so the platform never has to say 429.

Separate from ``connectors.retry`` (style.md, habit 5), which handles what slips through. A
limiter is acquired around each request by the one page loop::

    with limiter.acquire():
        response = client.send(request)
        limiter.observe(response)

* :class:`RollingWindowLimiter` - at most ``max_requests`` per rolling ``window_s`` (HubSpot 100
  or more per 10 s, hubspot.md §5; ActiveCampaign 5 per second, activecampaign.md §8).
* :class:`ConcurrencyLimiter` - at most ``n`` requests in flight (Mailchimp: 10 simultaneous
  connections, mailchimp.md §9).
* :class:`CompositeLimiter` - several at once (HubSpot search: the burst bucket and its own 5/s).
* :data:`UNLIMITED` - for ``--rate-limits off`` and tests.

Running just under the cap without a single 429
------------------------------------------------
The server counts a request when it *arrives*; we only know when we sent it and when the answer
came back, and the two clocks are not the same clock. :class:`RollingWindowLimiter` therefore
stamps each request with the time its response **completed**, which is never earlier than the
server's arrival stamp whatever the latency or skew. A new request is sent only once the oldest
stamp is more than ``window_s + safety_margin_s`` old, so on the server's clock any two requests
``max_requests`` apart are strictly more than one window apart. In-flight requests hold their
slot until they complete. The price is one round trip per window (under 1 % for HubSpot's 10 s),
plus the margin, which covers timer granularity and boundary rounding (``<=`` vs ``<``); keep it
small and raise it only against a platform that counts differently. A rolling window of ``n``
per ``n / r`` seconds is also never faster than a token bucket of size ``n`` and rate ``r``.

The platform's own ``...-Remaining`` header can only tighten the window (other integrations on
the same account spend the same budget, activecampaign.md §11.1): when it reports fewer slots
than we think are free, the difference is booked as phantom requests made now. A 429 that gets
through pauses every thread of the limiter for ``Retry-After`` (or ``pause_on_429_s``).

All limiters are thread-safe. ``clock`` and ``sleep`` are injectable so tests run on a fake clock.
Every wait gives way to a stop request (``connectors.stopping``): it raises ``Stopped`` at once
(the default ``sleep``), or within ``STOP_POLL_S`` where it waits on a condition or a semaphore.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import Protocol, runtime_checkable

import httpx

from leadsync.connectors import stopping
from leadsync.connectors._headers import header_int, parse_retry_after

__all__ = [
    "CompositeLimiter",
    "ConcurrencyLimiter",
    "Limiter",
    "LimiterStats",
    "Permit",
    "RollingWindowLimiter",
    "UNLIMITED",
    "shared_limiter",
]

# How often a wait for a completion or a free connection looks at the stop request (those waits
# are woken by other threads, not by the signal).
STOP_POLL_S = 0.1
WAITING = "in the rate limiter's wait"


class Permit:
    """The right to send one request; release it (or leave the ``with`` block) when it is done.

    Releasing twice is harmless.
    """

    __slots__ = ("_lock", "_release", "_released")

    def __init__(self, release: Callable[[], None] | None = None) -> None:
        self._release = release
        self._released = False
        self._lock = threading.Lock()

    def release(self) -> None:
        with self._lock:
            if self._released:
                return
            self._released = True
        if self._release is not None:
            self._release()

    def __enter__(self) -> Permit:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


@runtime_checkable
class Limiter(Protocol):
    """What the page loop needs from a limiter."""

    def acquire(self) -> Permit:
        """Block until a request may be sent; the permit is released when it has completed."""
        ...

    def observe(self, response: httpx.Response) -> None:
        """Learn from a response (remaining-budget headers, a 429 that slipped through)."""
        ...


@dataclass
class LimiterStats:
    """Counters for benchmarks and ``leadsync status``. Updated under the limiter's lock."""

    acquired: int = 0
    waited_s: float = 0.0
    max_in_flight: int = 0
    rate_limited_seen: int = 0


class _Unlimited:
    """A limiter that never waits."""

    def acquire(self) -> Permit:
        return Permit()

    def observe(self, response: httpx.Response) -> None:
        return None

    def __repr__(self) -> str:
        return "UNLIMITED"


UNLIMITED: Limiter = _Unlimited()


class RollingWindowLimiter:
    """At most ``max_requests`` per rolling ``window_s`` seconds, measured on completion times.

    ``remaining_header`` names the platform's remaining-budget header for this window
    (``X-HubSpot-RateLimit-Remaining``, ActiveCampaign's ``RateLimit-Remaining``).
    ``pause_on_429_s`` is how long to hold every thread after a 429 without ``Retry-After``
    (default: one window; hubspot.md §5, "wait out the 10 s window").
    """

    def __init__(
        self,
        max_requests: int,
        window_s: float,
        *,
        safety_margin_s: float = 0.05,
        remaining_header: str | None = None,
        pause_on_429_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = stopping.sleeper(WAITING),
        name: str = "",
    ) -> None:
        if max_requests < 1:
            raise ValueError(f"max_requests must be at least 1, got {max_requests}")
        if window_s <= 0 or safety_margin_s < 0:
            raise ValueError("window_s must be positive and safety_margin_s not negative")
        self.max_requests = max_requests
        self.window_s = window_s
        self.safety_margin_s = safety_margin_s
        self.remaining_header = remaining_header
        self.pause_on_429_s = window_s if pause_on_429_s is None else pause_on_429_s
        self.name = name
        self.stats = LimiterStats()
        self._clock = clock
        self._sleep = sleep
        self._cond = threading.Condition(threading.Lock())
        self._done: deque[float] = deque()  # completion stamps (and phantoms), oldest first
        self._in_flight = 0
        self._paused_until = 0.0

    def acquire(self) -> Permit:
        waited = 0.0
        with self._cond:
            while True:
                stopping.check(WAITING)
                now = self._clock()
                self._expire(now)
                if now < self._paused_until:
                    delay = self._paused_until - now
                elif self._in_flight + len(self._done) < self.max_requests:
                    self._in_flight += 1
                    self.stats.acquired += 1
                    self.stats.waited_s += waited
                    self.stats.max_in_flight = max(self.stats.max_in_flight, self._in_flight)
                    return Permit(self._complete)
                elif self._done:
                    delay = self._done[0] + (self.window_s + self.safety_margin_s) - now
                else:
                    # Every slot is in flight: the earliest a slot frees is a window after one of
                    # them completes, so wait for a completion first.
                    self._cond.wait(timeout=min(self.window_s, STOP_POLL_S))
                    continue
                # Sleeping on the injected clock, outside the lock. Nothing that happens meanwhile
                # can free a slot earlier: completions and phantoms are stamped later than the
                # oldest stamp, and pauses only grow.
                self._cond.release()
                try:
                    self._sleep(max(delay, 0.0))
                finally:
                    self._cond.acquire()
                waited += max(delay, 0.0)

    def observe(self, response: httpx.Response) -> None:
        now = self._clock()
        with self._cond:
            if response.status_code == 429:
                self.stats.rate_limited_seen += 1
                wait = parse_retry_after(response.headers.get("Retry-After"))
                self._paused_until = max(
                    self._paused_until, now + (wait if wait is not None else self.pause_on_429_s)
                )
                return
            if self.remaining_header is None:
                return
            remaining = header_int(response, self.remaining_header)
            if remaining is None:
                return
            self._expire(now)
            deficit = (self.max_requests - self._in_flight - len(self._done)) - max(remaining, 0)
            self._done.extend([now] * max(deficit, 0))

    @property
    def in_window(self) -> int:
        """Requests currently counted against the window (in flight, recent, phantom)."""
        with self._cond:
            self._expire(self._clock())
            return self._in_flight + len(self._done)

    def _complete(self) -> None:
        with self._cond:
            self._in_flight -= 1
            self._done.append(self._clock())
            self._cond.notify_all()

    def _expire(self, now: float) -> None:
        # Same expression as the wait in ``acquire``, so float rounding can never leave a stamp
        # that is "not expired" yet "due in 0 s" (a busy loop on a fake clock).
        span = self.window_s + self.safety_margin_s
        done = self._done
        while done and done[0] + span <= now:
            done.popleft()

    def __repr__(self) -> str:
        label = f"{self.name}: " if self.name else ""
        return (
            f"RollingWindowLimiter({label}{self.max_requests} per {self.window_s:g} s, "
            f"margin {self.safety_margin_s:g} s)"
        )


class ConcurrencyLimiter:
    """At most ``n`` requests in flight at once, granted in the order they were asked for.

    A released permit goes to the thread that has waited longest, never back to a thread that asks
    again at once. With a plain semaphore the ten page workers of Mailchimp's email-activity stream
    kept re-taking the permits they released, and the members stream's second page, asked for at
    0.08 s, was sent at 1.50 s (bench timeline, 2026-12-06): the stores, orders and carts that wait
    for the members then ran alone at the end of the pull.
    """

    def __init__(self, n: int, *, name: str = "") -> None:
        if n < 1:
            raise ValueError(f"n must be at least 1, got {n}")
        self.n = n
        self.name = name
        self.stats = LimiterStats()
        self._lock = threading.Lock()
        self._free = n
        self._waiting: deque[threading.Event] = deque()  # oldest first; set when granted
        self._in_flight = 0

    def acquire(self) -> Permit:
        start = time.monotonic()
        with self._lock:
            granted = None
            if self._free and not self._waiting:
                self._free -= 1
            else:
                granted = threading.Event()
                self._waiting.append(granted)
        if granted is not None:
            try:
                while not granted.wait(STOP_POLL_S):
                    stopping.check(WAITING)
            except BaseException:
                with self._lock:
                    if granted.is_set():  # granted just as the wait gave up: pass it on
                        self._hand_on()
                    else:
                        self._waiting.remove(granted)
                raise
        with self._lock:
            self._in_flight += 1
            self.stats.acquired += 1
            self.stats.waited_s += time.monotonic() - start
            self.stats.max_in_flight = max(self.stats.max_in_flight, self._in_flight)
        return Permit(self._release)

    def _hand_on(self) -> None:
        """A permit back: to the longest waiter, else free (called with ``_lock`` held)."""
        if self._waiting:
            self._waiting.popleft().set()
        else:
            self._free += 1

    def observe(self, response: httpx.Response) -> None:
        if response.status_code == 429:
            with self._lock:
                self.stats.rate_limited_seen += 1

    @property
    def in_flight(self) -> int:
        with self._lock:
            return self._in_flight

    @property
    def waiting(self) -> int:
        """Threads waiting for a permit."""
        with self._lock:
            return len(self._waiting)

    def _release(self) -> None:
        with self._lock:
            if self._in_flight == 0:
                raise ValueError(f"{self!r}: released more permits than it granted")
            self._in_flight -= 1
            self._hand_on()

    # ``with limiter:`` reads well for a bare concurrency cap. No permit is stored on the
    # instance, so many threads can use the same limiter this way at once.
    def __enter__(self) -> ConcurrencyLimiter:
        self.acquire()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._release()

    def __repr__(self) -> str:
        label = f"{self.name}: " if self.name else ""
        return f"ConcurrencyLimiter({label}{self.n} in flight)"


class CompositeLimiter:
    """Several limiters at once, acquired in the order given and released in reverse.

    Put concurrency caps first and rolling windows last, so a window slot is not held while
    waiting for a connection.
    """

    def __init__(self, *limiters: Limiter) -> None:
        self.limiters: tuple[Limiter, ...] = tuple(limiters)

    @classmethod
    def of(cls, limiters: Iterable[Limiter]) -> CompositeLimiter:
        return cls(*limiters)

    def acquire(self) -> Permit:
        permits: list[Permit] = []
        try:
            for limiter in self.limiters:
                permits.append(limiter.acquire())
        except BaseException:
            for permit in reversed(permits):
                permit.release()
            raise

        def release_all() -> None:
            for permit in reversed(permits):
                permit.release()

        return Permit(release_all)

    def observe(self, response: httpx.Response) -> None:
        for limiter in self.limiters:
            limiter.observe(response)

    def __repr__(self) -> str:
        return f"CompositeLimiter({', '.join(map(repr, self.limiters))})"


_SHARED: dict[Hashable, Limiter] = {}
_SHARED_LOCK = threading.Lock()


def shared_limiter(key: Hashable, factory: Callable[[], Limiter]) -> Limiter:
    """The process's one limiter for ``key`` (an account's budget), made by ``factory`` on first use.

    A platform counts its limits per account, not per client: the connector that pulled, the one
    that pushes and the one that reads back in the same process must draw from one budget, or the
    second starts with an empty window while the platform's is still full, and meets a 429.
    """
    with _SHARED_LOCK:
        limiter = _SHARED.get(key)
        if limiter is None:
            limiter = _SHARED[key] = factory()
        return limiter
