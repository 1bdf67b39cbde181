"""Safety of what sales see, through the real CLI: a lifecycle stage set ahead on the platform is
never moved back, a field leadsync does not own is never written, a tag leadsync did not create is
never removed (HubSpot and Mailchimp; ActiveCampaign tags are not covered here yet).

Issue "reliability" (Build: Safety of what sales see).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import httpx

from tests.reliability.figures import Figures
from tests.reliability.harness import HUBSPOT_TOKEN, MAILCHIMP_KEY, Cli, marker_sandbox


def test_lifecycle_ahead_foreign_fields_and_foreign_tags_are_left_alone(
    world: Any, tmp_path: Path, figures: Figures
) -> None:
    with marker_sandbox(world) as server:
        cli = Cli.make(server, tmp_path, figures)
        both = [p.email for p in world.persons if {"hubspot", "mailchimp"} <= set(p.platforms)][:3]
        assert both
        person = f"{server.base_url('hubspot')}/_sandbox/persons/"
        hubspot = httpx.Client(
            base_url=server.base_url("hubspot"), headers={"Authorization": f"Bearer {HUBSPOT_TOKEN}"}
        )
        mailchimp = httpx.Client(base_url=f"{server.base_url('mailchimp')}/3.0", auth=("any", MAILCHIMP_KEY))
        for email in both:
            held = httpx.get(person + email).json()["platforms"]
            contact_id = held["hubspot"]["id"]
            answer = hubspot.patch(
                f"/crm/v3/objects/contacts/{contact_id}",
                json={"properties": {"lifecyclestage": "customer", "jobtitle": "Set by sales"}},
            )
            assert answer.status_code == 200, answer.text
            digest = hashlib.md5(email.lower().encode()).hexdigest()  # noqa: S324 - Mailchimp's member id
            for list_id in held["mailchimp"]["lists"]:
                tagged = mailchimp.post(
                    f"/lists/{list_id}/members/{digest}/tags",
                    json={"tags": [{"name": "VIP by sales", "status": "active"}]},
                )
                assert tagged.status_code in (200, 204), tagged.text

        assert cli.json("sync")["ok"]
        server.state.advance(days=20)  # new activity: scores and tags change, a second push runs
        assert cli.json("sync")["ok"]

        for email in both:
            held = httpx.get(person + email).json()["platforms"]
            props = held["hubspot"]["properties"]
            assert props["lifecyclestage"] == "customer", (email, props["lifecyclestage"])
            assert props["jobtitle"] == "Set by sales"
            assert any(k.startswith("leadsync_") for k in props), (
                "leadsync wrote nothing: the test proves nothing"
            )
            for member in held["mailchimp"]["lists"].values():
                assert "VIP by sales" in member["tags"], member["tags"]
        state = httpx.get(f"{server.base_url('hubspot')}/_sandbox/hubspot/state").json()
        assert state["backward_lifecycle_attempts"] == [], state["backward_lifecycle_attempts"]
