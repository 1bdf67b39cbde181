"""Acceptance 2 and 3 at scale: the 5,000-person world (seed 7) at ActiveCampaign's default limits.

Figures are printed (run with ``-s``) and asserted: no 429, every record, a second pull empty,
ceil(n / 250) bulk imports. Tracking logs need one request per contact (activecampaign.md §5: no
account-wide read); at 5 requests/second that stream alone takes longer than the suite allows,
so it is pulled with the sandbox's limits off and its request count reported instead.
"""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime

import pytest

from leadsync.connectors.activecampaign.connector import ActiveCampaignConnector
from leadsync.connectors.activecampaign.writeback import Writer
from leadsync.connectors.base import ScoreUpdate
from leadsync.sandbox.world import generate_world
from tests.integration.activecampaign.conftest import api_url, make_settings, serve

pytestmark = [pytest.mark.slow(220), pytest.mark.timeout(900)]  # waits on the 5 requests/s cap
REAL_LIMITS = {"import_poll_s": 0.5}  # requests_per_second defaults to 5 (§8)


def _pull(connector, stream, cursor=None):
    contacts, events, bad, last = [], [], [], cursor
    for batch in connector.pull(stream, cursor):
        contacts += batch.contacts
        events += batch.events
        bad += batch.bad
        last = batch.cursor if batch.cursor is not None else last
    return contacts, events, bad, last


def test_given_the_5000_person_world_at_default_limits_when_pulling_and_pushing_then_everything_arrives_without_a_429() -> (
    None
):
    world = generate_world(5000, 7)
    with serve(world, rate_limits=True) as server:
        emulator = server.state.hosts["activecampaign"].emulator
        state = emulator.state
        figures: dict[str, object] = {}
        with ActiveCampaignConnector(make_settings(api_url(server), options=dict(REAL_LIMITS))) as connector:
            cursors: dict[str, object] = {}
            started, before = time.monotonic(), server.stats()["activecampaign"]["requests"]
            contacts, _, bad, cursors["contacts"] = _pull(connector, "contacts")
            _, activities, bad2, cursors["activities"] = _pull(connector, "activities")
            _, deals, bad3, cursors["deals"] = _pull(connector, "deals")
            figures["full pull s"] = round(time.monotonic() - started, 1)
            figures["full pull requests"] = server.stats()["activecampaign"]["requests"] - before
            assert not bad + bad2 + bad3
            assert len({c.remote_id for c in contacts}) == len(contacts) == len(state.contacts)
            assert len({e.source_id for e in activities}) == len(activities) == len(state.activities)
            assert len(deals) == len(state.deals)

            started, before = time.monotonic(), server.stats()["activecampaign"]["requests"]
            again = 0
            for stream, cursor in cursors.items():
                got_contacts, got_events, _, _ = _pull(connector, stream, cursor)
                again += len(got_contacts) + len(got_events)
            figures["second pull requests"] = server.stats()["activecampaign"]["requests"] - before
            assert again == 0

            # Acceptance 3: scores for every contact.
            scored_at = datetime(2026, 11, 1, tzinfo=UTC)
            updates = [
                ScoreUpdate(
                    c.remote_id,
                    c.email or "",
                    {"affinity": int(c.remote_id) % 100, "grade": "C3", "scored_at": scored_at},
                    tags_add=("leadsync_stage_awareness",),
                )
                for c in contacts
            ]
            routes_before = dict(server.stats()["activecampaign"]["by_route"])
            started = time.monotonic()
            report = connector.push(updates)
            figures["push s"] = round(time.monotonic() - started, 1)
            routes = server.stats()["activecampaign"]["by_route"]

            def delta(route: str) -> int:
                return routes.get(route, 0) - routes_before.get(route, 0)

            figures["push requests"] = report.requests
            figures["bulk imports"] = delta("POST /api/3/import/bulk_import")
            figures["status polls"] = delta("GET /api/3/import/info")
            figures["provisioning"] = (
                delta("GET /api/3/fields") + delta("POST /api/3/fields") + delta("POST /api/3/fieldRels")
            )
            assert not report.failed and len(report.written) == len(updates)
            assert figures["bulk imports"] == math.ceil(len(updates) / 250)
            assert (
                report.requests == figures["bulk imports"] + figures["status polls"] + figures["provisioning"]
            )

            # Read back through the API: every contact's values (side-loaded, 100 a page) and the tag.
            ids = Writer(connector).ensure_fields()
            values: dict[str, dict[str, str]] = {}
            for page in connector._pages(connector_contacts_spec()):
                for item in page.body.get("fieldValues") or []:
                    values.setdefault(item["contact"], {})[item["field"]] = item["value"]
            for update in updates:
                got = values[update.remote_id]
                assert got[str(ids["affinity"])] == str(update.fields["affinity"])
                assert got[str(ids["grade"])] == "C3"
                assert datetime.fromisoformat(got[str(ids["scored_at"])]) == scored_at
            tag = connector.request(
                "GET", "tags", params={"filters[search][eq]": "leadsync_stage_awareness"}
            ).body["tags"][0]
            tagged = connector.request("GET", "contacts", params={"tagid": tag["id"], "limit": 1}).body[
                "meta"
            ]["total"]
            assert int(tagged) == len(updates)
        stats = server.stats()["activecampaign"]
        figures["429s"] = stats["answered_429"]
        assert stats["answered_429"] == 0 and stats["rate_limited"] == 0

        # Tracking logs: one request per contact; measured with the sandbox's limits off.
        emulator.options.rate_limits = False
        with ActiveCampaignConnector(
            make_settings(api_url(server), options={"requests_per_second": 0})
        ) as fast:
            before = server.stats()["activecampaign"]["requests"]
            _, tracking, _, _ = _pull(fast, "tracking_logs")
            figures["tracking_logs requests"] = server.stats()["activecampaign"]["requests"] - before
            assert len(tracking) == sum(len(v) for v in state.tracking_logs.values())
        figures["contacts"], figures["activities"], figures["deals"], figures["tracking logs"] = (
            len(contacts),
            len(activities),
            len(deals),
            len(tracking),
        )
        print("\nActiveCampaign 5000/7:", figures)


def connector_contacts_spec():
    from leadsync.connectors.activecampaign.streams import CONTACTS

    return CONTACTS
