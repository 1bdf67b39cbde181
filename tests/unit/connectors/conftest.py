"""Shared helpers for the connector-core unit tests: a fake clock and scripted transports."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import httpx
import pytest

from leadsync.connectors.http import build_client


class FakeClock:
    """A monotonic clock that only moves when something sleeps on it (or a test advances it)."""

    def __init__(self, start: float = 1_000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def advance(self, seconds: float) -> None:
        self.now += seconds


Step = httpx.Response | BaseException | Callable[[httpx.Request], httpx.Response]


class Script:
    """A strict transport handler: answers requests with the given steps, in order.

    A step is a response, an exception to raise, or a function of the request. Running out of
    steps is a test failure ("Unexpected request"), as in githubkit's mock transport.
    """

    def __init__(self, steps: Iterable[Step]) -> None:
        self.steps = list(steps)
        self.requests: list[httpx.Request] = []
        self.headers: list[dict[str, str]] = []  # as sent: an auth flow may resend the same object

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        self.headers.append(dict(request.headers))
        if not self.steps:
            raise AssertionError(f"Unexpected request: {request.method} {request.url}")
        step = self.steps.pop(0)
        if isinstance(step, BaseException):
            raise step
        if callable(step):
            return step(request)
        return step


def make_client(
    handler: Callable[[httpx.Request], httpx.Response], *, auth: Any = None, **kwargs: Any
) -> httpx.Client:
    return build_client(
        base_url="https://api.example.test",
        auth=auth,
        timeout=5.0,
        max_connections=kwargs.pop("max_connections", 4),
        transport=httpx.MockTransport(handler),
        **kwargs,
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()
