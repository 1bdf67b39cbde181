"""The process's one stop request, and the waits that give way to it.

SIGTERM or SIGINT (``sync.shutdown``) calls :func:`request`. From then on every wait in leadsync
ends at once and raises :class:`Stopped`: the rate limiters' waits (``connectors.ratelimit``), the
retry back-off (``connectors.retry`` passes :func:`sleep` to tenacity), import polling; and no new
request is sent (``RetryPolicy`` calls :func:`check` before each attempt). So a loop that makes one
request per contact (the ActiveCampaign tracking-log sweep) or per batch (a push) stops between two
requests, not at the end of its page or its chunk.

``Stopped`` derives from ``BaseException``, like ``asyncio.CancelledError`` and for the same reason:
the ``except Exception`` blocks that turn a platform's failure into a per-record error or a retry
must not turn a stop into one. The pipeline catches it where a step ends (``sync.pipeline``): the
page being read is dropped and read again next run, every committed page and cursor stays.

One event per process, not one per call: the signal reaches every thread (pulls run side by side,
pushes send batches from pools) without threading a token through every connector. A process that
runs several jobs one after the other (tests) calls :func:`reset` between them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import partial

__all__ = ["Stopped", "check", "event", "request", "requested", "reset", "sleep", "sleeper"]

_STOP = threading.Event()


class Stopped(BaseException):  # noqa: N818 - a request, not an error (cf. asyncio.CancelledError)
    """A stop was requested (SIGTERM/SIGINT): end the current step; what is committed stays."""

    def __init__(self, message: str = "stopped") -> None:
        super().__init__(message)


def event() -> threading.Event:
    """The process's stop event (``pull_source(stop=...)`` and the daemon wait on it)."""
    return _STOP


def request() -> None:
    """Ask every loop and wait of this process to stop."""
    _STOP.set()


def requested() -> bool:
    return _STOP.is_set()


def reset() -> None:
    """Forget a stop request (a new job in the same process, a test)."""
    _STOP.clear()


def check(where: str = "before a request") -> None:
    """Raise :class:`Stopped` if a stop was requested: call it before starting a request.
    ``where`` says what was stopped, for the log ("in the rate limiter's wait")."""
    if _STOP.is_set():
        raise Stopped(f"stopped {where}")


def sleep(seconds: float, *, where: str = "in a wait") -> None:
    """``time.sleep`` that a stop request ends at once, raising :class:`Stopped`."""
    if _STOP.wait(max(seconds, 0.0)):
        raise Stopped(f"stopped {where}")


def sleeper(where: str) -> Callable[[float], None]:
    """:func:`sleep` saying ``where`` when stopped (a limiter's or a retry policy's ``sleep``)."""
    return partial(sleep, where=where)
