"""Proactive limiters: a fake clock for the arithmetic, a small simulated server for the ceiling."""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from collections.abc import Callable

import httpx
import pytest

from leadsync.connectors import stopping
from leadsync.connectors.ratelimit import (
    UNLIMITED,
    CompositeLimiter,
    ConcurrencyLimiter,
    Permit,
    RollingWindowLimiter,
)

from .conftest import FakeClock


def window(clock: FakeClock, n: int = 3, window_s: float = 10.0, **kwargs: object) -> RollingWindowLimiter:
    return RollingWindowLimiter(n, window_s, safety_margin_s=0.05, clock=clock, sleep=clock.sleep, **kwargs)  # type: ignore[arg-type]


def test_given_an_empty_window_then_the_first_n_requests_go_without_waiting(clock: FakeClock) -> None:
    limiter = window(clock, n=3)
    for _ in range(3):
        limiter.acquire().release()
    assert clock.sleeps == []
    assert limiter.in_window == 3


def test_given_a_full_window_then_the_next_request_waits_until_the_oldest_is_a_window_and_margin_old(
    clock: FakeClock,
) -> None:
    limiter = window(clock, n=3)
    for step in (0.0, 1.0, 1.0):
        clock.advance(step)
        limiter.acquire().release()  # completions at 1000, 1001, 1002
    limiter.acquire().release()
    assert clock.now == pytest.approx(1000.0 + 10.0 + 0.05)
    assert sum(clock.sleeps) == pytest.approx(8.05)  # 2 s had passed already


def test_the_window_starts_when_a_request_completes_not_when_it_was_sent(clock: FakeClock) -> None:
    # The server stamps a request when it arrives, at some point between our send and our
    # completion; stamping completions keeps us behind the server whatever the latency.
    limiter = window(clock, n=1)
    permit = limiter.acquire()
    clock.advance(2.0)  # a slow response
    permit.release()
    limiter.acquire().release()
    assert clock.now == pytest.approx(1002.0 + 10.05)


def test_in_flight_requests_hold_their_slot() -> None:
    limiter = RollingWindowLimiter(1, 0.05, safety_margin_s=0.0)
    first = limiter.acquire()
    acquired = threading.Event()

    def second() -> None:
        limiter.acquire().release()
        acquired.set()

    thread = threading.Thread(target=second)
    thread.start()
    assert not acquired.wait(0.1)  # longer than a window: the slot is still in flight
    first.release()
    assert acquired.wait(1.0)
    thread.join()


def test_given_the_platform_reports_fewer_remaining_than_we_think_then_the_window_tightens(
    clock: FakeClock,
) -> None:
    # activecampaign.md §11.1: the budget is per account, shared with other integrations.
    limiter = window(clock, n=5, window_s=1.0, remaining_header="RateLimit-Remaining")
    with limiter.acquire():
        limiter.observe(httpx.Response(200, headers={"RateLimit-Remaining": "1"}))
    assert limiter.in_window == 4  # ours, plus three spent by someone else
    limiter.acquire().release()
    assert clock.sleeps == []
    limiter.acquire().release()
    assert sum(clock.sleeps) == pytest.approx(1.05)


def test_given_the_platform_reports_more_remaining_than_we_think_then_nothing_loosens(
    clock: FakeClock,
) -> None:
    limiter = window(clock, n=2, remaining_header="X-HubSpot-RateLimit-Remaining")
    with limiter.acquire():
        limiter.observe(httpx.Response(200, headers={"X-HubSpot-RateLimit-Remaining": "99"}))
    with limiter.acquire():
        pass
    limiter.acquire().release()
    assert sum(clock.sleeps) == pytest.approx(10.05)


@pytest.mark.parametrize(
    ("headers", "pause"),
    [({"Retry-After": "3"}, 3.0), ({}, 10.0)],
    ids=["retry-after", "no retry-after: one window"],
)
def test_given_a_429_slipped_through_then_every_caller_pauses(
    clock: FakeClock, headers: dict[str, str], pause: float
) -> None:
    limiter = window(clock, n=100)
    with limiter.acquire():
        limiter.observe(httpx.Response(429, headers=headers))
    limiter.acquire().release()
    assert sum(clock.sleeps) == pytest.approx(pause)
    assert limiter.stats.rate_limited_seen == 1


def test_invalid_limits_are_refused() -> None:
    with pytest.raises(ValueError):
        RollingWindowLimiter(0, 1.0)
    with pytest.raises(ValueError):
        RollingWindowLimiter(5, 0)
    with pytest.raises(ValueError):
        ConcurrencyLimiter(0)


class RollingWindowServer:
    """A server-side rolling window counted on arrival, like the sandbox and HubSpot (hubspot.md §5)."""

    def __init__(self, limit: int, window_s: float, clock) -> None:  # type: ignore[no-untyped-def]
        self.limit, self.window_s, self.clock = limit, window_s, clock
        self.hits: deque[float] = deque()
        self.accepted = 0
        self.refused = 0
        self.lock = threading.Lock()

    def arrive(self, at: float | None = None) -> httpx.Response:
        with self.lock:
            now = self.clock() if at is None else at
            while self.hits and self.hits[0] <= now - self.window_s:
                self.hits.popleft()
            if len(self.hits) >= self.limit:
                self.refused += 1
                return httpx.Response(429)
            self.hits.append(now)
            self.accepted += 1
            return httpx.Response(200, headers={"X-Remaining": str(self.limit - len(self.hits))})


@pytest.mark.parametrize(
    ("limit", "window_s", "latency_ms"),
    [(100, 10.0, (2, 90)), (5, 1.0, (1, 40)), (190, 10.0, (1, 30))],
    ids=["hubspot 100/10s", "activecampaign 5/s", "hubspot professional 190/10s"],
)
def test_running_flat_out_stays_just_under_the_cap_with_no_429(
    clock: FakeClock, limit: int, window_s: float, latency_ms: tuple[int, int]
) -> None:
    rng = random.Random(7)
    server = RollingWindowServer(limit, window_s, clock)
    limiter = RollingWindowLimiter(
        limit, window_s, safety_margin_s=0.02, remaining_header="X-Remaining", clock=clock, sleep=clock.sleep
    )
    start = clock.now
    duration = 30 * window_s
    while clock.now - start < duration:
        with limiter.acquire():
            up, down = (rng.uniform(*latency_ms) / 1000 for _ in range(2))
            response = server.arrive(at=clock.now + up)
            clock.advance(up + down)
            limiter.observe(response)
    ceiling = limit * (clock.now - start) / window_s
    assert server.refused == 0
    assert server.accepted / ceiling >= 0.93  # the cost is one round trip and the margin per window


def test_threads_sharing_one_limiter_stay_under_the_cap_on_a_real_clock() -> None:
    server = RollingWindowServer(10, 0.2, time.monotonic)
    limiter = RollingWindowLimiter(10, 0.2, safety_margin_s=0.01)
    deadline = time.monotonic() + 1.0

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        while time.monotonic() < deadline:
            with limiter.acquire():
                time.sleep(rng.uniform(0.0, 0.004))
                response = server.arrive()
                time.sleep(rng.uniform(0.0, 0.004))
                limiter.observe(response)

    threads = [threading.Thread(target=worker, args=(seed,)) for seed in range(4)]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - began
    assert server.refused == 0
    assert server.accepted >= 0.85 * 10 * elapsed / 0.2


def test_the_concurrency_limiter_never_lets_more_than_n_run_at_once() -> None:
    limiter = ConcurrencyLimiter(3)
    running = 0
    peak = 0
    lock = threading.Lock()

    def worker() -> None:
        nonlocal running, peak
        for _ in range(5):
            with limiter.acquire():
                with lock:
                    running += 1
                    peak = max(peak, running)
                time.sleep(0.002)
                with lock:
                    running -= 1

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert peak == 3
    assert limiter.stats.max_in_flight == 3
    assert limiter.in_flight == 0


def test_the_concurrency_limiter_is_a_context_manager_too_and_shareable_between_threads() -> None:
    limiter = ConcurrencyLimiter(2)
    with limiter:
        assert limiter.in_flight == 1
    assert limiter.in_flight == 0

    def worker() -> None:
        for _ in range(20):
            with limiter:
                time.sleep(0.0005)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert limiter.in_flight == 0 and limiter.stats.max_in_flight == 2


def _until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.001)


def test_a_released_concurrency_permit_goes_to_the_longest_waiter_not_back_to_the_releaser() -> None:
    # one stream's workers release and ask again at once; another stream's request waits its turn
    limiter = ConcurrencyLimiter(1)
    order: list[str] = []
    held = limiter.acquire()

    def other_stream() -> None:
        permit = limiter.acquire()
        order.append("waiter")
        time.sleep(0.05)
        permit.release()

    thread = threading.Thread(target=other_stream)
    thread.start()
    _until(lambda: limiter.waiting == 1)
    held.release()
    again = limiter.acquire()  # the releaser asks again at once: it waits for the waiter
    order.append("releaser")
    again.release()
    thread.join()
    assert order == ["waiter", "releaser"]
    assert limiter.in_flight == 0 and limiter.waiting == 0


def test_waiters_get_concurrency_permits_in_the_order_they_asked() -> None:
    limiter = ConcurrencyLimiter(1)
    held = limiter.acquire()
    order: list[int] = []

    def waiter(number: int) -> None:
        with limiter:
            order.append(number)

    threads = []
    for number in range(5):
        threads.append(threading.Thread(target=waiter, args=(number,)))
        threads[-1].start()
        _until(lambda n=number: limiter.waiting == n + 1)
    held.release()
    for thread in threads:
        thread.join()
    assert order == [0, 1, 2, 3, 4]


def test_a_waiter_that_gives_up_on_a_stop_request_leaves_the_permit_to_the_next() -> None:
    limiter = ConcurrencyLimiter(1)
    held = limiter.acquire()
    outcome: dict[str, object] = {}

    def stopped_waiter() -> None:
        try:
            limiter.acquire()
        except stopping.Stopped as exc:
            outcome["stopped"] = exc

    thread = threading.Thread(target=stopped_waiter)
    thread.start()
    _until(lambda: limiter.waiting == 1)
    stopping.request()
    thread.join(timeout=5)
    stopping.reset()
    assert isinstance(outcome.get("stopped"), stopping.Stopped)
    assert limiter.waiting == 0
    held.release()
    with limiter:  # the permit is free again, not lost with the waiter that left
        assert limiter.in_flight == 1
    assert limiter.in_flight == 0


def test_releasing_a_concurrency_permit_that_was_never_granted_is_an_error() -> None:
    with pytest.raises(ValueError, match="released more permits"):
        ConcurrencyLimiter(2).__exit__(None, None, None)


class Recording:
    def __init__(self, name: str, log: list[str], fail: bool = False) -> None:
        self.name, self.log, self.fail = name, log, fail

    def acquire(self) -> Permit:
        if self.fail:
            raise RuntimeError("cannot acquire")
        self.log.append(f"acquire {self.name}")
        return Permit(lambda: self.log.append(f"release {self.name}"))

    def observe(self, response: httpx.Response) -> None:
        self.log.append(f"observe {self.name}")


def test_a_composite_acquires_in_order_releases_in_reverse_and_forwards_observations() -> None:
    log: list[str] = []
    limiter = CompositeLimiter(Recording("connections", log), Recording("window", log))
    with limiter.acquire():
        limiter.observe(httpx.Response(200))
    assert log == [
        "acquire connections", "acquire window", "observe connections", "observe window",
        "release window", "release connections",
    ]  # fmt: skip


def test_a_composite_that_fails_half_way_gives_back_what_it_took() -> None:
    log: list[str] = []
    limiter = CompositeLimiter(Recording("a", log), Recording("b", log, fail=True))
    with pytest.raises(RuntimeError):
        limiter.acquire()
    assert log == ["acquire a", "release a"]


def test_releasing_a_permit_twice_is_harmless() -> None:
    calls: list[int] = []
    permit = Permit(lambda: calls.append(1))
    permit.release()
    permit.release()
    assert calls == [1]


def test_unlimited_never_waits() -> None:
    with UNLIMITED.acquire():
        UNLIMITED.observe(httpx.Response(429))


def test_connectors_of_one_account_in_one_process_share_its_limiter():
    from leadsync.connectors.ratelimit import shared_limiter

    made = []

    def factory():
        made.append(RollingWindowLimiter(5, 1.0))
        return made[-1]

    first = shared_limiter(("ac", "http://x", "source-a", 5.0), factory)
    again = shared_limiter(("ac", "http://x", "source-a", 5.0), factory)
    other = shared_limiter(("ac", "http://x", "source-b", 5.0), factory)
    assert first is again and first is not other and len(made) == 2
