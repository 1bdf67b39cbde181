"""Thread pools whose tasks run in the context of the code that submitted them.

A new thread starts with an empty ``contextvars`` context, so work handed to a plain
``ThreadPoolExecutor`` loses what its caller had set: here, the request tally of the stream being
pulled (``connectors.retry.counting``), which the pipeline reads as that stream's request count.
Every pool a connector sends pull requests from is a ``ContextPool``.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import ParamSpec, TypeVar

__all__ = ["ContextPool"]

P = ParamSpec("P")
T = TypeVar("T")


class ContextPool(ThreadPoolExecutor):
    """A ``ThreadPoolExecutor`` whose every task (``submit`` and ``map``) runs in a copy of the
    submitter's context."""

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        context = contextvars.copy_context()
        return super().submit(context.run, fn, *args, **kwargs)  # type: ignore[arg-type]
