"""Thread pools whose tasks run in the context of the code that submitted them.

A new thread starts with an empty ``contextvars`` context, so work handed to a plain
``ThreadPoolExecutor`` loses what its caller had set: here, the request tally of the stream being
pulled (``connectors.retry.counting``), which the pipeline reads as that stream's request count.
Every pool a connector sends pull requests from is a ``ContextPool``, or a ``PriorityPool``, whose
queued tasks run most urgent first.
"""

from __future__ import annotations

import contextvars
import heapq
import itertools
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, ParamSpec, Protocol, TypeVar

__all__ = ["ContextPool", "PriorityPool", "Submitter"]

P = ParamSpec("P")
T = TypeVar("T")


class Submitter(Protocol):
    """Anything tasks are submitted to: an executor, or a ``PriorityPool`` at one priority."""

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]: ...


class ContextPool(ThreadPoolExecutor):
    """A ``ThreadPoolExecutor`` whose every task (``submit`` and ``map``) runs in a copy of the
    submitter's context."""

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        context = contextvars.copy_context()
        return super().submit(context.run, fn, *args, **kwargs)  # type: ignore[arg-type]


class PriorityPool:
    """``max_workers`` threads running the queued tasks by priority (the lowest first; in the order
    they were submitted within one priority), each in the context of the code that submitted it.
    ``at(priority).submit(fn, *args)`` queues one task.

    Why: Mailchimp's campaigns are handed over in order, and a campaign's later pages are asked for
    once its first page gave the total. In submission order they queued behind the first pages of
    every campaign after it: the hand-over waited on the oldest campaign while the newer ones were
    read, then many completed at once, and their ingest ran on after the last request (issue 23).
    """

    def __init__(self, max_workers: int, thread_name_prefix: str = "") -> None:
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix=thread_name_prefix)
        self._lock = threading.Lock()
        self._queued: list[tuple[int, int, Future[Any], contextvars.Context, Callable[[], Any]]] = []
        self._order = itertools.count()
        self._shut = False

    def at(self, priority: int) -> _AtPriority:
        return _AtPriority(self, priority)

    def _submit(self, priority: int, call: Callable[[], T]) -> Future[T]:
        future: Future[T] = Future()
        with self._lock:
            if self._shut:
                raise RuntimeError("cannot schedule new futures after shutdown")
            entry = (priority, next(self._order), future, contextvars.copy_context(), call)
            heapq.heappush(self._queued, entry)  # type: ignore[arg-type]
            # under the lock: every queued task has its run queued before a shutdown can begin
            self._pool.submit(self._run_most_urgent)
        return future

    def _run_most_urgent(self) -> None:
        with self._lock:
            if not self._queued:
                return  # cancelled by shutdown
            _, _, future, context, call = heapq.heappop(self._queued)
        if not future.set_running_or_notify_cancel():
            return
        try:
            result = context.run(call)
        except BaseException as exc:  # noqa: BLE001 - handed to whoever waits on the future
            future.set_exception(exc)
        else:
            future.set_result(result)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """As ``ThreadPoolExecutor.shutdown``; ``cancel_futures`` cancels the tasks not started.
        A task submitted once it began is refused (RuntimeError), as the executor does: one queued
        after the cancel would neither run nor be cancelled, and whoever waits on it, wait forever."""
        with self._lock:
            self._shut = True
            queued, self._queued = (self._queued, []) if cancel_futures else ([], self._queued)
        for entry in queued:
            entry[2].cancel()
        self._pool.shutdown(wait=wait, cancel_futures=cancel_futures)


class _AtPriority:
    """Submits tasks to a ``PriorityPool`` at one priority (the pool's ``at``)."""

    def __init__(self, pool: PriorityPool, priority: int) -> None:
        self._pool = pool
        self._priority = priority

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        return self._pool._submit(self._priority, lambda: fn(*args, **kwargs))
