"""Fixtures: a Mailchimp sandbox on a free loopback port, and settings that point a connector at it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from functools import cache
from types import SimpleNamespace
from typing import Any

import pytest

from leadsync.connectors.base import PullBatch, SourceSettings
from leadsync.connectors.mailchimp.connector import MailchimpConnector
from leadsync.connectors.records import Platform
from leadsync.sandbox.mailchimp.emulator import SANDBOX_API_KEY, MailchimpEmulator
from leadsync.sandbox.server import SandboxServer


def empty_world() -> object:
    return SimpleNamespace(now=datetime(2026, 6, 1, tzinfo=UTC), persons=[], events=[], campaigns=[])


@cache
def _world_bytes(contacts: int, seed: int) -> bytes:
    from leadsync.sandbox.world import generate_world

    return generate_world(contacts, seed).dumps()


def fresh_world(contacts: int = 200, seed: int = 7) -> Any:
    """A generated world, fresh for each test (emulators and pushes change it)."""
    from leadsync.sandbox.world import World

    return World.loads(_world_bytes(contacts, seed))


@pytest.fixture
def empty_server() -> Iterator[SandboxServer]:
    with SandboxServer.for_world(
        empty_world(), emulators=[MailchimpEmulator], ports={"mailchimp": 0}, rate_limits=False
    ) as server:
        yield server


@pytest.fixture
def server() -> Iterator[SandboxServer]:
    """A 200-person world (seed 7), rate limits off."""
    with SandboxServer.for_world(
        fresh_world(), emulators=[MailchimpEmulator], ports={"mailchimp": 0}, rate_limits=False
    ) as running:
        yield running


def settings_for(base_url: str, api_key: str = SANDBOX_API_KEY, **options: object) -> SourceSettings:
    return SourceSettings(
        name="mc-main",
        platform=Platform.MAILCHIMP,
        base_url=f"{base_url}/3.0",
        secrets={"api_key": api_key},
        secret_names={"api_key": "LEADSYNC_MAILCHIMP_KEY"},
        options=options,
    )


def connector_for(server: SandboxServer, **options: object) -> MailchimpConnector:
    connector = MailchimpConnector(settings_for(server.base_url("mailchimp"), **options))
    connector.policy = connector.policy.with_rules(backoff_initial_s=0.05, backoff_max_s=0.5)
    return connector


def pull_all(
    connector: MailchimpConnector, cursors: dict[str, Any] | None = None
) -> tuple[dict[str, list[PullBatch]], dict[str, Any]]:
    """Pull every stream, committing each batch's cursor as the pipeline would."""
    cursors = dict(cursors or {})
    batches: dict[str, list[PullBatch]] = {}
    for stream in connector.streams():
        for batch in connector.pull(stream, cursors.get(stream)):
            batches.setdefault(stream, []).append(batch)
            if batch.cursor is not None:
                cursors[stream] = batch.cursor
    return batches, cursors


def emulator_of(server: SandboxServer) -> MailchimpEmulator:
    emulator = server.state.hosts["mailchimp"].emulator
    assert isinstance(emulator, MailchimpEmulator)
    return emulator
