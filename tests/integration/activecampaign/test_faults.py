"""Acceptance 5: with faults on, pull and push end in the same state as a clean run."""

from __future__ import annotations

from leadsync.connectors.activecampaign.connector import ActiveCampaignConnector
from tests.integration.activecampaign.conftest import FAST, admin, api_url, make_settings, pull_all, serve
from tests.integration.activecampaign.test_push import _updates
from tests.worlds import private_copy

NOISY = {
    "rates": {"rate_limit": 0.08, "server_error": 0.05, "drop": 0.03, "reset": 0.03, "malformed": 0.03},
    "server_error_status": 503,  # activecampaign.md §8: 503 at the limit in older reports
    "seed": 11,
}


def _records(batches):
    return {
        stream: (
            sorted((c.remote_id, c.email, c.job_title, str(c.updated_at)) for b in bs for c in b.contacts),
            sorted((e.source_id, e.type.value, str(e.occurred_at)) for b in bs for e in b.events),
        )
        for stream, bs in batches.items()
    }


def _written_state(server):
    emulator = server.state.hosts["activecampaign"].emulator
    return {
        c.email: emulator.inspect(c.email)["fields"] | {"tags": sorted(emulator.inspect(c.email)["tags"])}
        for c in emulator.state.contacts.values()
    }


def test_given_faults_on_when_pulling_and_pushing_then_the_result_equals_a_clean_run(small_world) -> None:
    outcomes = []
    for noisy in (False, True):
        with serve(private_copy(small_world)) as server:
            connector = ActiveCampaignConnector(
                make_settings(api_url(server), options={**FAST, "max_attempts": 12})
            )
            with connector:
                if noisy:
                    admin(server, "POST", "/_sandbox/faults", json=NOISY)
                pulled, _ = pull_all(connector)
                contacts = [c for b in pulled["contacts"] for c in b.contacts]
                report_a = connector.push(_updates(contacts))
                if noisy:  # the bulk-import limit answered with HTTP 400 (§7), twice in a row
                    admin(
                        server,
                        "POST",
                        "/_sandbox/faults",
                        json={
                            "paths": "/import/bulk_import$",
                            "queue": [{"kind": "bulk_import_limit", "count": 2}],
                        },
                    )
                report_b = connector.push(_updates(contacts, stage="action"))
                faults = server.stats()["activecampaign"]["faults_injected"]
                outcomes.append(
                    (_records(pulled), report_a.failed, report_b.failed, _written_state(server), faults)
                )
    clean, noisy_run = outcomes
    assert noisy_run[4].get("bulk_import_limit") == 2 and sum(noisy_run[4].values()) > 20
    assert noisy_run[0] == clean[0]
    assert noisy_run[1] == clean[1] == [] and noisy_run[2] == clean[2] == []
    assert noisy_run[3] == clean[3]
