"""The streams of one pull that have ended, for a stream that links its records with another's.

A pull reads a source's streams side by side (``sync.pipeline``). A stream that *links* its records
with what another stream of the same pull reads (``connectors.catalog.StreamInfo.links``: HubSpot's
email events take their contact ids from the contacts stream) starts at once and reads its pages
meanwhile, then links them once that stream has ended (:meth:`StreamGates.wait`): its requests
overlap the other stream's instead of following them.

The pipeline binds one :class:`StreamGates` per pull (:func:`bound`) in each stream's thread, where
the connector reads it (:func:`current`; the read-ahead thread runs in a copy of that context). A
connector used on its own, outside a pull, sees gates with nothing to wait for.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from leadsync.connectors import stopping

__all__ = ["StreamGates", "bound", "current"]


class StreamGates:
    """One event per stream of the pull, set when that stream has ended (read to its end, failed or
    stopped). A stream not in the pull counts as ended: there is nothing to wait for."""

    def __init__(self, streams: Iterable[str] = ()) -> None:
        self._ended = {name: threading.Event() for name in streams}

    def end(self, stream: str) -> None:
        event = self._ended.get(stream)
        if event is not None:
            event.set()

    def end_all(self) -> None:
        for event in self._ended.values():
            event.set()

    def has_ended(self, stream: str) -> bool:
        event = self._ended.get(stream)
        return event is None or event.is_set()

    def wait(self, stream: str) -> None:
        """Until ``stream`` has ended; a stop request (``connectors.stopping``) ends the wait."""
        event = self._ended.get(stream)
        while event is not None and not event.wait(0.05):
            stopping.check(f"waiting for the {stream} stream")


_NONE = StreamGates()
_CURRENT: ContextVar[StreamGates] = ContextVar("leadsync_stream_gates", default=_NONE)


@contextmanager
def bound(gates: StreamGates) -> Iterator[StreamGates]:
    """``gates`` as :func:`current` in this context (a stream's thread during a pull)."""
    token = _CURRENT.set(gates)
    try:
        yield gates
    finally:
        _CURRENT.reset(token)


def current() -> StreamGates:
    """The gates of the pull this code runs in; outside a pull, none to wait for."""
    return _CURRENT.get()
