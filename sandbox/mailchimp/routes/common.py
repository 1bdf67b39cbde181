"""What every Mailchimp route module shares: the emulator's view, JSON bodies, 404s."""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any, Protocol

import orjson
from aiohttp import web

from leadsync.sandbox.mailchimp.shapes import PageError, select_fields
from leadsync.sandbox.mailchimp.state import Audience, MailchimpState

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["Api", "BadRequest", "audience_or_404", "handler", "ok", "parse_body"]


class Api(Protocol):
    """The part of the emulator the routes use."""

    state: MailchimpState
    processing_s: float

    def problem(
        self,
        status: int,
        detail: str,
        *,
        title: str | None = None,
        errors: list[dict[str, str]] | None = None,
    ) -> web.Response: ...


class BadRequest(Exception):
    """Raised inside a handler; answered as a problem document."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        title: str | None = None,
        errors: list[dict[str, str]] | None = None,
    ) -> None:
        self.status = status
        self.detail = detail
        self.title = title
        self.errors = errors
        super().__init__(detail)


def ok(body: dict[str, Any], query: Mapping[str, str] | None = None) -> web.Response:
    # orjson: a 1000-member page is a few megabytes, and the sandbox serves it on one event loop.
    payload = select_fields(body, query) if query is not None else body
    return web.Response(
        body=orjson.dumps(payload), status=200, headers={"Content-Type": "application/json; charset=utf-8"}
    )


def audience_or_404(api: Api, list_id: str) -> Audience:
    audience = api.state.audiences.get(list_id)
    if audience is None:
        raise BadRequest(404, "The requested resource could not be found.")
    return audience


def handler(api: Api, fn: Any) -> Any:
    """Wrap a handler: run it under the state lock, answer BadRequest/PageError as problems."""

    async def wrapped(request: web.Request) -> web.StreamResponse:
        delay = getattr(api, "processing_s", 0.0)
        if delay:
            await asyncio.sleep(delay)  # server-side work, while the connection slot is held
        try:
            body = await request.read() if request.can_read_body else b""
            with api.state.lock:
                return fn(request, body)
        except BadRequest as exc:
            return api.problem(exc.status, exc.detail, title=exc.title, errors=exc.errors)
        except PageError as exc:
            return api.problem(400, str(exc), title="Invalid Resource")

    return wrapped


def parse_body(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        raise BadRequest(
            400, "We encountered an unspecified JSON parsing error.", title="JSON Parse Exception"
        ) from None
    if not isinstance(body, dict):
        raise BadRequest(400, "The request body must be a JSON object.", title="JSON Parse Exception")
    return body
