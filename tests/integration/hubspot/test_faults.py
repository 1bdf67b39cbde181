"""Acceptance 6: with faults on, pull and push end in the same state as a clean run."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from leadsync.connectors.base import ScoreUpdate
from leadsync.connectors.hubspot.connector import HubSpotConnector
from leadsync.sandbox.hubspot.emulator import HubSpotEmulator
from leadsync.sandbox.server import SandboxServer
from leadsync.sandbox.world import generate_world
from tests.integration.hubspot.conftest import settings_for

FIELDS = ["leadsync_affinity", "leadsync_engagement", "leadsync_stage", "leadsync_grade", "lifecyclestage"]


def run(fault_body: dict | None) -> tuple[dict, set, dict, dict]:
    world = generate_world(150, 11)
    with SandboxServer.for_world(
        world, emulators=[HubSpotEmulator], ports={"hubspot": 0}, rate_limits=False
    ) as server:
        base = server.base_url("hubspot")
        if fault_body is not None:
            assert httpx.post(f"{base}/_sandbox/faults", json=fault_body).status_code == 200
        connector = HubSpotConnector(
            settings_for(base, rate_limit=False, rate_limited_wait_s=0.05, backoff_initial_s=0.02)
        )
        contacts: dict[str, object] = {}
        events: set[str] = set()
        for stream in connector.streams():
            for batch in connector.pull(stream, None):
                for c in batch.contacts:
                    contacts[c.remote_id] = (c.email, c.lifecycle_stage, c.job_title)
                events.update(e.source_id for e in batch.events)
        ids = sorted(contacts, key=int)
        updates = [
            ScoreUpdate(
                i,
                "",
                {"affinity": int(i) % 100, "engagement": 33, "stage": "investigation", "grade": "C3"},
                lifecycle="lead",
            )
            for i in ids
        ]
        report = connector.push(updates)
        httpx.delete(f"{base}/_sandbox/faults")
        state = {
            cid: {f: o.properties.get(f) for f in FIELDS}
            for cid, o in server.state.hosts["hubspot"].emulator.state.objects["contacts"].items()
        }
        faults = server.stats()["hubspot"]["faults_injected"]
        connector.close()
    assert not report.failed
    return contacts, events, state, faults


@pytest.fixture(scope="module")
def clean() -> Iterator[tuple[dict, set, dict, dict]]:
    yield run(None)


@pytest.mark.parametrize("retry_after", [None, 1])
def test_given_429s_500s_and_dropped_connections_when_pulling_and_pushing_then_the_end_state_matches_a_clean_run(
    clean, retry_after
):
    faults = {"rate_limit": 0.2, "server_error": 0.05, "drop": 0.03, "retry_after": retry_after, "seed": 5}
    contacts, events, state, injected = run(faults)
    assert (
        injected.get("rate_limit", 0) > 0
        and injected.get("server_error", 0) > 0
        and injected.get("drop", 0) > 0
    )
    assert contacts == clean[0]
    assert events == clean[1]
    assert state == clean[2]
