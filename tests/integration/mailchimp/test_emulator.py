"""The emulator's own rules (mailchimp.md §14 checklist), over real HTTP with plain requests."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

import pytest
import requests

from leadsync.sandbox.mailchimp.emulator import SANDBOX_API_KEY, MailchimpEmulator
from leadsync.sandbox.mailchimp.shapes import subscriber_hash
from leadsync.sandbox.server import SandboxServer
from tests.integration.mailchimp.conftest import connector_for, emulator_of, fresh_world, pull_all

AUTH = ("anystring", SANDBOX_API_KEY)


@pytest.fixture
def limited() -> Iterator[SandboxServer]:
    with SandboxServer.for_world(
        fresh_world(50),
        emulators=[MailchimpEmulator],
        ports={"mailchimp": 0},
        # each request held 1 s, so 14 fired together overlap even on a loaded machine (at 300 ms,
        # one run in many saw 12 served: the last threads started after the first had finished)
        extra={"mailchimp": {"processing_ms": 1000}},
    ) as running:
        yield running


def test_given_eleven_simultaneous_requests_when_served_then_extra_ones_get_429_some_bodiless(
    limited: SandboxServer,
) -> None:
    url = limited.base_url("mailchimp") + "/3.0/ping"
    answers: list[requests.Response] = []
    lock = threading.Lock()

    start = threading.Barrier(14)

    def call() -> None:
        start.wait()
        response = requests.get(url, auth=AUTH, timeout=10)
        with lock:
            answers.append(response)

    threads = [threading.Thread(target=call) for _ in range(14)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    refused = [r for r in answers if r.status_code == 429]
    assert sum(1 for r in answers if r.status_code == 200) <= 10 and refused
    assert any(not r.content for r in refused)  # mailchimp.md §9: sometimes without a body
    assert all(r.headers["Content-Type"].startswith("application/problem+json") for r in refused if r.content)


def test_given_requests_when_served_then_mailchimp_rules_hold(server: SandboxServer) -> None:
    base = server.base_url("mailchimp") + "/3.0"
    audience = next(iter(emulator_of(server).state.audiences.values()))
    member = next(iter(audience.members.values()))
    s = requests.Session()
    s.auth = AUTH
    assert s.get(f"{base}/lists/{audience.id}/members", params={"count": 1001}).status_code == 400
    page = s.get(
        f"{base}/lists/{audience.id}/members", params={"fields": "members.email_address,total_items"}
    ).json()
    assert set(page) == {"members", "total_items"} and len(page["members"]) == 10  # count defaults to 10
    assert set(page["members"][0]) == {"email_address"}
    # The email or the hash address the member (§4); number fields refuse text with Invalid Resource.
    assert s.get(f"{base}/lists/{audience.id}/members/{member.email}").json()["id"] == subscriber_hash(
        member.email
    )
    refused = s.patch(
        f"{base}/lists/{audience.id}/members/{member.id}", json={"merge_fields": {"EMPLOYEES": "lots"}}
    )
    assert refused.status_code == 400 and refused.json()["title"] == "Invalid Resource"
    assert refused.json()["errors"][0]["field"] == "EMPLOYEES"
    before = member.last_changed
    tagged = s.post(
        f"{base}/lists/{audience.id}/members/{member.id}/tags",
        json={"tags": [{"name": "x", "status": "active"}], "is_syncing": True},
    )
    assert tagged.status_code == 204 and tagged.content == b""
    assert member.last_changed > before  # every write moves last_changed
    exists = s.post(
        f"{base}/lists/{audience.id}/members", json={"email_address": member.email, "status": "subscribed"}
    )
    assert exists.json()["title"] == "Member Exists"
    upsert = s.put(
        f"{base}/lists/{audience.id}/members/{subscriber_hash('new@x.io')}",
        json={"email_address": "new@x.io", "status_if_new": "pending"},
    )
    assert upsert.json()["status"] == "pending"
    too_long = s.post(
        f"{base}/lists/{audience.id}/merge-fields", json={"name": "n", "type": "text", "tag": "ELEVENCHARS"}
    )
    assert too_long.status_code == 400
    trigger = s.get(f"{base}/ping", headers={"X-Trigger-Error": "APIKeyMissing"})
    assert trigger.status_code == 401


def test_given_debug_logging_when_pulling_then_key_never_logged(
    server: SandboxServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with connector_for(server) as connector:
        pull_all(connector)
        assert SANDBOX_API_KEY not in repr(connector) and SANDBOX_API_KEY not in repr(connector.settings)
    assert SANDBOX_API_KEY not in caplog.text
    assert SANDBOX_API_KEY.split("-")[0] not in caplog.text


def test_given_slow_server_at_default_limits_when_pulled_with_concurrency_10_then_no_429(
    limited: SandboxServer,
) -> None:
    host = limited.state.hosts["mailchimp"]
    host.emulator.processing_s = 0.02
    with connector_for(limited) as connector:
        pull_all(connector)
    stats = host.stats.snapshot()
    assert stats["answered_429"] == 0 and stats["in_flight_peak"] <= 10


def _summaries_against_activity(base: str, s: requests.Session) -> list[tuple[int, int, int, int]]:
    """Per campaign: report_summary's unique opens and subscriber clicks, and the members with an
    open and with a click in its email activity."""
    campaigns = s.get(f"{base}/campaigns", params={"count": 1000}).json()["campaigns"]
    out = []
    for campaign in campaigns:
        emails = s.get(f"{base}/reports/{campaign['id']}/email-activity", params={"count": 1000}).json()[
            "emails"
        ]
        acted = {
            action: {e["email_id"] for e in emails if any(a["action"] == action for a in e["activity"])}
            for action in ("open", "click")
        }
        summary = campaign["report_summary"]
        out.append(
            (summary["unique_opens"], summary["subscriber_clicks"], len(acted["open"]), len(acted["click"]))
        )
    return out


def test_the_campaign_lists_report_summary_counts_the_openers_and_clickers_as_the_world_moves_on(
    server: SandboxServer,
) -> None:
    base = server.base_url("mailchimp") + "/3.0"
    s = requests.Session()
    s.auth = AUTH
    before = _summaries_against_activity(base, s)
    assert before and any(opens for opens, _, _, _ in before)
    assert all(
        (opens, clicks) == (seen_opens, seen_clicks) for opens, clicks, seen_opens, seen_clicks in before
    )
    server.state.advance(days=3)
    after = _summaries_against_activity(base, s)
    assert sum(opens for opens, _, _, _ in after) > sum(opens for opens, _, _, _ in before)
    assert all(
        (opens, clicks) == (seen_opens, seen_clicks) for opens, clicks, seen_opens, seen_clicks in after
    )
