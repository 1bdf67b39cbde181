"""ActiveCampaign authentication: one API key per user, sent as the ``Api-Token`` header.

activecampaign.md §1: header ``Api-Token: <key>``; no OAuth, no scopes, the key inherits its user's
permissions. The key never appears in a repr, a log line or an exception message.
"""

from __future__ import annotations

from collections.abc import Generator

import httpx

__all__ = ["API_TOKEN_SECRET", "ApiTokenAuth"]

# The name of the secret in SourceSettings.secrets (the config maps it to an environment variable).
API_TOKEN_SECRET = "api_token"


class ApiTokenAuth(httpx.Auth):
    """Adds ``Api-Token`` to every request."""

    def __init__(self, token: str) -> None:
        self._token = token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Api-Token"] = self._token
        yield request

    def secrets(self) -> tuple[str, ...]:
        """The values a redactor must mask."""
        return (self._token,)

    def __repr__(self) -> str:
        return "ApiTokenAuth(<redacted>)"
