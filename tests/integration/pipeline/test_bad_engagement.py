"""Issue 21, acceptance 6: bad engagement records, one ``sync``, the rest goes on.

* a HubSpot meeting with no associated contact: quarantined with that reason (created through the
  emulator's own ``POST /crm/v3/objects/meetings``, as a client would, without associations);
* a HubSpot meeting whose outcome HubSpot reports as a value leadsync does not know (a portal's
  custom outcome; ``direct``: written into the emulator's state, its API refuses unknown options):
  stored as ``meeting_booked`` with the documented default outcome ``scheduled``
  (``connectors.records.meeting_outcome``), the platform's word kept as ``platform_outcome``;
* a HubSpot form submission without a page URL (made through the API: the Airbyte fixture has
  none; ``direct``: the emulator records submissions from the world only): stored, without a URL;
* a Mailchimp order for an email that no member has (``direct``: the emulator has no order-create
  route): quarantined with that reason.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from leadsync.sandbox.hubspot.activity import form_id
from leadsync.sandbox.hubspot.emulator import SANDBOX_TOKEN
from leadsync.sandbox.hubspot.state import iso, ms
from leadsync.sandbox.mailchimp.state import Order
from leadsync.sandbox.mailchimp.worldmap import STORE_ID
from leadsync.sync.store.models import Event, Quarantine
from tests.integration.pipeline.harness import Leadsync, serve


def _inject(server: Any) -> dict[str, str]:
    hubspot = server.state.hosts["hubspot"].emulator
    base = server.base_url("hubspot")
    now = hubspot.clock.now()
    orphan = httpx.post(
        f"{base}/crm/v3/objects/meetings",
        headers={"Authorization": f"Bearer {SANDBOX_TOKEN}"},
        json={"properties": {"hs_timestamp": iso(now - timedelta(days=2)), "hs_meeting_title": "Nobody's meeting",
                             "hs_meeting_outcome": "COMPLETED"}},
    )  # fmt: skip
    assert orphan.status_code == 201, orphan.text
    state = hubspot.state
    with state.lock:
        contacts = sorted(state.objects["contacts"].values(), key=lambda c: int(c.id))
        odd_contact, form_contact = contacts[0], contacts[1]
        odd = state.create(
            "meetings",
            {"hs_timestamp": iso(now - timedelta(days=3)), "hs_meeting_title": "Custom outcome",
             "hs_meeting_outcome": "PENDING_REVIEW"},
            now - timedelta(days=4),
        )  # fmt: skip
        odd.associations["contacts"] = [odd_contact.id]
        state.forms.setdefault(
            "api-lead", {"id": form_id("api-lead"), "name": "api-lead", "createdAt": now, "updatedAt": now}
        )
        conversion = str(uuid.uuid4())
        state.form_submissions.setdefault(form_contact.id, []).append(
            {"conversion-id": conversion, "timestamp": ms(now - timedelta(hours=5)), "form-id": form_id("api-lead"),
             "portal-id": 0, "title": "api-lead", "form-type": "HUBSPOT", "meta-data": []}
        )  # fmt: skip
        count = int(form_contact.properties.get("num_conversion_events") or 0) + 1
        form_contact.properties["num_conversion_events"] = str(count)
        form_contact.properties["recent_conversion_date"] = iso(now - timedelta(hours=5))
        state.touch(form_contact, now - timedelta(hours=5))
    mailchimp = server.state.hosts["mailchimp"].emulator.state
    with mailchimp.lock:
        mailchimp.orders.append(
            Order(id="order-of-a-stranger", store_id=STORE_ID, email="stranger@nowhere.example.org",
                  customer_id="stranger", total=99.0, currency="USD", processed_at=now - timedelta(days=1))
        )  # fmt: skip
    return {
        "orphan": orphan.json()["id"],
        "odd": odd.id,
        "odd_contact": odd_contact.id,
        "form_contact": form_contact.id,
        "conversion": conversion,
    }


def test_given_bad_engagement_records_when_synced_then_each_is_quarantined_or_defaulted_and_the_rest_goes_on(
    world: Any, tmp_path: Path
) -> None:
    with serve(world) as server:
        ids = _inject(server)
        lead = Leadsync.create(server, tmp_path / "lead")
        done = lead.run("sync")
    assert done.returncode == 0
    engine = lead.engine()
    try:
        with engine.connect() as connection:
            held = {
                (row.source, row.stream, row.remote_id): row.reason
                for row in connection.execute(select(Quarantine)).all()
            }
            events = connection.execute(select(Event)).all()
    finally:
        engine.dispose()
    by_id = {(e.source, e.source_id): e for e in events}
    # quarantined, with their reasons
    assert "has no associated contact" in held[("hubspot", "meetings", ids["orphan"])]
    order = held[("mailchimp", "orders", f"order:{STORE_ID}:order-of-a-stranger")]
    assert "no member of audience" in order and "stranger@" not in order  # the reason names no email
    assert not any(e.source_id.startswith(f"meeting:{ids['orphan']}:") for e in events)
    # mapped with the documented default
    odd = by_id[("hubspot", f"meeting:{ids['odd']}:{ids['odd_contact']}")]
    assert (odd.type, odd.properties["outcome"], odd.properties["platform_outcome"]) == (
        "meeting_booked", "scheduled", "PENDING_REVIEW",
    )  # fmt: skip
    form = by_id[("hubspot", f"form:{ids['form_contact']}:{ids['conversion']}")]
    assert (form.type, form.url, form.properties["form"]) == ("form_submit", None, "api-lead")
    # the rest of the sync went on: every platform's engagement arrived
    kinds = {(e.source, e.type) for e in events}
    for expected in (("hubspot", "meeting_booked"), ("hubspot", "call"), ("hubspot", "email_open"),
                     ("mailchimp", "purchase"), ("mailchimp", "email_open"), ("activecampaign", "email_open")):  # fmt: skip
        assert expected in kinds, expected
    assert len(held) == 2, held
