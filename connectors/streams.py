"""Endpoints as data, and the one page loop every connector uses (style.md, habits 2 and 3).

A platform module declares each endpoint as a :class:`StreamSpec` row and reads it with
:func:`iter_pages` (or :func:`iter_records`). The loop builds each request from the spec and the
paginator, acquires the limiter, sends through the retry policy, extracts the records and hands
the page over together with the paginator's resume position, so the caller can commit that
position in the same transaction as the page's rows (DESIGN.md, "Sync state").

:func:`iter_offset_pages_concurrently` is the same loop for offset-paged endpoints whose total is
known after the first page: the remaining pages are fetched by a pool of threads and still
yielded in order (Mailchimp allows 10 simultaneous connections, mailchimp.md §9, and a single
thread cannot get near that ceiling).
"""

from __future__ import annotations

import copy
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx

from leadsync.connectors._jsonpath import MISSING, get_path
from leadsync.connectors.errors import FatalError
from leadsync.connectors.pagination import OffsetPaginator, PageRequest, Paginator
from leadsync.connectors.pools import ContextPool
from leadsync.connectors.ratelimit import Limiter
from leadsync.connectors.retry import Reply, RetryPolicy

__all__ = ["Page", "StreamSpec", "iter_offset_pages_concurrently", "iter_pages", "iter_records"]


@dataclass(frozen=True, slots=True)
class StreamSpec:
    """One endpoint, declared.

    ``path`` may hold ``{placeholders}`` filled from ``path_params`` (URL-quoted).
    ``records_path`` is a dotted path to the list of records in the body (``"results"``,
    ``"members"``, ``"contacts"``; ``""`` when the body is the list).
    ``paginator_factory`` is called as ``paginator_factory(page_size=page_size)`` when
    ``page_size`` is set, else with no arguments: a ``functools.partial`` of a paginator class
    with its platform settings, so the page size is written once, here.
    ``params`` and ``body`` are the fixed query parameters and JSON body; callers add their own
    per run (an ``updated_after`` bound, a list id).
    ``cursor_field`` is the record field an incremental sync advances on and ``primary_key`` the
    field(s) that identify a record; the loop does not use them, the sync engine does.
    """

    name: str
    path: str
    records_path: str
    paginator_factory: Callable[..., Paginator]
    method: str = "GET"
    params: Mapping[str, Any] = field(default_factory=dict)
    body: Mapping[str, Any] | None = None
    page_size: int | None = None
    cursor_field: str | None = None
    primary_key: str | tuple[str, ...] = "id"

    def new_paginator(self) -> Paginator:
        """A fresh paginator for one run (meltano ``get_new_paginator``)."""
        if self.page_size is None:
            return self.paginator_factory()
        return self.paginator_factory(page_size=self.page_size)

    def format_path(self, path_params: Mapping[str, Any] | None = None) -> str:
        if not path_params:
            return self.path
        return self.path.format(**{key: quote(str(value), safe="") for key, value in path_params.items()})

    def first_request(
        self,
        *,
        params: Mapping[str, Any] | None = None,
        body: Mapping[str, Any] | None = None,
        path_params: Mapping[str, Any] | None = None,
    ) -> PageRequest:
        json_body: dict[str, Any] | None = None
        if self.body is not None or body is not None:
            json_body = {**copy.deepcopy(dict(self.body or {})), **copy.deepcopy(dict(body or {}))}
        return PageRequest(
            method=self.method,
            path=self.format_path(path_params),
            params={**self.params, **(params or {})},
            json=json_body,
        )

    def extract(self, body: Any) -> list[Any]:
        """The records of one page. A missing records path is an error, never an empty page."""
        records = get_path(body, self.records_path, MISSING)
        if records is MISSING:
            raise FatalError(f"stream {self.name!r}: the response has no {self.records_path!r}")
        if records is None:
            return []
        if not isinstance(records, list):
            raise FatalError(
                f"stream {self.name!r}: expected a list at {self.records_path!r}, got {type(records).__name__}"
            )
        return records


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a stream.

    ``state`` is where the *next* page starts (the paginator's ``state()``), ``None`` on the
    last page: commit it with this page's rows, and pass it back as ``resume_from`` to continue.
    ``remaining`` is how many records the platform says are left after this page (HubSpot search
    ``total``, Mailchimp ``total_items``, ActiveCampaign ``meta.total``), None when it does not say.
    """

    stream: str
    number: int
    records: list[Any]
    body: Any
    state: dict[str, Any] | None
    response: httpx.Response = field(repr=False)
    remaining: int | None = None

    @property
    def is_last(self) -> bool:
        return self.state is None


def iter_pages(
    client: httpx.Client,
    spec: StreamSpec,
    *,
    retry_policy: RetryPolicy,
    limiter: Limiter | None = None,
    params: Mapping[str, Any] | None = None,
    body: Mapping[str, Any] | None = None,
    path_params: Mapping[str, Any] | None = None,
    resume_from: Mapping[str, Any] | None = None,
    paginator: Paginator | None = None,
    max_pages: int | None = None,
) -> Iterator[Page]:
    """Every page of ``spec``, in order: limiter before each request, retry policy around it.

    ``paginator`` overrides ``spec.new_paginator()`` (to keep a handle on it, e.g. to read
    ``total`` or ``restarts``); it must be fresh. ``max_pages`` stops early (a ``check`` probe).
    """
    paginator = paginator if paginator is not None else spec.new_paginator()
    if resume_from:
        paginator.restore(resume_from)
    request = spec.first_request(params=params, body=body, path_params=path_params)
    yield from _page_loop(client, spec, paginator, request, retry_policy, limiter, max_pages)


def _page_loop(
    client: httpx.Client,
    spec: StreamSpec,
    paginator: Paginator,
    request: PageRequest,
    retry_policy: RetryPolicy,
    limiter: Limiter | None,
    max_pages: int | None = None,
) -> Iterator[Page]:
    """The loop itself. Nothing is sent for page n+1 until the caller asks for it."""
    paginator.init_request(request)
    number = 0
    while True:
        reply = retry_policy.send(client, request.build(client), limiter=limiter)
        records = spec.extract(reply.body)
        paginator.update_state(reply.response, reply.body, records)
        number += 1
        remaining = paginator.remaining(reply.body, records)
        yield Page(spec.name, number, records, reply.body, paginator.state(), reply.response, remaining)
        if not paginator.has_next_page or (max_pages is not None and number >= max_pages):
            return
        paginator.update_request(request)


def iter_records(
    client: httpx.Client,
    spec: StreamSpec,
    *,
    retry_policy: RetryPolicy,
    limiter: Limiter | None = None,
    **kwargs: Any,
) -> Iterator[Any]:
    """The records of every page of ``spec`` (same arguments as :func:`iter_pages`)."""
    for page in iter_pages(client, spec, retry_policy=retry_policy, limiter=limiter, **kwargs):
        yield from page.records


def iter_offset_pages_concurrently(
    client: httpx.Client,
    spec: StreamSpec,
    *,
    retry_policy: RetryPolicy,
    limiter: Limiter | None = None,
    concurrency: int,
    params: Mapping[str, Any] | None = None,
    body: Mapping[str, Any] | None = None,
    path_params: Mapping[str, Any] | None = None,
    resume_from: Mapping[str, Any] | None = None,
    prefetch: int | None = None,
) -> Iterator[Page]:
    """Like :func:`iter_pages` for an :class:`OffsetPaginator` stream with a total, but parallel.

    The first page is fetched alone to learn the total; then up to ``concurrency`` pages are in
    flight at once (and at most ``prefetch``, default ``2 * concurrency``, held waiting), always
    yielded in offset order with a resume ``state``, so committing page by page stays correct.
    The total is re-read from every page, so records added during the run are still fetched.
    The limiter still gates every request: give it the platform's concurrency cap. If a page
    fails for good its error is raised when its turn comes; the pages before it were yielded.
    Without a total in the first page, this falls back to sequential paging.
    """
    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, got {concurrency}")
    paginator = spec.new_paginator()
    if not isinstance(paginator, OffsetPaginator):
        raise TypeError(f"stream {spec.name!r} does not page by offset ({type(paginator).__name__})")
    if resume_from:
        paginator.restore(resume_from)
    template = spec.first_request(params=params, body=body, path_params=path_params)
    sequential = _page_loop(client, spec, paginator, copy.deepcopy(template), retry_policy, limiter)
    first = next(sequential)
    yield first
    if first.is_last:
        return
    if paginator.total is None or concurrency == 1:
        yield from sequential
        return
    sequential.close()

    stride = paginator.page_size
    assert stride is not None
    total = paginator.total
    next_offset = paginator.offset
    window = max(prefetch or 2 * concurrency, concurrency)
    number = first.number

    def fetch(offset: int) -> tuple[Reply, list[Any]]:
        request = copy.deepcopy(template)
        paginator.apply_offset(request, offset)
        reply = retry_policy.send(client, request.build(client), limiter=limiter)
        return reply, spec.extract(reply.body)

    pending: deque[tuple[int, Future[tuple[Reply, list[Any]]]]] = deque()
    executor = ContextPool(max_workers=concurrency, thread_name_prefix=f"pages-{spec.name}")
    try:
        while True:
            while len(pending) < window and next_offset < total:
                pending.append((next_offset, executor.submit(fetch, next_offset)))
                next_offset += stride
            if not pending:
                return
            offset, future = pending.popleft()
            reply, records = future.result()
            if paginator.total_path is not None:
                total = _total_of(reply.body, paginator.total_path, total)
            end = offset + stride
            more = end < total
            number += 1
            state = {paginator.offset_param: end} if more else None
            yield Page(spec.name, number, records, reply.body, state, reply.response, max(total - end, 0))
            if not more:
                return
    finally:
        executor.shutdown(wait=True, cancel_futures=True)


def _total_of(body: Any, path: str, fallback: int) -> int:
    value = get_path(body, path)
    try:
        return int(value) if value not in (None, "") else fallback
    except (TypeError, ValueError):
        return fallback
