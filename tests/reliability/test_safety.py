"""Safety of what sales see, through the real CLI: a lifecycle stage set ahead on the platform is
never moved back, a field leadsync does not own is never written, a tag leadsync did not create is
never removed (HubSpot, Mailchimp and ActiveCampaign).

Issue "reliability" (Build: Safety of what sales see).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import httpx

from tests.reliability.figures import Figures
from tests.reliability.harness import AC_TOKEN, HUBSPOT_TOKEN, MAILCHIMP_KEY, Cli, marker_sandbox


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


def test_an_activecampaign_tag_leadsync_did_not_create_survives_syncs_that_remove_its_own(
    world: Any, tmp_path: Path, figures: Figures
) -> None:
    with marker_sandbox(world) as server:
        cli = Cli.make(server, tmp_path, figures)
        base = server.base_url("activecampaign")
        ac = httpx.Client(base_url=f"{base}/api/3", headers={"Api-Token": AC_TOKEN}, timeout=10)
        contacts = sorted(server.state.hosts["activecampaign"].emulator.state.contacts)
        assert contacts
        # Set by sales through the API: one plain tag, and one that looks like leadsync's own
        # (leadsync must know what it created, not guess from the name).
        foreign = ["VIP by sales", "leadsync_stage_partner"]
        tag_ids = []
        for name in foreign:
            made = ac.post("/tags", json={"tag": {"tag": name, "tagType": "contact", "description": "sales"}})
            assert made.status_code == 201, made.text
            tag_ids.append(made.json()["tag"]["id"])
        for contact_id in contacts:
            for tag_id in tag_ids:
                tagged = ac.post(
                    "/contactTags", json={"contactTag": {"contact": str(contact_id), "tag": tag_id}}
                )
                assert tagged.status_code == 201, tagged.text

        # Scores follow the sandbox clock, so new activity (and time passing) moves stages.
        cli.score_now = httpx.get(f"{base}/_sandbox/clock", timeout=10).json()["now"]
        assert cli.json("sync")["ok"]
        for _ in range(2):  # new activity in between: stages move, leadsync swaps its own tags
            advanced = httpx.post(f"{base}/_sandbox/clock/advance", json={"days": 30}, timeout=60)
            assert advanced.status_code == 200, advanced.text
            cli.score_now = advanced.json()["now"]
            assert cli.json("sync")["ok"]

        removed = server.stats()["activecampaign"]["by_route"]
        deletes = sum(
            count for route, count in removed.items() if route.startswith("DELETE") and "contactTags" in route
        )
        assert deletes > 0, f"leadsync removed none of its own tags: the test proves nothing ({removed})"
        for contact_id in contacts:
            names = ac.get(f"/contacts/{contact_id}/contactTags").json()["contactTags"]
            held = {
                server.state.hosts["activecampaign"].emulator.state.tags[int(row["tag"])].tag for row in names
            }
            assert set(foreign) <= held, (contact_id, held)
            assert any(name.lower().startswith("leadsync_") and name not in foreign for name in held), held
