"""What the HubSpot routes need from the emulator that serves them.

The routes take this protocol instead of ``HubSpotEmulator`` itself, so the emulator imports its
routes and nothing imports back (no import cycle).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from aiohttp import web

    from leadsync.sandbox.clock import SandboxClock
    from leadsync.sandbox.hubspot.state import HubSpotState
    from leadsync.sandbox.platform import EmulatorOptions


class PortalHost(Protocol):
    clock: SandboxClock
    options: EmulatorOptions
    state: HubSpotState
    tier: str
    portal_id: int
    oauth_app: dict[str, str]
    token_grants: dict[str, int]

    @property
    def world_start(self) -> datetime: ...

    def issue_token(self, token: str, expires_at: float) -> None: ...

    def public_url(self, request: web.Request) -> str: ...
