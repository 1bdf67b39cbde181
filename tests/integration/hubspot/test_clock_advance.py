"""Acceptance 3: after ``POST /_sandbox/clock/advance`` with new activity, the next pull brings
exactly the contacts HubSpot changed and the email events it recorded meanwhile (ground truth: the
emulator's own records)."""

from __future__ import annotations

from datetime import datetime

import httpx

from leadsync.connectors.hubspot import normalize
from leadsync.connectors.hubspot.connector import HubSpotConnector
from leadsync.sandbox.hubspot.emulator import HubSpotEmulator
from leadsync.sandbox.server import SandboxServer
from leadsync.sandbox.world import generate_world
from tests.integration.hubspot.conftest import settings_for
from tests.integration.hubspot.test_pull_push import pull_all


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def test_after_an_admin_clock_advance_the_next_pull_brings_exactly_what_changed_on_the_portal():
    with SandboxServer.for_world(
        generate_world(300, 13), emulators=[HubSpotEmulator], ports={"hubspot": 0}, rate_limits=False
    ) as server:
        emulator: HubSpotEmulator = server.state.hosts["hubspot"].emulator
        base = server.base_url("hubspot")
        with HubSpotConnector(settings_for(base, rate_limit=False)) as connector:
            cursors: dict[str, object] = {}
            pull_all(connector, cursors)
            before = server.state.clock.now()
            events_before = len(emulator.state.email_events)

            advanced = httpx.post(f"{base}/_sandbox/clock/advance", json={"days": 14})
            assert advanced.status_code == 200, advanced.text
            assert advanced.json()["events"] > 0, "nothing happened in 14 days: the test proves nothing"

            contacts, events, bad = pull_all(connector, cursors)

        changed = {
            c.properties["email"]
            for c in emulator.state.objects["contacts"].values()
            if _time(c.properties["lastmodifieddate"]) > before
        }
        assert changed, "no contact changed: the test proves nothing"
        assert not bad
        assert sorted(c.email for c in contacts) == sorted(changed)  # exactly once each, nobody else

        new_rows = emulator.state.email_events[events_before:]
        scored = {
            e.source_id
            for row in new_rows
            if (e := normalize.email_event(row, source="hubspot", contact_id="?")) is not None
        }
        pulled_email = [e.source_id for e in events if e.source_id.startswith("email:")]
        assert sorted(pulled_email) == sorted(scored)
        assert scored, "no new email event: the test proves nothing"
        # counter-derived events (page views, forms) come only from the contacts that changed
        by_id = {c.remote_id: c.email for c in contacts}
        assert all(
            by_id.get(e.remote_contact_id) in changed
            for e in events
            if e.source_id.startswith(("pv:", "form:"))
        )
