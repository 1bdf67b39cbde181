"""Fixtures: a HubSpot sandbox on a free loopback port, and settings that point a connector at it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from leadsync.connectors.base import SourceSettings
from leadsync.connectors.records import Platform
from leadsync.sandbox.hubspot.emulator import SANDBOX_TOKEN, HubSpotEmulator
from leadsync.sandbox.server import SandboxServer


def small_world() -> object:
    return SimpleNamespace(now=datetime(2026, 6, 1, tzinfo=UTC), persons=[], events=[], campaigns=[])


@pytest.fixture
def hubspot_server() -> Iterator[SandboxServer]:
    with SandboxServer.for_world(
        small_world(), emulators=[HubSpotEmulator], ports={"hubspot": 0}, rate_limits=False
    ) as server:
        yield server


def settings_for(base_url: str, token: str = SANDBOX_TOKEN, **options: object) -> SourceSettings:
    return SourceSettings(
        name="hs-main",
        platform=Platform.HUBSPOT,
        base_url=base_url,
        secrets={"token": token},
        secret_names={"token": "LEADSYNC_HUBSPOT_TOKEN"},
        options=options,
    )
