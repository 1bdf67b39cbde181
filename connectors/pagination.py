"""Paginators: how to get from one page to the next, as small objects (style.md, habit 3).

The page loop (``connectors.streams.iter_pages``) is written once and asks a paginator only:

* ``init_request(request)`` - set up the first request (page size, or a restored position);
* ``update_state(response, body, records)`` - read the answer, remember where the next page is;
* ``has_next_page`` - is there one;
* ``update_request(request)`` - point the request at it;
* ``state()`` / ``restore(state)`` - the position of the next page as a small JSON-able dict, so
  a caller can commit it with the rows of the page and resume a run that died half-way.

Make a fresh paginator for every run (``StreamSpec.new_paginator()``). Each one refuses to follow
a token it has already followed (meltano's "Loop detected in pagination") and raises
:class:`connectors.errors.PaginationLoop`.

Leaf classes, one per style the three platforms use:

* :class:`CursorAfterPaginator` - HubSpot CRM lists, ``paging.next.after`` (hubspot.md §2.1).
* :class:`SearchOffsetPaginator` - HubSpot CRM search: ``after`` in the JSON body is a numeric
  offset, 200 a page, and the query stops at 10,000 results (hubspot.md §2.5).
* :class:`HasMoreOffsetPaginator` - HubSpot legacy email events, ``hasMore`` + opaque ``offset``
  (hubspot.md §4.1).
* :class:`OffsetPaginator` - Mailchimp ``offset``/``count``/``total_items`` (mailchimp.md §4.1) and
  ActiveCampaign ``offset``/``limit``/``meta.total``, a string (activecampaign.md §2).
* :class:`KeysetPaginator` - "greater than the last id" paging: ActiveCampaign contacts with
  ``orders[id]=ASC`` + ``id_greater`` (activecampaign.md §2, recommended over offset).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx
import orjson

from leadsync.connectors._jsonpath import get_path
from leadsync.connectors.errors import FatalError, PaginationLoop

__all__ = [
    "CursorAfterPaginator",
    "HasMoreOffsetPaginator",
    "KeysetPaginator",
    "OffsetPaginator",
    "PageRequest",
    "Paginator",
    "SearchOffsetPaginator",
    "SinglePagePaginator",
    "get_path",
]

Location = Literal["query", "body"]


@dataclass
class PageRequest:
    """The mutable description of the next request; the page loop turns it into ``httpx.Request``."""

    method: str
    path: str
    params: dict[str, Any] = field(default_factory=dict)
    json: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def set(self, location: Location, name: str, value: Any) -> None:
        if location == "query":
            self.params[name] = value
        else:
            if self.json is None:
                self.json = {}
            self.json[name] = value

    def unset(self, location: Location, name: str) -> None:
        target = self.params if location == "query" else (self.json or {})
        target.pop(name, None)

    def build(self, client: httpx.Client) -> httpx.Request:
        return client.build_request(
            self.method, self.path, params=self.params or None, json=self.json, headers=self.headers or None
        )


class Paginator(ABC):
    """The protocol every page loop speaks. Subclasses keep their own position."""

    page_size: int | None = None

    def __init__(self) -> None:
        self._followed: set[Any] = set()

    def init_request(self, request: PageRequest) -> None:  # noqa: B027 - optional hook, a no-op by default
        """Prepare the first request: page size and, after ``restore``, the saved position."""

    @abstractmethod
    def update_state(self, response: httpx.Response | None, body: Any, records: Sequence[Any]) -> None:
        """Read one page's answer. ``records`` is what the stream extracted from ``body``."""

    @abstractmethod
    def update_request(self, request: PageRequest) -> None:
        """Point ``request`` at the next page. Only called while ``has_next_page``."""

    @property
    @abstractmethod
    def has_next_page(self) -> bool: ...

    @abstractmethod
    def state(self) -> dict[str, Any] | None:
        """Where the next page starts, or ``None`` when there is no next page."""

    @abstractmethod
    def restore(self, state: Mapping[str, Any]) -> None:
        """Continue from a ``state()`` saved by an earlier run. Call before ``init_request``."""

    def remaining(self, body: Any, records: Sequence[Any]) -> int | None:
        """Records the platform says are left after this page (read after ``update_state``), for
        progress totals; 0 after the last page, None when the platform gives no total."""
        return 0 if not self.has_next_page else None

    def _follow(self, token: Any) -> None:
        """Remember a token we are about to follow; a second time means the platform is looping."""
        if token in self._followed:
            raise PaginationLoop(
                f"Loop detected in pagination: {type(self).__name__} was handed the token {token!r} again"
            )
        self._followed.add(token)


class SinglePagePaginator(Paginator):
    """For endpoints that answer everything at once."""

    def __init__(self, page_size: int | None = None) -> None:
        super().__init__()
        self.page_size = page_size

    def update_state(self, response: httpx.Response | None, body: Any, records: Sequence[Any]) -> None:
        return None

    def update_request(self, request: PageRequest) -> None:  # pragma: no cover - never called
        raise AssertionError("a single page has no next page")

    @property
    def has_next_page(self) -> bool:
        return False

    def state(self) -> dict[str, Any] | None:
        return None

    def restore(self, state: Mapping[str, Any]) -> None:
        return None


class CursorAfterPaginator(Paginator):
    """An opaque cursor read from the body (HubSpot ``paging.next.after``, hubspot.md §2.1).

    The last page carries no ``paging``; a short page that still has a cursor is followed.
    """

    def __init__(
        self,
        page_size: int | None = 100,
        *,
        cursor_path: str = "paging.next.after",
        param: str = "after",
        limit_param: str | None = "limit",
        location: Location = "query",
    ) -> None:
        super().__init__()
        self.page_size = page_size
        self.cursor_path = cursor_path
        self.param = param
        self.limit_param = limit_param
        self.location: Location = location
        self._next: str | None = None
        self._done = False

    def init_request(self, request: PageRequest) -> None:
        if self.limit_param and self.page_size is not None:
            request.set(self.location, self.limit_param, self.page_size)
        if self._next is not None:
            self._follow(self._next)
            request.set(self.location, self.param, self._next)

    def update_state(self, response: httpx.Response | None, body: Any, records: Sequence[Any]) -> None:
        token = get_path(body, self.cursor_path)
        if token is None or token == "":
            self._next, self._done = None, True
            return
        self._next = str(token)
        self._follow(self._next)

    def update_request(self, request: PageRequest) -> None:
        request.set(self.location, self.param, self._next)

    @property
    def has_next_page(self) -> bool:
        return not self._done and self._next is not None

    def state(self) -> dict[str, Any] | None:
        return {self.param: self._next} if self.has_next_page else None

    def restore(self, state: Mapping[str, Any]) -> None:
        self._next = str(state[self.param])


class OffsetPaginator(Paginator):
    """Offset and page size, with an optional total (Mailchimp, ActiveCampaign).

    * Mailchimp: ``OffsetPaginator(1000, limit_param="count", total_path="total_items")``
      (``count`` ≤ 1000, mailchimp.md §4.1).
    * ActiveCampaign: ``OffsetPaginator(100, limit_param="limit", total_path="meta.total")``
      (``limit`` ≤ 100, and ``meta.total`` is a string such as ``"36"``, activecampaign.md §1-§2).

    The offset moves by the number of records received, not the number asked for, so a server
    that clamps the page size (ActiveCampaign silently caps ``limit`` at 100) loses nothing. The
    end is an empty page, an offset that reaches the total, or, without a total, a short page.
    """

    def __init__(
        self,
        page_size: int = 100,
        *,
        offset_param: str = "offset",
        limit_param: str = "limit",
        total_path: str | None = None,
        start: int = 0,
        max_offset: int | None = None,
        location: Location = "query",
    ) -> None:
        super().__init__()
        if page_size < 1:
            raise ValueError(f"page_size must be at least 1, got {page_size}")
        self.page_size = page_size
        self.offset_param = offset_param
        self.limit_param = limit_param
        self.total_path = total_path
        self.max_offset = max_offset
        self.location: Location = location
        self.offset = start
        self.total: int | None = None
        self._done = False

    def init_request(self, request: PageRequest) -> None:
        self.apply_offset(request, self.offset)

    def apply_offset(self, request: PageRequest, offset: int) -> None:
        """Point ``request`` at the page starting at ``offset`` (used by the concurrent fetcher)."""
        request.set(self.location, self.limit_param, self.page_size)
        request.set(self.location, self.offset_param, offset)

    def update_state(self, response: httpx.Response | None, body: Any, records: Sequence[Any]) -> None:
        if self.total_path is not None:
            self.total = _as_int(get_path(body, self.total_path), self.total_path)
        received = len(records)
        if received == 0:
            self._done = True
            return
        self.offset += received
        if self.total is not None:
            self._done = self.offset >= self.total
        else:
            self._done = received < self.page_size
        if self.max_offset is not None and self.offset >= self.max_offset:
            self._done = True

    def update_request(self, request: PageRequest) -> None:
        request.set(self.location, self.offset_param, self.offset)

    def remaining(self, body: Any, records: Sequence[Any]) -> int | None:
        if self._done:
            return 0
        return None if self.total is None else max(self.total - self.offset, 0)

    @property
    def has_next_page(self) -> bool:
        return not self._done

    def state(self) -> dict[str, Any] | None:
        return {self.offset_param: self.offset} if self.has_next_page else None

    def restore(self, state: Mapping[str, Any]) -> None:
        self.offset = int(state[self.offset_param])


class KeysetPaginator(Paginator):
    """The next page starts after the largest key of this one (``id_greater=<last id>``).

    Stable while records change during the run (unlike offsets). The end is an empty page or a
    page shorter than ``page_size``. A page whose keys do not all exceed the bound we sent means
    the platform ignored the parameter: reading on would repeat pages, so it raises
    :class:`PaginationLoop` (activecampaign.md §11.2: unsupported filters are silently ignored).
    """

    def __init__(
        self,
        page_size: int = 100,
        *,
        param: str = "id_greater",
        key: str = "id",
        limit_param: str = "limit",
        location: Location = "query",
        total_path: str | None = None,
    ) -> None:
        super().__init__()
        if page_size < 1:
            raise ValueError(f"page_size must be at least 1, got {page_size}")
        self.page_size = page_size
        self.param = param
        self.key = key
        self.total_path = total_path  # the count of records past the bound sent (ActiveCampaign meta.total)
        self.limit_param = limit_param
        self.location: Location = location
        self.after: int | None = None
        self._done = False

    def init_request(self, request: PageRequest) -> None:
        request.set(self.location, self.limit_param, self.page_size)
        if self.after is not None:
            request.set(self.location, self.param, self.after)

    def update_state(self, response: httpx.Response | None, body: Any, records: Sequence[Any]) -> None:
        if not records:
            self._done = True
            return
        keys = [_as_int(get_path(record, self.key), self.key) for record in records]
        if any(k is None for k in keys):
            raise FatalError(f"{type(self).__name__}: a record has no {self.key!r} to page on")
        if self.after is not None and min(keys) <= self.after:  # type: ignore[operator]
            raise PaginationLoop(
                f"Loop detected in pagination: asked for {self.param}={self.after} but got {self.key} "
                f"{min(keys)}; the platform ignored {self.param!r}"  # type: ignore[type-var]
            )
        self.after = max(keys)  # type: ignore[type-var]
        self._follow(self.after)
        self._done = len(records) < self.page_size

    def update_request(self, request: PageRequest) -> None:
        request.set(self.location, self.param, self.after)

    def remaining(self, body: Any, records: Sequence[Any]) -> int | None:
        if self._done:
            return 0
        total = _count(body, self.total_path)
        return None if total is None else max(total - len(records), 0)

    @property
    def has_next_page(self) -> bool:
        return not self._done

    def state(self) -> dict[str, Any] | None:
        return {self.param: self.after} if self.has_next_page and self.after is not None else None

    def restore(self, state: Mapping[str, Any]) -> None:
        self.after = int(state[self.param])


class HasMoreOffsetPaginator(Paginator):
    """``hasMore`` plus an opaque ``offset`` token (HubSpot legacy email events, hubspot.md §4.1)."""

    def __init__(
        self,
        page_size: int | None = 1000,
        *,
        has_more_path: str = "hasMore",
        offset_path: str = "offset",
        offset_param: str = "offset",
        limit_param: str | None = "limit",
    ) -> None:
        super().__init__()
        self.page_size = page_size
        self.has_more_path = has_more_path
        self.offset_path = offset_path
        self.offset_param = offset_param
        self.limit_param = limit_param
        self._next: str | None = None
        self._more = True

    def init_request(self, request: PageRequest) -> None:
        if self.limit_param and self.page_size is not None:
            request.params[self.limit_param] = self.page_size
        if self._next is not None:
            self._follow(self._next)
            request.params[self.offset_param] = self._next

    def update_state(self, response: httpx.Response | None, body: Any, records: Sequence[Any]) -> None:
        self._more = bool(get_path(body, self.has_more_path, False))
        if not self._more:
            self._next = None
            return
        token = get_path(body, self.offset_path)
        if token is None or token == "":
            raise FatalError(
                f"the page says {self.has_more_path}=true but carries no {self.offset_path!r} token"
            )
        self._next = str(token)
        self._follow(self._next)

    def update_request(self, request: PageRequest) -> None:
        request.params[self.offset_param] = self._next

    @property
    def has_next_page(self) -> bool:
        return self._more and self._next is not None

    def state(self) -> dict[str, Any] | None:
        return {self.offset_param: self._next} if self.has_next_page else None

    def restore(self, state: Mapping[str, Any]) -> None:
        self._next = str(state[self.offset_param])


# Called with the records of the last page before the cap; returns changes to merge into the JSON
# body (typically a new filter floor) to restart at offset 0, or None to stop.
OnCap = Callable[[Sequence[Any]], Mapping[str, Any] | None]


class SearchOffsetPaginator(Paginator):
    """HubSpot CRM search: a numeric ``after`` offset in the JSON body, capped per query.

    hubspot.md §2.5: "after" is an offset here, not a record id; at most 200 a page; "10,000 total
    results per query - paging beyond returns 400". Before the next page would cross
    ``max_results``, the paginator asks ``on_cap(last_records)`` for body changes that re-anchor
    the query (e.g. ``lastmodifieddate GTE`` the last value seen, sorted ascending, as Airbyte's
    ``HubspotCRMSearchPaginationStrategy`` does) and restarts at offset 0. Without ``on_cap``,
    reaching the cap raises rather than silently dropping the rest. A re-anchor that changes
    nothing is a loop.
    """

    def __init__(
        self,
        page_size: int = 200,
        *,
        cursor_path: str = "paging.next.after",
        param: str = "after",
        limit_param: str = "limit",
        max_results: int = 10_000,
        on_cap: OnCap | None = None,
        total_path: str = "total",
    ) -> None:
        super().__init__()
        self.page_size = page_size
        self.total_path = total_path  # hubspot.md §2.5: search answers carry the query's "total"
        self.cursor_path = cursor_path
        self.param = param
        self.limit_param = limit_param
        self.max_results = max_results
        self.on_cap = on_cap
        self.restarts = 0
        self._next: str | None = None
        self._anchor: dict[str, Any] = {}
        self._pending_anchor: dict[str, Any] | None = None
        self._done = False

    def init_request(self, request: PageRequest) -> None:
        request.set("body", self.limit_param, self.page_size)
        if self._anchor:
            assert request.json is not None
            request.json.update(self._anchor)
        if self._next is not None:
            self._follow(self._key(self._next))
            request.set("body", self.param, self._next)

    def update_state(self, response: httpx.Response | None, body: Any, records: Sequence[Any]) -> None:
        token = get_path(body, self.cursor_path)
        if token is None or token == "":
            self._next, self._done = None, True
            return
        offset = _as_int(token, self.cursor_path)
        assert offset is not None
        if offset + self.page_size > self.max_results:
            anchor = self.on_cap(records) if self.on_cap is not None else None
            if anchor is None:
                if self.on_cap is None:
                    raise FatalError(
                        f"search results go past the {self.max_results:,}-result cap; "
                        "narrow the query or give the paginator an on_cap re-anchor"
                    )
                self._next, self._done = None, True
                return
            self._anchor = {**self._anchor, **anchor}
            self._pending_anchor = dict(anchor)
            self._next = "0"
            self.restarts += 1
        else:
            self._next = str(token)
        self._follow(self._key(self._next))

    def update_request(self, request: PageRequest) -> None:
        if self._pending_anchor is not None:
            assert request.json is not None
            request.json.update(self._pending_anchor)
            self._pending_anchor = None
        if self._next == "0":
            request.unset("body", self.param)
        else:
            request.set("body", self.param, self._next)

    @property
    def has_next_page(self) -> bool:
        return not self._done and self._next is not None

    def state(self) -> dict[str, Any] | None:
        if not self.has_next_page:
            return None
        return (
            {self.param: self._next, "anchor": dict(self._anchor)}
            if self._anchor
            else {self.param: self._next}
        )

    def restore(self, state: Mapping[str, Any]) -> None:
        self._next = str(state[self.param])
        self._anchor = dict(state.get("anchor") or {})

    def remaining(self, body: Any, records: Sequence[Any]) -> int | None:
        if not self.has_next_page:
            return 0
        total = _count(body, self.total_path)
        if total is None or self._pending_anchor is not None:
            return None  # a re-anchored query's total is known once its first page answers
        return max(total - int(self._next or 0), 0)

    def _key(self, token: str) -> tuple[bytes, str]:
        return orjson.dumps(self._anchor, option=orjson.OPT_SORT_KEYS, default=str), token


def _count(body: Any, path: str | None) -> int | None:
    """A total for progress only: unreadable is unknown, never an error."""
    if path is None:
        return None
    try:
        return _as_int(get_path(body, path), path)
    except FatalError:
        return None


def _as_int(value: Any, path: str) -> int | None:
    """A count read from a body: ActiveCampaign sends ``"36"``, some pages send ``36``."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise FatalError(f"expected a number at {path!r}, got {value!r}")
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise FatalError(f"expected a number at {path!r}, got {value!r}") from exc
