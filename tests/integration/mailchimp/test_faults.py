"""Acceptance 5: with bodiless 429s, 5xx and dropped connections, the end state equals a clean run's."""

from __future__ import annotations

from typing import Any

from leadsync.connectors.base import ScoreUpdate
from leadsync.sandbox.faults import FaultKind, FaultSettings
from leadsync.sandbox.mailchimp.emulator import MailchimpEmulator
from leadsync.sandbox.server import SandboxServer
from tests.integration.mailchimp.conftest import connector_for, emulator_of, fresh_world, pull_all

FAULTS = {
    FaultKind.BODILESS_RATE_LIMIT: 0.06,
    FaultKind.SERVER_ERROR: 0.05,
    FaultKind.DROP: 0.04,
    FaultKind.RESET: 0.02,
}


def _run(faulty: bool) -> tuple[dict[str, Any], dict[str, Any], dict[str, int]]:
    with SandboxServer.for_world(
        fresh_world(150), emulators=[MailchimpEmulator], ports={"mailchimp": 0}, rate_limits=False
    ) as server:
        host = server.state.hosts["mailchimp"]
        if faulty:
            host.faults.configure(FaultSettings(rates=dict(FAULTS), seed=11), [])
        with connector_for(server) as connector:
            batches, _ = pull_all(connector)
            contacts = [c for b in batches["members"] for c in b.contacts]
            updates = [
                ScoreUpdate(
                    c.remote_id,
                    c.email or "",
                    fields={"affinity": i % 100, "grade": "C3"},
                    tags_add=(f"leadsync_stage:{('awareness', 'decision')[i % 2]}",),
                )
                for i, c in enumerate(contacts)
            ]
            report = connector.push(updates)
        pulled = {
            "contacts": sorted((c.remote_id, c.email, c.job_title, c.company_size) for c in contacts),
            "events": sorted(e.source_id for bs in batches.values() for b in bs for e in b.events),
            "bad": sum(len(b.bad) for bs in batches.values() for b in bs),
            "failed": [f.remote_id for f in report.failed],
        }
        state = emulator_of(server).state
        written = {
            f"{a.id}:{k}": (m.status, sorted(m.merge_fields.items(), key=str), sorted(m.tags))
            for a in state.audiences.values()
            for k, m in a.members.items()
        }
        return pulled, written, dict(host.stats.snapshot()["faults_injected"])


def test_given_faults_when_pull_and_push_then_same_end_state_as_clean_run() -> None:
    clean_pulled, clean_written, _ = _run(faulty=False)
    pulled, written, injected = _run(faulty=True)
    assert sum(injected.values()) >= 10, injected  # the faults really happened
    assert pulled == clean_pulled
    assert written == clean_written
