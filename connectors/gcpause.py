"""Python's cyclic garbage collector paused over work that builds many objects and no cycles.

A full re-score builds millions of short-lived containers (rows, dicts, lists) that reference
counting frees. The collector would still walk them, again and again while they pile up: in a
100,000-person re-score that was about a fifth of the time (issue #9). Cycles made meanwhile are
collected once the last paused block ends.

Paused blocks nest and may overlap across threads: the collector comes back on when the last one
ends, and only if it was on before the first began. A long paused stretch (a pull that pages for
an hour) calls ``collect_when_due`` as it goes: the young generations are collected at most every
``COLLECT_EVERY_S``, so the cycles it makes meanwhile do not pile up.
"""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["COLLECT_EVERY_S", "collect_when_due", "collector_paused"]

#: While paused, the young generations are collected at most this often (``collect_when_due``).
COLLECT_EVERY_S = 10.0

_lock = threading.Lock()
_depth = 0
_was_enabled = False
_clock = time.monotonic  # the tests' fake clock replaces this, not the time module's
_collected_at = _clock()


@contextmanager
def collector_paused() -> Iterator[None]:
    """Use as ``with collector_paused():`` or as a decorator."""
    global _depth, _was_enabled, _collected_at
    with _lock:
        if _depth == 0:
            _was_enabled = gc.isenabled()
            _collected_at = _clock()
            gc.disable()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _was_enabled:
                gc.enable()


def collect_when_due() -> bool:
    """In a paused stretch (the collector was on before it): collect the two young generations if
    ``COLLECT_EVERY_S`` passed since the last such collection, or since the stretch began. Returns
    whether it collected."""
    global _collected_at
    with _lock:
        now = _clock()
        if _depth == 0 or not _was_enabled or now - _collected_at < COLLECT_EVERY_S:
            return False
        _collected_at = now
    gc.collect(1)
    return True
