"""The tracking-log sweep under a request budget per run (issue 23): it carries on across runs from
its cursor until every contact has been read once, and reads the recently active first."""

from __future__ import annotations

from typing import Any

import httpx

from tests.integration.activecampaign.conftest import pull_all

ROUTE = "GET /api/3/contacts/{id}/trackingLogs"
BUDGET = 15


def _tracking_requests(server: Any) -> int:
    return server.stats()["activecampaign"]["by_route"].get(ROUTE, 0)


def _record(server: Any, method: str) -> Any:
    reply = httpx.request(method, server.base_url("activecampaign") + "/_sandbox/record", timeout=30)
    reply.raise_for_status()
    return reply.json()


def test_given_a_small_budget_when_syncing_run_after_run_then_the_sweep_resumes_until_every_contact_was_read_once_and_no_event_is_missed(
    server, connector_for
) -> None:
    state = server.state.hosts["activecampaign"].emulator.state
    contacts = len(state.contacts)
    assert contacts > 3 * BUDGET  # the sweep needs several runs
    cursors: dict[str, Any] = {}
    emitted: set[str] = set()
    runs, per_run = 0, []
    while True:
        runs += 1
        before = _tracking_requests(server)
        # a new connector each run: the sweep's progress lives in the committed cursor only
        batches, cursors = pull_all(connector_for(tracking_sweep_requests=BUDGET), cursors)
        emitted.update(e.source_id for b in batches["tracking_logs"] for e in b.events)
        per_run.append(_tracking_requests(server) - before)
        if "sweep" not in cursors["tracking_logs"]:
            break
        assert runs < 3 * contacts // BUDGET, "the sweep does not advance"
    # every contact's tracking logs read exactly once (nothing changed between runs: no follow-ups),
    # never more than the budget in one run (the pages of contact ids count against it too)
    assert sum(per_run) == contacts
    assert max(per_run) <= BUDGET
    assert runs >= contacts // BUDGET
    # 0 events missed compared with a full sweep in one run (no budget)
    everything = {e.source_id for b in pull_all(connector_for())[0]["tracking_logs"] for e in b.events}
    assert everything == {f"tracking:{log.id}" for logs in state.tracking_logs.values() for log in logs}
    assert emitted == everything
    # the sweep is complete: the next run reads no tracking logs
    before = _tracking_requests(server)
    pull_all(connector_for(tracking_sweep_requests=BUDGET), cursors)
    assert _tracking_requests(server) == before


def test_given_a_finished_sweep_when_the_next_one_starts_then_contacts_with_tracked_events_are_read_first(
    server, connector_for
) -> None:
    state = server.state.hosts["activecampaign"].emulator.state
    _, cursors = pull_all(connector_for())  # the first sweep, whole
    with_events = {str(contact) for contact, logs in state.tracking_logs.items() if logs}
    # recently active: the contacts with tracked events, and those with activities
    hot = set(cursors["tracking_logs"]["hot"])
    assert with_events and hot >= with_events and len(hot) < len(state.contacts)
    _record(server, "POST")
    # the next sweep is due at once; its first run has the budget for the recently active only
    pull_all(connector_for(tracking_sweep_requests=len(hot), tracking_sweep_hours=1e-9), cursors)
    paths = [r["path"] for r in _record(server, "DELETE")["requests"]]
    read = [p.split("/contacts/")[1].split("/")[0] for p in paths if p.endswith("/trackingLogs")]
    assert set(read) == hot
