"""OAuth token endpoints (hubspot.md §1): the refresh_token grant, issuing 30-minute access tokens.

* ``POST /oauth/2026-03/token``: the dated successor of v1, same form fields (parameters in the
  body only) and the same answer (DOCS
  https://developers.hubspot.com/docs/api-reference/2026-03/authentication/oauth-tokens/refresh-oauth-token,
  https://developers.hubspot.com/docs/api-reference/latest/authentication/manage-oauth-tokens).
* ``POST /oauth/v1/token``: served until its deprecation date, 2027-02-16 on the sandbox clock
  (banner on https://developers.hubspot.com/docs/api-reference/legacy/authentication/oauth-tokens/v1/refresh-oauth-token.md),
  404 from then on. v1 also read the fields from the query string; 2026-03 does not.
"""

from __future__ import annotations

import secrets
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from aiohttp import web

from leadsync.sandbox.hubspot.routes.common import error
from leadsync.sandbox.platform import json_response

if TYPE_CHECKING:
    from leadsync.sandbox.hubspot.host import PortalHost

__all__ = ["OAuthRoutes", "TOKEN_PATH", "TOKEN_PATHS", "V1_SHUTDOWN", "V1_TOKEN_PATH"]

TOKEN_PATH = "/oauth/2026-03/token"
V1_TOKEN_PATH = "/oauth/v1/token"
TOKEN_PATHS = (TOKEN_PATH, V1_TOKEN_PATH)
V1_SHUTDOWN = datetime(2027, 2, 16, tzinfo=UTC)  # hubspot.md §1: "OAuth v1 is to be deprecated 2027-02-16"
ACCESS_TOKEN_TTL_S = 1800  # hubspot.md §1: access tokens live 30 minutes (follow expires_in)


class OAuthRoutes:
    def __init__(self, emulator: PortalHost) -> None:
        self.emu = emulator

    def add(self, app: web.Application) -> None:
        app.router.add_post(TOKEN_PATH, self.token)
        app.router.add_post(V1_TOKEN_PATH, self.v1_token)

    async def v1_token(self, request: web.Request) -> web.Response:
        if self.emu.clock.now() >= V1_SHUTDOWN:
            return error(
                404, "OAuth v1 was shut down on 2027-02-16; use /oauth/2026-03/token.", "OBJECT_NOT_FOUND"
            )
        return await self._grant(request, query_allowed=True)

    async def token(self, request: web.Request) -> web.Response:
        return await self._grant(request, query_allowed=False)

    async def _grant(self, request: web.Request, *, query_allowed: bool) -> web.Response:
        form = await request.post()
        fields = {k: str(v) for k, v in form.items()}
        if query_allowed:  # SPEC (v1) also allows the query string
            fields.update({k: v for k, v in request.query.items() if k not in fields})
        app = self.emu.oauth_app
        if fields.get("grant_type") != "refresh_token":
            return error(400, "Only the refresh_token grant is emulated", "BAD_GRANT_TYPE")
        if fields.get("client_id") != app["client_id"] or fields.get("client_secret") != app["client_secret"]:
            return error(400, "missing or invalid client_id / client_secret", "BAD_CLIENT_ID")
        if fields.get("refresh_token") != app["refresh_token"] or self.emu.credentials_revoked:
            return error(400, "missing or unknown refresh token", "BAD_REFRESH_TOKEN")
        access = "CO" + secrets.token_urlsafe(48)
        ttl = int(self.emu.options.extra.get("token_ttl_s", ACCESS_TOKEN_TTL_S))  # tests shorten it
        self.emu.issue_token(access, time.monotonic() + ttl)
        self.emu.token_grants[request.path] = self.emu.token_grants.get(request.path, 0) + 1
        return json_response(
            {
                "access_token": access,
                "refresh_token": app["refresh_token"],
                "expires_in": ttl,
                "token_type": "bearer",
                "token_use": "access_token",
                "hub_id": self.emu.portal_id,
                "scopes": [
                    "crm.objects.contacts.read",
                    "crm.objects.contacts.write",
                    "crm.schemas.contacts.write",
                    "crm.objects.deals.read",
                    "content",
                    "forms",
                ],
            }
        )
