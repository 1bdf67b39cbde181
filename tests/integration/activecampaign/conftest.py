"""Fixtures: the ActiveCampaign emulator on a loopback port, and connectors pointed at it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest

from connectors.activecampaign.connector import ActiveCampaignConnector
from connectors.base import SourceSettings
from connectors.records import Platform
from sandbox.activecampaign.emulator import SANDBOX_API_TOKEN, ActiveCampaignEmulator
from sandbox.server import SandboxServer

TOKEN_VARIABLE = "LEADSYNC_AC_API_TOKEN"


def make_settings(base_url: str, token: str = SANDBOX_API_TOKEN, **kwargs: Any) -> SourceSettings:
    return SourceSettings(
        name="ac-test",
        platform=Platform.ACTIVECAMPAIGN,
        base_url=base_url,
        secrets={"api_token": token},
        secret_names={"api_token": TOKEN_VARIABLE},
        **kwargs,
    )


@pytest.fixture(scope="module")
def empty_server() -> Iterator[SandboxServer]:
    world = SimpleNamespace(now=datetime(2026, 6, 1, tzinfo=UTC), persons=[], events=[], campaigns=[])
    with SandboxServer.for_world(
        world, emulators=[ActiveCampaignEmulator], ports={"activecampaign": 0}, rate_limits=False  # type: ignore[arg-type]
    ) as server:
        yield server


def api_url(server: SandboxServer) -> str:
    return server.base_url("activecampaign") + "/api/3"


@pytest.fixture
def connector_for(empty_server: SandboxServer) -> Iterator[Any]:
    made: list[ActiveCampaignConnector] = []

    def make(server: SandboxServer | None = None, **kwargs: Any) -> ActiveCampaignConnector:
        connector = ActiveCampaignConnector(make_settings(api_url(server or empty_server), **kwargs))
        made.append(connector)
        return connector

    yield make
    for connector in made:
        connector.close()
