"""Helpers the route modules share: error bodies, query parsing, JSON bodies."""

from __future__ import annotations

import json
import uuid
from typing import Any

from aiohttp import web

from leadsync.sandbox.hubspot.state import RequestError
from leadsync.sandbox.platform import json_response

__all__ = ["error", "list_param", "read_json", "request_error"]


def error(status: int, message: str, category: str = "VALIDATION_ERROR", **extra: Any) -> web.Response:
    # hubspot.md §5: SPEC Error (category, correlationId, message) plus "status":"error".
    body = {"status": "error", "message": message, "correlationId": str(uuid.uuid4()), "category": category}
    body.update(extra)
    return json_response(body, status=status)


def request_error(exc: RequestError) -> web.Response:
    return error(exc.status, exc.message, exc.category, **exc.extra)


def list_param(request: web.Request, name: str) -> list[str] | None:
    """hubspot.md §2.1: list params come repeated (the SDK) or comma-separated (the docs): accept both."""
    values = request.query.getall(name, [])
    if not values:
        return None
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


async def read_json(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json() if request.can_read_body else {}
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise RequestError(400, "Invalid input JSON: the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise RequestError(400, "Invalid input JSON: expected an object")
    return body
