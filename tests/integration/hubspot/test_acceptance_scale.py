"""Acceptance at scale: the 5,000-person world (seed 7) at HubSpot's default rate limits."""

from __future__ import annotations

import time

import pytest

from leadsync.connectors.hubspot.connector import HubSpotConnector
from leadsync.sandbox.hubspot.emulator import HubSpotEmulator
from leadsync.sandbox.server import SandboxServer
from leadsync.sandbox.world import generate_world
from tests.integration.hubspot.conftest import settings_for

EMAIL_TYPES = {
    "email_sent",
    "email_open",
    "email_click",
    "email_bounce",
    "email_unsubscribe",
    "email_spam_report",
}


@pytest.mark.slow(40)
def test_given_the_5000_person_world_at_default_limits_when_pulling_twice_then_everything_arrives_without_429_and_then_nothing():
    world = generate_world(5000, 7)
    expected_contacts = len(world.persons_on("hubspot"))
    expected_email = sum(1 for e in world.events_on("hubspot") if e.type.value in EMAIL_TYPES)
    with SandboxServer.for_world(world, emulators=[HubSpotEmulator], ports={"hubspot": 0}) as server:
        connector = HubSpotConnector(settings_for(server.base_url("hubspot")))
        cursors: dict[str, object] = {}
        started = time.monotonic()
        contacts: set[str] = set()
        email = 0
        for stream in connector.streams():
            for batch in connector.pull(stream, None):
                contacts.update(c.remote_id for c in batch.contacts)
                email += sum(1 for e in batch.events if e.type.value in EMAIL_TYPES)
                assert not batch.bad
                if batch.cursor is not None:
                    cursors[stream] = batch.cursor
        elapsed = time.monotonic() - started
        stats = server.stats()["hubspot"]
        print(
            f"\nfull pull: {stats['requests']} requests in {elapsed:.1f} s, 429s: {stats['answered_429']}, "
            f"by route: {stats['by_route']}"
        )
        assert len(contacts) == expected_contacts
        assert email == expected_email
        assert stats["answered_429"] == 0 and stats["rate_limited"] == 0

        again = 0
        for stream in connector.streams():
            for batch in connector.pull(stream, cursors.get(stream)):
                again += len(batch.contacts) + len(batch.events) + len(batch.bad)
        assert again == 0
        connector.close()
