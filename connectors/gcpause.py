"""Python's cyclic garbage collector paused over work that builds many objects and no cycles.

A full re-score builds millions of short-lived containers (rows, dicts, lists) that reference
counting frees. The collector would still walk them, again and again while they pile up: in a
100,000-person re-score that was about a fifth of the time (issue #9). Cycles made meanwhile are
collected once the last paused block ends.

Paused blocks nest and may overlap across threads: the collector comes back on when the last one
ends, and only if it was on before the first began.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["collector_paused"]

_lock = threading.Lock()
_depth = 0
_was_enabled = False


@contextmanager
def collector_paused() -> Iterator[None]:
    """Use as ``with collector_paused():`` or as a decorator."""
    global _depth, _was_enabled
    with _lock:
        if _depth == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _was_enabled:
                gc.enable()
