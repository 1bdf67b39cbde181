"""A stop request ends every wait of the connector core at once: the rate limiters, the retry
back-off, and no request starts after it (``connectors.stopping``). Real clocks and threads: the
point is how soon a blocked thread gives way."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from leadsync.connectors import stopping
from leadsync.connectors.ratelimit import ConcurrencyLimiter, RollingWindowLimiter
from leadsync.connectors.retry import RetryPolicy

from .conftest import make_client

PROMPT_S = 1.0  # a stopped wait must end well within this (it polls every 0.1 s at most)


def stopped_within(
    block: Callable[[], Any], *, stop_after: float = 0.2
) -> tuple[float, BaseException | None]:
    """Run ``block`` on a thread, request a stop after ``stop_after`` s; return how long the thread
    took to end after the request, and what it raised."""
    raised: list[BaseException | None] = [None]

    def run() -> None:
        try:
            block()
        except BaseException as exc:  # noqa: BLE001 - inspected by the test
            raised[0] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    time.sleep(stop_after)
    assert thread.is_alive(), "the block ended before the stop: it never waited"
    requested = time.monotonic()
    stopping.request()
    thread.join(10)
    assert not thread.is_alive(), "the wait did not end after the stop request"
    return time.monotonic() - requested, raised[0]


def test_a_full_rolling_window_gives_way_to_a_stop_request() -> None:
    limiter = RollingWindowLimiter(2, 30.0)
    limiter.acquire().release()
    limiter.acquire().release()  # the window is full for 30 s
    took, raised = stopped_within(limiter.acquire)
    assert isinstance(raised, stopping.Stopped)
    assert "rate limiter" in str(raised)
    assert took < PROMPT_S


def test_a_wait_for_an_in_flight_slot_gives_way_to_a_stop_request() -> None:
    window = RollingWindowLimiter(1, 30.0)
    window.acquire()  # held, never completes: the next waits for a completion
    took, raised = stopped_within(window.acquire)
    assert isinstance(raised, stopping.Stopped) and took < PROMPT_S

    connections = ConcurrencyLimiter(1)
    connections.acquire()
    stopping.reset()
    took, raised = stopped_within(connections.acquire)
    assert isinstance(raised, stopping.Stopped) and took < PROMPT_S


def test_a_retry_back_off_gives_way_to_a_stop_request_and_nothing_more_is_sent() -> None:
    sent: list[httpx.Request] = []

    def unavailable(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(503, headers={"Retry-After": "30"}, json={"message": "down"})

    client = make_client(unavailable)
    policy = RetryPolicy(source="hubspot", max_attempts=5)  # the real sleep: stopping's
    took, raised = stopped_within(
        lambda: policy.send(client, client.build_request("GET", "/crm/v3/objects/contacts"))
    )
    assert isinstance(raised, stopping.Stopped), raised
    assert "retry back-off" in str(raised)
    assert took < PROMPT_S
    assert len(sent) == 1  # the back-off was cut short; no second attempt


def test_no_request_starts_once_a_stop_was_requested() -> None:
    sent: list[httpx.Request] = []
    client = make_client(lambda request: sent.append(request) or httpx.Response(200, json={}))
    stopping.request()
    with pytest.raises(stopping.Stopped):
        RetryPolicy(source="mailchimp").send(client, client.build_request("GET", "/lists"))
    assert sent == []


def test_a_stop_is_not_an_error_that_except_exception_turns_into_a_failure() -> None:
    # Per-record error handling (``except Exception``) must let a stop through, as it does
    # asyncio.CancelledError.
    with pytest.raises(stopping.Stopped):
        try:
            stopping.request()
            stopping.check()
        except Exception:  # noqa: BLE001 - the point of the test
            pytest.fail("a stop request was caught as an error")
