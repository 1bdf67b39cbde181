"""Fixtures: a Mailchimp sandbox on a free loopback port, and settings that point a connector at it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from connectors.base import SourceSettings
from connectors.records import Platform
from sandbox.mailchimp.emulator import SANDBOX_API_KEY, MailchimpEmulator
from sandbox.server import SandboxServer


def empty_world() -> object:
    return SimpleNamespace(now=datetime(2026, 6, 1, tzinfo=UTC), persons=[], events=[], campaigns=[])


@pytest.fixture
def empty_server() -> Iterator[SandboxServer]:
    with SandboxServer.for_world(
        empty_world(), emulators=[MailchimpEmulator], ports={"mailchimp": 0}, rate_limits=False
    ) as server:
        yield server


def settings_for(base_url: str, api_key: str = SANDBOX_API_KEY, **options: object) -> SourceSettings:
    return SourceSettings(
        name="mc-main",
        platform=Platform.MAILCHIMP,
        base_url=f"{base_url}/3.0",
        secrets={"api_key": api_key},
        secret_names={"api_key": "LEADSYNC_MAILCHIMP_KEY"},
        options=options,
    )
