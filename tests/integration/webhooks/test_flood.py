"""A flood of deliveries: the queue has a bound, past it the receiver answers 429, nothing crashes,
and every delivery it accepted is processed. (The 10,000-delivery flood and its peak memory are
measured by ``make bench``: bench/webhooks.py.)"""

from __future__ import annotations

import asyncio
from pathlib import Path
from urllib.parse import urlencode

import httpx
from sqlalchemy import select

from leadsync.config.settings import WebhooksConfig
from leadsync.sandbox.webhooks import SANDBOX_WEBHOOK_SECRETS
from leadsync.sandbox.world import generate_world
from leadsync.sync.store.models import Identity
from tests.integration.webhooks.live import Live

DELIVERIES = 300
BOUND = 40


async def _flood(url: str, bodies: list[bytes]) -> list[int]:
    limits = httpx.Limits(max_connections=64)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        answers = await asyncio.gather(*(client.post(url, content=body) for body in bodies))
    return [answer.status_code for answer in answers]


def test_flood_is_bounded_answers_429_and_processes_every_accepted_delivery(tmp_path: Path) -> None:
    live = Live.start(generate_world(40, 6), tmp_path)
    try:
        live.sync()
        live.config = live.config.model_copy(update={"webhooks": WebhooksConfig(port=0, queue_limit=BOUND)})
        service = live.receive()
        with live.engine.connect() as connection:
            contacts = list(
                connection.execute(
                    select(Identity.remote_id, Identity.email).where(Identity.source == "activecampaign")
                ).all()
            )
        bodies = [
            urlencode(
                {
                    "type": "open",
                    "date_time": f"2026-12-04T06:00:{n:05d}",
                    "initiated_from": "public",
                    "contact[id]": contacts[n % len(contacts)].remote_id,
                    "contact[email]": contacts[n % len(contacts)].email,
                }
            ).encode()
            for n in range(DELIVERIES)
        ]
        # a slow platform: the queue fills faster than the fast path can read contacts
        httpx.post(
            live.server.base_url("activecampaign") + "/_sandbox/latency", json={"ms": 300}
        ).raise_for_status()
        token = SANDBOX_WEBHOOK_SECRETS["activecampaign"]["webhook_token"]
        statuses = asyncio.run(_flood(f"{service.url}/webhooks/activecampaign/{token}", bodies))
        assert set(statuses) <= {200, 429}, sorted(set(statuses))
        accepted = statuses.count(200)
        assert statuses.count(429) > 0 and accepted >= BOUND
        live.settle(timeout=120)
        rows = live.rows()
        assert len(rows) == accepted  # every accepted delivery, once
        assert {row.status for row in rows} == {"done"}
        assert service.receiver.waiting == 0
        assert service.receiver.counts["throttled"] == statuses.count(429)
    finally:
        live.close()
