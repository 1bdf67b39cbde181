"""OAuth v1 token endpoint (hubspot.md §1): refresh_token grant issuing 30-minute access tokens."""

from __future__ import annotations

import secrets
import time
from typing import TYPE_CHECKING

from aiohttp import web

from leadsync.sandbox.hubspot.routes.common import error
from leadsync.sandbox.platform import json_response

if TYPE_CHECKING:
    from leadsync.sandbox.hubspot.emulator import HubSpotEmulator

__all__ = ["OAuthRoutes", "TOKEN_PATH"]

TOKEN_PATH = "/oauth/v1/token"
ACCESS_TOKEN_TTL_S = 1800  # hubspot.md §1: access tokens live 30 minutes (follow expires_in)


class OAuthRoutes:
    def __init__(self, emulator: HubSpotEmulator) -> None:
        self.emu = emulator

    def add(self, app: web.Application) -> None:
        app.router.add_post(TOKEN_PATH, self.token)

    async def token(self, request: web.Request) -> web.Response:
        form = await request.post()
        fields = {k: str(v) for k, v in form.items()}
        fields.update({k: v for k, v in request.query.items() if k not in fields})  # SPEC also allows query
        app = self.emu.oauth_app
        if fields.get("grant_type") != "refresh_token":
            return error(400, "Only the refresh_token grant is emulated", "BAD_GRANT_TYPE")
        if fields.get("client_id") != app["client_id"] or fields.get("client_secret") != app["client_secret"]:
            return error(400, "missing or invalid client_id / client_secret", "BAD_CLIENT_ID")
        if fields.get("refresh_token") != app["refresh_token"]:
            return error(400, "missing or unknown refresh token", "BAD_REFRESH_TOKEN")
        access = "CO" + secrets.token_urlsafe(48)
        self.emu.issue_token(access, time.monotonic() + ACCESS_TOKEN_TTL_S)
        return json_response(
            {
                "access_token": access,
                "refresh_token": app["refresh_token"],
                "expires_in": ACCESS_TOKEN_TTL_S,
                "token_type": "bearer",
                "token_use": "access_token",
                "hub_id": self.emu.portal_id,
                "scopes": [
                    "crm.objects.contacts.read",
                    "crm.objects.contacts.write",
                    "crm.schemas.contacts.write",
                    "crm.objects.deals.read",
                    "content",
                ],
            }
        )
