"""Read one page ahead: a connector's next request overlaps the ingest of the page before it.

A pull alternates between waiting on the platform (latency, the rate limiter) and writing the page to
the store; on one thread the two add up. ``read_ahead`` runs the connector's iterator on a worker
thread and hands its items over in order through a bounded queue, so at most ``depth`` pages wait in
memory. The consumer still ingests page by page, each with its cursor, so crash safety is unchanged:
a page read ahead but not ingested is simply read again on the next run.

``merge_ahead`` does the same for several iterators at once, one worker each, handing their items
over as they come (a stream read in time slices side by side).
"""

from __future__ import annotations

import contextvars
import queue
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import TypeVar

from leadsync.connectors.gcpause import collector_paused

__all__ = ["MergedReader", "merge_ahead", "read_ahead"]

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
    with merge_ahead([items], depth=depth, name=name) as merged:
        for _, item in merged:
            yield item


def merge_ahead(
    sources: Sequence[Iterable[T]], *, depth: int = 1, name: str = "read-ahead"
) -> MergedReader[T]:
    """``(index, item)`` from every source, each produced by a worker thread of its own, in the
    order they are produced: each source's items keep their order, the sources interleave. At
    most ``depth`` items wait in all (a worker whose item does not fit waits). The workers start
    at once, before the first item is asked for.

    An exception raised by a source is raised where it comes. ``close()`` (or leaving a ``with``
    block) stops every worker after its current item and closes each source on its worker's thread.
    """
    return MergedReader(sources, depth=depth, name=name)


class MergedReader(Iterator[tuple[int, T]]):
    """The iterator ``merge_ahead`` returns (a class, not a generator: its workers run from the
    start, and ``close`` stops them even if nothing was read)."""

    def __init__(self, sources: Sequence[Iterable[T]], *, depth: int, name: str) -> None:
        self._handoff: queue.Queue[tuple[int, object]] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        # each worker in a copy of the starting thread's context (a context runs on one thread at a
        # time): the request tally of the stream it pulls (connectors.pools says why)
        self._workers = [
            threading.Thread(
                target=contextvars.copy_context().run,
                args=(self._produce, index, items),
                name=name if len(sources) == 1 else f"{name}-{index}",
                daemon=True,
            )
            for index, items in enumerate(sources)
        ]
        self._running = len(self._workers)
        for worker in self._workers:
            worker.start()

    def _offer(self, entry: tuple[int, object]) -> bool:
        while not self._stop.is_set():
            try:
                self._handoff.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _produce(self, index: int, items: Iterable[T]) -> None:
        source = iter(items)
        try:
            while True:
                with collector_paused():  # one page's requests, parsing and normalising (gcpause)
                    item = next(source, _DONE)
                if item is _DONE:
                    break
                if not self._offer((index, item)):
                    return
            self._offer((index, _DONE))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, raised there
            self._offer((index, _Failure(exc)))
        finally:
            close = getattr(source, "close", None)
            if close is not None:
                close()

    def __next__(self) -> tuple[int, T]:
        while self._running:
            index, item = self._handoff.get()
            if item is _DONE:
                self._running -= 1
                continue
            if isinstance(item, _Failure):
                self.close()
                raise item.error
            return index, item  # type: ignore[return-value]
        self.close()
        raise StopIteration

    def close(self) -> None:
        self._running = 0
        self._stop.set()
        deadline = time.monotonic() + CLOSE_WAIT_S
        for worker in self._workers:
            if worker is not threading.current_thread():
                worker.join(max(0.0, deadline - time.monotonic()))

    def __enter__(self) -> MergedReader[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
