"""Email activity is handed over campaign by campaign, in order; so a campaign's later pages are read
before the first pages of the campaigns after it. In submission order they queued behind those, and
the hand-over waited on the oldest campaign while newer ones were read (issue 23's timeline)."""

from __future__ import annotations

import dataclasses
import re

import httpx

from leadsync.connectors.mailchimp import streams as S
from leadsync.sandbox.mailchimp.emulator import MailchimpEmulator
from leadsync.sandbox.server import SandboxServer

from .conftest import connector_for, fresh_world

ACTIVITY = re.compile(r"/reports/([^/]+)/email-activity")


def _recorded(server: SandboxServer, method: str) -> list[dict[str, str]]:
    reply = httpx.request(method, server.base_url("mailchimp") + "/_sandbox/record", timeout=30)
    reply.raise_for_status()
    return reply.json().get("requests", []) if method == "DELETE" else []


def test_a_campaign_s_later_pages_are_read_before_the_next_campaign_s_first(monkeypatch) -> None:
    # small pages, so that each campaign has several; one connection, so the order is the queue's
    monkeypatch.setattr(S, "EMAIL_ACTIVITY", dataclasses.replace(S.EMAIL_ACTIVITY, page_size=20))
    with SandboxServer.for_world(
        fresh_world(),
        emulators=[MailchimpEmulator],
        ports={"mailchimp": 0},
        rate_limits=False,
        latency_ms=5,
    ) as server:
        _recorded(server, "POST")
        with connector_for(server, concurrency=1) as connector:
            batches = list(connector.pull("email_activity", None))
        requests = _recorded(server, "DELETE")
    order = [m.group(1) for r in requests if (m := ACTIVITY.search(r["path"].split("?")[0]))]
    handed_over = [batch.events[0].properties["campaign"] for batch in batches if batch.events]
    pages = {campaign: order.count(campaign) for campaign in handed_over}
    assert sum(n > 1 for n in pages.values()) >= 3, f"too few campaigns with several pages: {pages}"
    # each campaign's pages one after another, in the order the campaigns are handed over
    runs = [campaign for index, campaign in enumerate(order) if index == 0 or order[index - 1] != campaign]
    assert runs == [c for c in handed_over if c in pages], order
