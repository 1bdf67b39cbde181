"""Read one page ahead: a connector's next request overlaps the ingest of the page before it.

A pull alternates between waiting on the platform (latency, the rate limiter) and writing the page to
the store; on one thread the two add up. ``read_ahead`` runs the connector's iterator on a worker
thread and hands its items over in order through a bounded queue, so at most ``depth`` pages wait in
memory. The consumer still ingests page by page, each with its cursor, so crash safety is unchanged:
a page read ahead but not ingested is simply read again on the next run.
"""

from __future__ import annotations

import contextvars
import queue
import threading
from collections.abc import Iterable, Iterator
from typing import TypeVar

from leadsync.connectors.gcpause import collector_paused

__all__ = ["read_ahead"]

T = TypeVar("T")

_DONE = object()
# How long closing waits for the worker to finish the request it is in (it then sees the stop and
# ends); a worker still busy after that is left to finish on its own (it is a daemon thread).
CLOSE_WAIT_S = 5.0


class _Failure:
    def __init__(self, error: BaseException) -> None:
        self.error = error


def read_ahead(items: Iterable[T], *, depth: int = 1, name: str = "read-ahead") -> Iterator[T]:
    """Yield ``items`` in order while a worker thread produces up to ``depth`` of them ahead.

    An exception raised by ``items`` is raised here at its place in the order. Closing the iterator
    (a ``break`` in the consumer's loop, or an exception there) stops the worker after its current
    item and closes ``items`` on the worker's thread.
    """
    handoff: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def offer(item: object) -> bool:
        while not stop.is_set():
            try:
                handoff.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        source = iter(items)
        try:
            while True:
                with collector_paused():  # one page's requests, parsing and normalising (gcpause)
                    item = next(source, _DONE)
                if item is _DONE:
                    break
                if not offer(item):
                    return
            offer(_DONE)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, raised there
            offer(_Failure(exc))
        finally:
            close = getattr(source, "close", None)
            if close is not None:
                close()

    # in the consumer's context: the request tally of the stream it pulls (connectors.pools says why)
    context = contextvars.copy_context()
    worker = threading.Thread(target=context.run, args=(produce,), name=name, daemon=True)
    worker.start()
    try:
        while True:
            item = handoff.get()
            if item is _DONE:
                return
            if isinstance(item, _Failure):
                raise item.error
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        worker.join(CLOSE_WAIT_S)
