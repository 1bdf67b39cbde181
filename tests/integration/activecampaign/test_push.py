"""Write-back end to end: fields provisioned once, bulk import in 250s, values and tags read back."""

from __future__ import annotations

import math
from datetime import UTC, datetime

from leadsync.connectors.activecampaign.streams import FIELDS
from leadsync.connectors.activecampaign.writeback import Writer
from leadsync.connectors.base import ScoreUpdate
from tests.integration.activecampaign.conftest import api_url, pull_all

SCORED_AT = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def _updates(contacts, *, stage="decision"):
    return [
        ScoreUpdate(
            remote_id=c.remote_id,
            email=c.email,
            fields={
                "affinity": 40 + int(c.remote_id) % 50,
                "engagement": 12.5,
                "stage": stage,
                "grade": "B2",
                "lifecycle": "lead",
                "reason": "opened 3 emails",
                "scored_at": SCORED_AT,
            },
            tags_add=(f"leadsync_stage_{stage}",),
        )
        for c in contacts
    ]


def _read_back(connector, remote_id):
    values = connector.request("GET", f"contacts/{remote_id}/fieldValues").body["fieldValues"]
    rows = connector.request("GET", f"contacts/{remote_id}/contactTags").body["contactTags"]
    tag_names = {connector.request("GET", f"tags/{row['tag']}").body["tag"]["tag"] for row in rows}
    return {v["field"]: v["value"] for v in values}, tag_names


def test_given_scores_for_every_contact_when_pushing_then_one_bulk_import_per_250_and_values_read_back(
    server, connector_for
) -> None:
    connector = connector_for()
    contacts = [c for b in pull_all(connector)[0]["contacts"] for c in b.contacts]
    stats_before = server.stats()["activecampaign"]["by_route"]
    report = connector.push(_updates(contacts))
    assert not report.failed and sorted(report.written) == sorted(c.remote_id for c in contacts)
    routes = server.stats()["activecampaign"]["by_route"]
    imports = routes.get("POST /api/3/import/bulk_import", 0) - stats_before.get(
        "POST /api/3/import/bulk_import", 0
    )
    assert imports == math.ceil(len(contacts) / 250)
    assert routes.get("POST /api/3/fields", 0) == 7 and routes.get("POST /api/3/fieldRels", 0) == 7
    field_ids = Writer(connector).ensure_fields()  # existing fields: reads only
    sample = contacts[0]
    values, tags = _read_back(connector, sample.remote_id)
    assert values[str(field_ids["affinity"])] == str(40 + int(sample.remote_id) % 50)
    assert values[str(field_ids["engagement"])] == "12.50"
    assert values[str(field_ids["grade"])] == "B2"
    # §1: datetimes are converted to the account's timezone on save; the instant is unchanged.
    assert datetime.fromisoformat(values[str(field_ids["scored_at"])]) == SCORED_AT
    assert "leadsync_stage_decision" in tags
    # Provisioning happens once: a second push creates no fields.
    connector.push(_updates(contacts[:20], stage="action"))
    assert server.stats()["activecampaign"]["by_route"].get("POST /api/3/fields", 0) == 7


def test_given_a_small_change_when_pushing_then_the_contact_is_updated_by_id_and_only_leadsync_tags_are_removed(
    server, connector_for
) -> None:
    connector = connector_for()
    contacts = [c for b in pull_all(connector)[0]["contacts"] for c in b.contacts][:3]
    connector.push(_updates(contacts, stage="decision"))
    target = contacts[0]
    # Someone else's tag and a leadsync tag; the pipeline asks to remove both: only ours goes.
    tag = connector.request("POST", "tags", json={"tag": {"tag": "vip", "tagType": "contact"}}).body["tag"]
    connector.request(
        "POST", "contactTags", json={"contactTag": {"contact": target.remote_id, "tag": tag["id"]}}
    )
    update = ScoreUpdate(
        remote_id=target.remote_id,
        email=target.email,
        fields={"stage": "action"},
        tags_add=("leadsync_stage_action",),
        tags_remove=("leadsync_stage_decision", "vip"),
    )
    report = connector.push([update])
    assert report.written == [target.remote_id] and not report.failed
    routes = server.stats()["activecampaign"]["by_route"]
    assert routes.get("PUT /api/3/contacts/{id}", 0) >= 1 and routes.get("POST /api/3/contact/sync", 0) == 0
    _, tags = _read_back(connector, target.remote_id)
    assert tags == {"vip", "leadsync_stage_action"}


def test_given_an_email_the_import_rejects_when_pushing_then_that_contact_is_reported_failed(
    server, connector_for
) -> None:
    connector = connector_for()
    contacts = [c for b in pull_all(connector)[0]["contacts"] for c in b.contacts][:12]
    updates = _updates(contacts)
    # The contact's email moved on ActiveCampaign: the import writes another record, never ours.
    moved = updates[0]
    updates[0] = ScoreUpdate(
        moved.remote_id, "someone.else@example.org", moved.fields, tags_add=moved.tags_add
    )
    report = connector.push(updates)
    assert [f.remote_id for f in report.failed] == [moved.remote_id]
    assert len(report.written) == 11
    assert api_url(server)


def test_scores_go_into_number_fields_so_sales_can_sort_and_filter_them(server, connector_for) -> None:
    """activecampaign.md §3: number is a field type (the v3 create-field examples send it)."""
    connector = connector_for()
    contacts = [c for b in pull_all(connector)[0]["contacts"] for c in b.contacts][:3]
    assert not connector.push(_updates(contacts)).failed
    fields = {
        f["perstag"]: f
        for page in connector._pages(FIELDS)
        for f in page.records
        if f["perstag"].startswith("LEADSYNC_")
    }
    assert (
        fields["LEADSYNC_AFFINITY"]["type"] == "number" and fields["LEADSYNC_ENGAGEMENT"]["type"] == "number"
    )
    assert fields["LEADSYNC_GRADE"]["type"] == "text" and fields["LEADSYNC_SCORED_AT"]["type"] == "datetime"
    values, _ = _read_back(connector, contacts[0].remote_id)
    assert float(values[fields["LEADSYNC_ENGAGEMENT"]["id"]]) == 12.5


def test_given_an_email_changed_on_the_platform_when_pushing_one_contact_then_it_is_updated_in_place(
    server, connector_for
) -> None:
    """activecampaign.md §2: contact/sync finds by email and creates when none matches (a stray
    contact); PUT /contacts/{id} updates the contact itself."""
    connector = connector_for()
    contacts = [c for b in pull_all(connector)[0]["contacts"] for c in b.contacts]
    target = contacts[0]
    # After our pull, someone changes the contact's email on ActiveCampaign.
    connector.request(
        "PUT", f"contacts/{target.remote_id}", json={"contact": {"email": "moved.away@example.org"}}
    )
    before = int(connector.request("GET", "contacts", params={"limit": 1}).body["meta"]["total"])
    (update,) = _updates([target])  # the store still has the old email
    report = connector.push([update])
    assert report.written == [target.remote_id] and not report.failed
    after = int(connector.request("GET", "contacts", params={"limit": 1}).body["meta"]["total"])
    assert after == before, "the push created a stray contact"
    assert connector.request("GET", "contacts", params={"email": target.email}).body["contacts"] == []
    field_ids = Writer(connector).ensure_fields()
    values, _ = _read_back(connector, target.remote_id)
    assert values[str(field_ids["grade"])] == "B2"
    contact = connector.request("GET", f"contacts/{target.remote_id}").body["contact"]
    assert contact["email"] == "moved.away@example.org"  # the platform's email is left as it is


def test_an_update_for_a_contact_deleted_on_the_platform_fails_without_creating_one(
    server, connector_for
) -> None:
    connector = connector_for()
    target = [c for b in pull_all(connector)[0]["contacts"] for c in b.contacts][0]
    (update,) = _updates([target])
    gone = ScoreUpdate("999999", target.email, update.fields)
    before = int(connector.request("GET", "contacts", params={"limit": 1}).body["meta"]["total"])
    report = connector.push([gone])
    assert [f.remote_id for f in report.failed] == ["999999"]
    assert int(connector.request("GET", "contacts", params={"limit": 1}).body["meta"]["total"]) == before
