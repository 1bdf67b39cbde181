"""Issue 23, acceptance 3: echoes of leadsync's own writes cost nothing; other writers' changes count.

An unchanged re-sync right after a push re-scores 0 persons and makes 0 ActiveCampaign tracking-log
requests (our writes moved every written contact's modification stamp, so the incremental pulls
bring them all back). A change another writer makes after our push is still pulled and scored.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from leadsync.sync.store.models import Identity
from tests.integration.pipeline.harness import Leadsync, routes, serve
from tests.integration.pipeline.otherwriter import OtherWriter

TRACKING_LOGS = "GET /api/3/contacts/{id}/trackingLogs"


def _sync(lead: Leadsync) -> dict[str, Any]:
    result = json.loads(lead.run("sync", "--json").stdout)
    assert result["ok"], result
    return result


def _tracking_requests(server: Any) -> int:
    return routes(server)["activecampaign"].get(TRACKING_LOGS, 0)


def _identities(lead: Leadsync) -> dict[str, list[tuple[str, str]]]:
    """Per source, (remote id, email) of every identity."""
    engine = lead.engine()
    try:
        with engine.connect() as connection:
            found: dict[str, list[tuple[str, str]]] = {}
            for source, remote_id, email in connection.execute(
                select(Identity.source, Identity.remote_id, Identity.email).order_by(Identity.remote_id)
            ):
                found.setdefault(source, []).append((remote_id, email))
            return found
    finally:
        engine.dispose()


def test_an_unchanged_resync_rescores_nobody_and_reads_no_tracking_logs_but_other_writers_count(
    world: Any, tmp_path: Path
) -> None:
    with serve(world) as server:
        lead = Leadsync.create(server, tmp_path / "store")
        first = _sync(lead)
        assert all(r["written"] > 0 for r in first["push"]), first["push"]

        before = _tracking_requests(server)
        again = _sync(lead)
        pulled = {r["source"]: r["contacts"] for r in again["pull"]}
        # the echoes were pulled (our writes moved their stamps) ...
        assert all(pulled[r["source"]] > 0 for r in first["push"]), pulled
        # ... and cost nothing: no re-score, no tracking-log read, no write
        assert again["score"]["scored"] == 0, again["score"]
        assert _tracking_requests(server) - before == 0
        assert [r["planned"] for r in again["push"]] == [0, 0, 0]

        # Another writer changes one contact on each platform after our push (a few minutes later:
        # the sandbox's clock stands still unless moved, and a real platform's does not).
        httpx.post(
            server.base_url("hubspot") + "/_sandbox/clock/advance", json={"days": 0.005, "activity": False}
        ).raise_for_status()
        identities = _identities(lead)
        writer = OtherWriter(lead.config)
        hubspot_id, hubspot_email = identities["hubspot"][0]
        mailchimp_id, mailchimp_email = identities["mailchimp"][0]
        ac_id, ac_email = identities["activecampaign"][0]
        writer.hubspot_properties(hubspot_id, {"firstname": "Changed-by-someone"})
        writer.mailchimp_merge_fields(mailchimp_id, {"FNAME": "Changed-by-someone"})
        writer.activecampaign_contact(ac_id, first_name="Changed-by-someone")

        before = _tracking_requests(server)
        third = _sync(lead)
        pulled = {r["source"]: r["contacts"] for r in third["pull"]}
        assert all(pulled[name] >= 1 for name in ("hubspot", "mailchimp", "activecampaign")), pulled
        changed = {hubspot_email, mailchimp_email, ac_email}
        assert third["score"]["scored"] == len(changed), (third["score"], changed)
        # the ActiveCampaign contact another writer changed is still looked at for tracked events
        assert _tracking_requests(server) - before == 1
