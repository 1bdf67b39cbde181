"""Wire-level helpers shared by the Mailchimp routes: times, ids, paging, ``fields`` filtering.

Facts: the Mailchimp fact sheet, mailchimp.md (§4.2 value shapes, §14 the emulator checklist).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "MAX_COUNT",
    "PageError",
    "fmt_time",
    "page_params",
    "parse_time_param",
    "select_fields",
    "short_id",
    "subscriber_hash",
]

# mailchimp.md §14.3: count defaults to 10, at most 1000.
DEFAULT_COUNT = 10
MAX_COUNT = 1000


class PageError(ValueError):
    """A query parameter the platform would refuse with 400."""


def subscriber_hash(email: str) -> str:
    """mailchimp.md §4: md5 of the lowercased address."""
    return hashlib.md5(email.lower().encode()).hexdigest()  # noqa: S324 - Mailchimp's own scheme


def short_id(seed: str, length: int = 10) -> str:
    """A stable hex id in Mailchimp's style (list and campaign ids are 10 hex characters)."""
    return hashlib.sha1(seed.encode()).hexdigest()[:length]  # noqa: S324 - not security


def fmt_time(moment: datetime | None) -> str:
    """mailchimp.md §4.2: ``2021-03-02T19:04:19+00:00``; unset values are ``""``."""
    if moment is None:
        return ""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def parse_time_param(value: str | None, name: str) -> datetime | None:
    """An ISO 8601 query parameter (``2015-10-21T15:41:36+00:00``); naive means UTC."""
    if value is None or value == "":
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise PageError(f"{name} must be an ISO 8601 time such as 2015-10-21T15:41:36+00:00") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def page_params(query: Mapping[str, str], *, default: int = DEFAULT_COUNT) -> tuple[int, int]:
    """``count`` and ``offset``; count > 1000 is refused (a safe guess, mailchimp.md §14.3)."""
    try:
        count = int(query.get("count", default))
        offset = int(query.get("offset", 0))
    except ValueError:
        raise PageError("count and offset must be integers") from None
    if count < 0 or offset < 0:
        raise PageError("count and offset must not be negative")
    if count > MAX_COUNT:
        raise PageError(f"count may not exceed {MAX_COUNT}")
    return count, offset


def _tree(paths: str) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for path in paths.split(","):
        path = path.strip()
        if not path:
            continue
        node = tree
        for part in path.split("."):
            node = node.setdefault(part, {})
    return tree


def _keep(value: Any, tree: dict[str, Any]) -> Any:
    if not tree:
        return value
    if isinstance(value, list):
        return [_keep(item, tree) for item in value]
    if isinstance(value, dict):
        return {key: _keep(value[key], sub) for key, sub in tree.items() if key in value}
    return value


def _drop(value: Any, tree: dict[str, Any]) -> Any:
    if isinstance(value, list):
        return [_drop(item, tree) for item in value]
    if isinstance(value, dict):
        out = dict(value)
        for key, sub in tree.items():
            if key not in out:
                continue
            if sub:
                out[key] = _drop(out[key], sub)
            else:
                del out[key]
        return out
    return value


def select_fields(body: dict[str, Any], query: Mapping[str, str]) -> dict[str, Any]:
    """Apply ``fields`` / ``exclude_fields`` dot paths, envelope included (``members.id``), §4.1."""
    fields = query.get("fields")
    if fields:
        body = _keep(body, _tree(fields))
    exclude = query.get("exclude_fields")
    if exclude:
        body = _drop(body, _tree(exclude))
    return body
