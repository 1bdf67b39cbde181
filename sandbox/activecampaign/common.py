"""Request helpers shared by the ActiveCampaign routes: paging, filters, errors, dates."""

from __future__ import annotations

import json
from datetime import UTC, datetime, time, tzinfo
from typing import TYPE_CHECKING, Any

from aiohttp import web

from leadsync.sandbox.platform import json_response

if TYPE_CHECKING:
    from leadsync.sandbox.activecampaign.host import AccountHost

__all__ = [
    "Paging",
    "errors_422",
    "message_404",
    "param",
    "parse_filter_time",
    "read_json",
]

DEFAULT_LIMIT = 20  # activecampaign.md §2 pagination: default 20
MAX_LIMIT = 100  # ... max 100


class Paging:
    """``limit``/``offset`` as ActiveCampaign reads them: default 20, clamped to 100 (§2)."""

    def __init__(self, request: web.Request, *, default: int = DEFAULT_LIMIT) -> None:
        self.limit = _int(request.query.get("limit"), default)
        self.limit = max(1, min(MAX_LIMIT, self.limit))
        self.offset = max(0, _int(request.query.get("offset"), 0))

    def slice(self, rows: list[Any]) -> list[Any]:
        return rows[self.offset : self.offset + self.limit]


def _int(text: str | None, default: int) -> int:
    try:
        return int(text) if text not in (None, "") else default
    except ValueError:
        return default


def param(emulator: AccountHost, request: web.Request, name: str) -> str | None:
    """A query parameter, or None when absent or when the emulator is told to ignore it.

    activecampaign.md §11.2: unsupported ``filters[...]`` are silently ignored by the real API;
    ``extra={"ignore_params": [...]}`` makes the sandbox ignore supported ones too, so tests can
    check that a connector never trusts a filter blindly.
    """
    if name in emulator.ignored_params:
        return None
    value = request.query.get(name)
    return value if value not in (None, "") else None


def parse_filter_time(text: str, tz: tzinfo) -> datetime | None:
    """A ``filters[...]``/``after`` value: a date, a naive datetime (account time) or ISO with offset.

    §2: the spec types these ``date``; peers send ISO datetimes. Unparseable values are ignored
    (None), like unknown filters.
    """
    cleaned = text.strip().replace(" ", "T", 1) if "T" not in text else text.strip()
    if cleaned.endswith("Z"):
        cleaned = cleaned[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(cleaned)
    except ValueError:
        return None
    if len(text.strip()) == 10:  # a bare date: midnight in the account's timezone
        moment = datetime.combine(moment.date(), time(0), tzinfo=tz)
    elif moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz)
    return moment.astimezone(UTC)


async def read_json(request: web.Request) -> Any:
    """The request body as JSON, or None when absent or not JSON."""
    try:
        raw = await request.read()
        return json.loads(raw) if raw else None
    except (ValueError, UnicodeDecodeError):
        return None


def message_404(what: str, ident: Any) -> web.Response:
    """§8 error shape 3: ``{"message": "No Result found for Subscriber with id 1"}``."""
    return json_response({"message": f"No Result found for {what} with id {ident}"}, status=404)


def errors_422(title: str, *, code: str, pointer: str | None = None, detail: str = "") -> web.Response:
    """§8 error shape 1: ``{"errors":[{"title","detail","code","source":{"pointer"}}]}``."""
    error: dict[str, Any] = {"title": title, "detail": detail, "code": code}
    if pointer is not None:
        error["source"] = {"pointer": pointer}
    return json_response({"errors": [error]}, status=422)


def errors_status(
    status: int, title: str, *, detail: str | None = None, pointer: str | None = None
) -> web.Response:
    """§8 error shape 2: ``{"errors":[{"status":404,"title":"Not Found","detail":"Contact not found"}]}``."""
    error: dict[str, Any] = {"status": status, "title": title}
    if detail is not None:
        error["detail"] = detail
    if pointer is not None:
        error["source"] = {"pointer": pointer}
    return json_response({"errors": [error]}, status=status)


def path_id(request: web.Request, name: str = "id") -> int | None:
    try:
        return int(request.match_info[name])
    except (KeyError, ValueError):
        return None
