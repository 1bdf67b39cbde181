"""Acceptance 2-4 at scale: the 5,000-person world (seed 7) at Mailchimp's default limits.

One test, because building the world is the expensive part: a full pull brings every member of
every audience and all email activity, a second pull brings nothing, the sandbox saw no more TCP
connections than the configured concurrency (10), and pushing scores for every member costs
ceil(n / 500) batch-subscribe requests per audience plus one tag request per member whose tags
changed. Figures are printed (``pytest -s``) for the report.
"""

from __future__ import annotations

import math
import time

import pytest

from leadsync.connectors.base import ScoreUpdate
from leadsync.sandbox.mailchimp.emulator import MailchimpEmulator
from leadsync.sandbox.server import SandboxServer
from tests.integration.mailchimp.conftest import connector_for, emulator_of, fresh_world, pull_all


@pytest.mark.slow(37)
def test_given_5000_person_world_at_default_limits_when_pulled_and_pushed_then_complete_and_within_10_connections() -> (
    None
):
    world = fresh_world(5000, 7)
    with SandboxServer.for_world(world, emulators=[MailchimpEmulator], ports={"mailchimp": 0}) as server:
        host = server.state.hosts["mailchimp"]
        state = emulator_of(server).state
        members = {f"{a.id}:{k}" for a in state.audiences.values() for k in a.members}
        activity = sum(len(acts) for c in state.campaigns.values() for acts in c.activity.values())
        with connector_for(server) as connector:
            started = time.monotonic()
            batches, cursors = pull_all(connector)
            pull_s = time.monotonic() - started
            pulled = host.stats.snapshot()
            contacts = [c for b in batches["members"] for c in b.contacts]
            assert {c.remote_id for c in contacts} == members and len(contacts) == len(members)
            events = [e for b in batches["email_activity"] for e in b.events]
            assert len(events) == len({e.source_id for e in events}) == activity

            started = time.monotonic()
            again, _ = pull_all(connector, cursors)
            repull_s = time.monotonic() - started
            assert sum(len(b.contacts) + len(b.events) for bs in again.values() for b in bs) == 0

            connector.ensure_fields()
            before = host.stats.snapshot()["by_route"]
            updates = [
                ScoreUpdate(
                    c.remote_id,
                    c.email or "",
                    fields={
                        "affinity": i % 100,
                        "engagement": i % 37,
                        "stage": "investigation",
                        "grade": "B3",
                    },
                    tags_add=("leadsync_stage:investigation",) if i % 4 == 0 else (),
                )
                for i, c in enumerate(contacts)
            ]
            started = time.monotonic()
            report = connector.push(updates)
            push_s = time.monotonic() - started
            after = host.stats.snapshot()
        assert not report.failed
        per_list: dict[str, int] = {}
        for u in updates:
            per_list[u.remote_id.split(":")[0]] = per_list.get(u.remote_id.split(":")[0], 0) + 1
        routes = after["by_route"]
        batch_requests = routes["POST /3.0/lists/{list_id}"] - before.get("POST /3.0/lists/{list_id}", 0)
        tag_route = "POST /3.0/lists/{list_id}/members/{subscriber_hash}/tags"
        tag_requests = routes.get(tag_route, 0) - before.get(tag_route, 0)
        assert batch_requests == sum(math.ceil(n / 500) for n in per_list.values())
        assert tag_requests == sum(1 for u in updates if u.tags_add)
        # Acceptance 3: the connections the sandbox saw never exceeded the concurrency (10).
        assert after["connections_opened"] <= connector.concurrency
        assert after["connections_peak"] <= connector.concurrency
        print(
            f"\nmailchimp 5000/seed 7: members={len(members)} events={activity} "
            f"pull={pull_s:.1f}s requests={pulled['requests']} 429s={pulled['answered_429']} "
            f"in_flight_peak={pulled['in_flight_peak']} | repull={repull_s:.1f}s | "
            f"push={push_s:.1f}s batches={batch_requests} tags={tag_requests} | "
            f"total requests={after['requests']} 429s={after['answered_429']} "
            f"connections opened={after['connections_opened']} peak={after['connections_peak']}"
        )
