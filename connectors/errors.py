"""Errors that say what to do next.

Our exception hierarchy::

    LeadsyncError
    ├── ConfigError              a config or model file is wrong: abort, tell the user what to fix
    ├── BadRecord                one record cannot be normalised: skip it, keep it in quarantine
    └── ConnectorError           talking to a platform failed
        ├── RetriableError       try the same request again (5xx, timeouts, dropped connections)
        │   ├── RateLimited      429 or an equivalent; carries retry_after when the platform gave one
        │   └── MalformedResponse  a 2xx whose body is not the JSON it should be (truncated, HTML)
        └── FatalError           retrying the same request cannot help: abort this source's run
            ├── AuthError        401/403: wrong token, missing scope; names the source and variable
            ├── NotFound         404 on something that should exist
            └── PaginationLoop   the platform handed back a page token already seen

Every ``ConnectorError`` may keep the ``response`` it came from (``None`` for transport failures),
so a caller can read headers or the body without the message having to carry them.

Messages never contain secrets: callers build them from the source name and the name of the
environment variable, never from its value.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AuthError",
    "BadRecord",
    "ConfigError",
    "ConnectorError",
    "FatalError",
    "LeadsyncError",
    "MalformedResponse",
    "NotFound",
    "PaginationLoop",
    "RateLimited",
    "RetriableError",
]


class LeadsyncError(Exception):
    """Base of every error leadsync raises on purpose."""


class ConfigError(LeadsyncError):
    """A config or model file is invalid. ``file`` and ``key`` say where."""

    def __init__(self, message: str, *, file: str | None = None, key: str | None = None) -> None:
        self.file = file
        self.key = key
        where = ": ".join(part for part in (file, key) if part)
        super().__init__(f"{where}: {message}" if where else message)


class BadRecord(LeadsyncError):
    """A record that cannot be normalised. The sync goes on; the record goes to quarantine."""

    def __init__(self, reason: str, *, record: Any = None, remote_id: str | None = None) -> None:
        self.reason = reason
        self.record = record
        self.remote_id = remote_id
        super().__init__(reason)


class ConnectorError(LeadsyncError):
    """A request to a platform failed. ``status`` is the HTTP status when there was a response.

    ``response`` is the ``httpx.Response`` itself when there was one (typed ``Any`` so that this
    module does not import httpx).
    """

    def __init__(
        self,
        message: str,
        *,
        source: str | None = None,
        status: int | None = None,
        response: Any = None,
    ) -> None:
        self.source = source
        self.status = status
        self.response = response
        super().__init__(message)


class RetriableError(ConnectorError):
    """The same request may succeed if sent again later."""


class RateLimited(RetriableError):
    """The platform refused for rate reasons. ``retry_after`` in seconds when it said."""

    def __init__(
        self,
        message: str,
        *,
        source: str | None = None,
        status: int | None = 429,
        retry_after: float | None = None,
        response: Any = None,
    ) -> None:
        self.retry_after = retry_after
        super().__init__(message, source=source, status=status, response=response)


class MalformedResponse(RetriableError):
    """A success status with a body that does not parse (cut short, an HTML error page)."""


class FatalError(ConnectorError):
    """Retrying cannot help; stop this source's run and report."""


class AuthError(FatalError):
    """Credentials are wrong or lack a permission. The message names the source and the variable."""


class NotFound(FatalError):
    """The platform says the resource does not exist."""


class PaginationLoop(FatalError):
    """A paginator was handed a page token it had already followed: reading on would never end."""
