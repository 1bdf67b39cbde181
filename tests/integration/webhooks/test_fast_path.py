"""The per-person fast path end to end over loopback: a person acts in the sandbox, the platform
sends its signed webhook, and their new scores appear on every platform that holds them; the
webhooks our own pushes cause cost no re-score and no write; an unknown person is logged and
pulled by the next scheduled run."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from leadsync.sandbox.world import generate_world
from leadsync.sync.pipeline import pull_sources
from leadsync.sync.store.models import Identity
from leadsync.sync.webhooks.signatures import hubspot_v3
from tests.integration.webhooks.live import Live

# (platform, what the person does): a pricing page view on HubSpot (its page-view counter's
# property change), a click in an ActiveCampaign campaign, an unsubscribe on Mailchimp.
ACTS = [
    ("hubspot", "page_view"),
    ("activecampaign", "email_click"),
    ("mailchimp", "email_unsubscribe"),
]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    made = Live.start(generate_world(60, 3), tmp_path_factory.mktemp("live"))
    try:
        made.sync()
        service = made.receive()
        made.send_webhooks_to(service.url)
        yield made
    finally:
        made.close()


def _person_on(live: Live, platform: str) -> str:
    """Someone on ``platform`` and at least one other platform, not used by another test yet."""
    used = live.__dict__.setdefault("_used", set())
    for person in live.server.state.world.persons:
        names = {str(p) for p in person.platforms}
        if (
            platform in names
            and len(names) >= 2
            and person.email not in used
            and person.email_on(platform) == person.email
        ):
            used.add(person.email)
            return person.email
    raise AssertionError(f"no fresh person on {platform}")


@pytest.mark.parametrize(("platform", "kind"), ACTS)
def test_person_acting_gets_new_scores_on_every_platform_holding_them(
    live: Live, platform: str, kind: str
) -> None:
    live.settle()
    email = _person_on(live, platform)
    before = live.scores(email)
    done_before = sum(1 for row in live.rows() if row.outcome == "rescored")
    for _ in range(3):  # three times: enough for engagement to move by whole points
        live.act(email, kind, platform, url="https://example.com/pricing")
    live.settle()
    after = live.scores(email)
    assert after != before, "the act changed nothing in the person's scores"
    assert sum(1 for row in live.rows() if row.outcome == "rescored") > done_before
    held = live.on_platforms(email)
    assert set(held) == live.holders(email) and len(held) >= 2
    for name, values in held.items():
        assert values == after, f"{name} holds {values}, the store scored {after}"


def test_echoes_of_our_own_pushes_cost_no_rescore_and_no_write(tmp_path: Path) -> None:
    fresh = Live.start(generate_world(40, 8), tmp_path)
    try:
        service = fresh.receive()
        fresh.send_webhooks_to(service.url)  # before the first push: every write comes back
        fresh.sync()
        writes = {name: stats["write_requests"] for name, stats in fresh.server.stats().items()}
        fresh.settle(timeout=60)
        rows = fresh.rows()
        kinds = {row.kind for row in rows}
        # HubSpot property changes, Mailchimp profile updates (sources.api on), ActiveCampaign
        # field updates and tag changes: the push's own writes, each delivered to the receiver
        assert {"contact.propertyChange", "profile", "update", "contact_tag_added"} <= kinds, kinds
        assert {row.outcome for row in rows} <= {"echo", "unchanged"}, fresh.outcomes()
        assert service.fastpath.counts["rescored_persons"] == 0
        assert service.fastpath.counts["written"] == 0
        assert {name: stats["write_requests"] for name, stats in fresh.server.stats().items()} == writes
    finally:
        fresh.close()


def test_unknown_person_is_logged_and_pulled_on_the_next_run(
    live: Live, caplog: pytest.LogCaptureFixture
) -> None:
    live.settle()
    hubspot = live.server.base_url("hubspot")
    created = httpx.post(
        hubspot + "/crm/v3/objects/contacts",
        headers={"Authorization": "Bearer " + live.config.source("hubspot").inline_secrets["token"]},
        json={"properties": {"email": "newcomer@acme.io", "firstname": "New", "jobtitle": "CFO"}},
    )
    created.raise_for_status()
    contact_id = created.json()["id"]
    body = json.dumps(
        [
            {
                "eventId": 9_000_001,
                "subscriptionType": "contact.creation",
                "objectId": int(contact_id),
                "occurredAt": 1,
            }
        ]
    )
    url = live.service.url + "/webhooks/hubspot"  # type: ignore[union-attr]
    stamp = str(int(time.time() * 1000))
    secret = live.config.source("hubspot").inline_secrets["webhook_secret"]
    with caplog.at_level(logging.WARNING, logger="leadsync.webhooks"):
        answer = httpx.post(
            url,
            content=body,
            headers={
                "X-HubSpot-Signature-v3": hubspot_v3(secret, "POST", url, body, stamp),
                "X-HubSpot-Request-Timestamp": stamp,
            },
        )
        assert answer.status_code == 200
        live.settle()
    assert [row.outcome for row in live.rows() if row.event_id == "9000001"] == ["unknown_person"]
    assert f"is about {contact_id}, who is not in the store" in caplog.text
    assert all(r.ok for r in pull_sources(live.engine, live.config, ["hubspot"]))
    with live.engine.connect() as connection:
        assert (
            connection.execute(
                select(Identity.email).where(Identity.source == "hubspot", Identity.remote_id == contact_id)
            ).scalar_one()
            == "newcomer@acme.io"
        )
