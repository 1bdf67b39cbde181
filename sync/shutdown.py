"""SIGTERM and SIGINT: stop promptly and cleanly, and never take more than a few seconds.

The first signal asks the whole process to stop (``connectors.stopping``): every wait ends at once
(rate limiter, retry back-off, import polling), no new request is sent, a pull drops the page it is
reading (its cursor stays at the last committed page), a push records the batches it finished, a
re-score stops between two batches. That usually takes one request's round trip.

A request already in flight is not waited for without limit: ``GRACE_S`` after the first signal the
process exits anyway (``os._exit``, with the same status as a clean stop). What was committed
stays committed; the page or batch whose answer never came is read or sent again by the next run
(a push batch in flight keeps its ``PENDING`` mark, ``sync.writeback``). A second signal exits at
once, with ``128 + signal``.

Once stopped, the process ends with ``os._exit`` as soon as its work is committed and its output
flushed (``SignalStop.exit_process``): the interpreter's own teardown (a thousand modules: the
platform SDKs, numpy) took 1.8 to 5 s on a busy two-core machine, as long as the stop itself may.
Nothing is lost by skipping it: every write is committed, logs and output are flushed, and a SQLite
store's write-ahead log is checkpointed by the next connection as it would be by this one.

Exit status: the daemon exits 0 when stopped (a service asked to stop has done what it should);
the one-off commands (``pull``, ``score``, ``push``, ``sync``) exit 128 + the signal's number,
as a shell reports a command killed by it: 130 for SIGINT (Ctrl-C), 143 for SIGTERM.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType, TracebackType
from typing import Any

from leadsync.connectors import stopping

__all__ = ["GRACE_S", "SIGNALS", "SignalStop", "signal_exit_code"]

log = logging.getLogger("leadsync.shutdown")

SIGNALS = (signal.SIGTERM, signal.SIGINT)
# From the first signal to the exit, at most: under the 5 s a supervisor is promised (the systemd
# unit's TimeoutStopSec is larger still), with room for the interpreter's own exit.
GRACE_S = 4.0


def signal_exit_code(signum: int) -> int:
    """What a shell reports for a command ended by ``signum``: 130 for SIGINT, 143 for SIGTERM."""
    return 128 + signum


class SignalStop:
    """Handle SIGTERM and SIGINT while a ``with`` block runs (the main thread only).

    ``clean_exit(signum)`` is the status the process ends with if the grace period runs out (the
    same as the caller's clean stop); ``on_stop(signum)`` is called on the first signal, after the
    process-wide stop was requested. ``exit`` is ``os._exit``, injectable for tests.
    """

    def __init__(
        self,
        *,
        clean_exit: Callable[[int], int] = signal_exit_code,
        on_stop: Callable[[int], None] | None = None,
        grace_s: float = GRACE_S,
        exit: Callable[[int], Any] = os._exit,  # noqa: A002 - the function it stands for
    ) -> None:
        self.clean_exit = clean_exit
        self.on_stop = on_stop
        self.grace_s = grace_s
        self._exit = exit
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}
        self._timer: threading.Timer | None = None

    @property
    def received(self) -> bool:
        return self.signum is not None

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum is not None else ""

    @property
    def exit_code(self) -> int:
        return signal_exit_code(self.signum) if self.signum is not None else 0

    def handle(self, signum: int, _frame: FrameType | None = None) -> None:
        if self.signum is not None:
            log.warning("second %s: exiting now", signal.Signals(signum).name)
            _flush()
            self._exit(signal_exit_code(signum))
            return
        self.signum = signum
        stopping.request()
        log.warning(
            "%s: stopping; what is done is committed (exit within %.0f s; a second signal exits now)",
            self.name,
            self.grace_s,
        )
        if self.on_stop is not None:
            self.on_stop(signum)
        self._timer = threading.Timer(self.grace_s, self._expired)
        self._timer.daemon = True
        self._timer.start()

    def exit_process(self, status: int) -> None:
        """End the process now, after a stop: output flushed, the interpreter's teardown skipped."""
        logging.shutdown()
        _flush()
        self._exit(status)

    def _expired(self) -> None:
        assert self.signum is not None
        log.error(
            "still busy %.1f s after %s (a request in flight): exiting without it; "
            "the next run sends or reads it again",
            self.grace_s,
            self.name,
        )
        _flush()
        self._exit(self.clean_exit(self.signum))

    def __enter__(self) -> SignalStop:
        if threading.current_thread() is threading.main_thread():
            for signum in SIGNALS:
                self._previous[signum] = signal.signal(signum, self.handle)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        # Once stopping, the handlers and the timer stay: the grace period bounds the whole exit,
        # and a second signal still exits at once, whatever runs after this block.
        if self.signum is None:
            for signum, previous in self._previous.items():
                signal.signal(signum, previous)
        self._previous.clear()

    def cancel(self) -> None:
        """Disarm the grace timer (a test that goes on in the same process)."""
        if self._timer is not None:
            self._timer.cancel()


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # closed or broken pipe: nothing more to say
            pass
