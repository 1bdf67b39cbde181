"""Acceptance 1: ActiveCampaign emulator responses validate against ../shared/specs/activecampaign.

A tour of every operation the emulator serves (success and error answers), through the same
client the connector uses. The integration tests check every response they receive too (see
``tests/integration/activecampaign/contract.py``, which also lists the spec defects allowed).
"""

from __future__ import annotations

import httpx
import pytest

from leadsync.connectors.activecampaign.connector import ActiveCampaignConnector
from leadsync.connectors.activecampaign.writeback import Writer
from leadsync.connectors.base import ScoreUpdate
from leadsync.connectors.errors import ConnectorError
from leadsync.sandbox.world import generate_world
from tests.contract.openapi import require_specs
from tests.integration.activecampaign.conftest import FAST, api_url, make_settings, pull_all, serve
from tests.integration.activecampaign.contract import ContractLog, load_validator, record_responses
from tests.worlds import private_copy

# operationId -> (method, spec path, statuses the tour must produce)
EXPECTED = {
    ("GET", "/users/me", "200"),
    ("GET", "/contacts", "200"),
    ("POST", "/contacts", "201"),
    ("POST", "/contacts", "422"),
    ("GET", "/contacts/{id}", "200"),
    ("GET", "/contacts/{id}", "404"),
    ("PUT", "/contacts/{id}", "200"),
    ("PUT", "/contacts/{id}", "404"),
    ("POST", "/contact/sync", "201"),
    ("GET", "/contacts/{id}/fieldValues", "200"),
    ("GET", "/contacts/{id}/deals", "200"),
    ("GET", "/fields", "200"),
    ("POST", "/fields", "201"),
    ("POST", "/fields", "422"),
    ("POST", "/fieldRels", "201"),
    ("GET", "/fieldValues", "200"),
    ("GET", "/tags", "200"),
    ("POST", "/tags", "201"),
    ("GET", "/tags/{id}", "200"),
    ("GET", "/tags/{id}", "404"),
    ("POST", "/contactTags", "201"),
    ("POST", "/contactTags", "404"),
    ("POST", "/contactTags", "422"),
    ("DELETE", "/contactTags/{id}", "200"),
    ("DELETE", "/contactTags/{id}", "404"),
    ("GET", "/activities", "200"),
    ("GET", "/deals", "200"),
    ("POST", "/import/bulk_import", "200"),
    ("POST", "/import/bulk_import", "400"),
    ("GET", "/import/bulk_import", "200"),
    ("GET", "/import/info", "200"),
    ("GET", "/import/info", "400"),
    # what other clients call (issue 21)
    ("GET", "/lists", "200"),
    ("GET", "/lists/{id}", "200"),
    ("GET", "/lists/{id}", "404"),
    ("GET", "/campaigns", "200"),
    ("GET", "/campaigns/{id}", "200"),
    ("GET", "/messages", "200"),
    ("GET", "/messages/{id}", "200"),
    ("GET", "/automations", "200"),
}


@pytest.fixture(scope="module")
def world():
    require_specs()
    return generate_world(200, 5)


def test_given_every_emulated_operation_when_validated_then_the_spec_accepts_every_answer(world) -> None:
    validator = load_validator()
    log = ContractLog()
    with serve(private_copy(world)) as server:
        connector = ActiveCampaignConnector(make_settings(api_url(server), options=dict(FAST)))
        with connector:
            record_responses(connector.client, log)
            connector.check()
            contacts = [c for b in pull_all(connector)[0]["contacts"] for c in b.contacts]
            updates = [
                ScoreUpdate(c.remote_id, c.email, {"grade": "A1"}, tags_add=("leadsync_stage_action",))
                for c in contacts
            ]
            connector.push(updates)
            connector.push(updates[:1])  # the small-push path: PUT /contacts/{id}
            cid = contacts[0].remote_id
            c = connector.client

            def call(method: str, path: str, **kwargs) -> httpx.Response:
                return c.request(method, path, **kwargs)

            call(
                "POST", "contacts", json={"contact": {"email": "new.person@example.org", "firstName": "New"}}
            )
            call("POST", "contacts", json={"contact": {"email": "new.person@example.org"}})
            call("GET", f"contacts/{cid}")
            call("GET", "contacts/999999")
            call("PUT", f"contacts/{cid}", json={"contact": {"firstName": "Renamed"}})
            call("PUT", "contacts/999999", json={"contact": {"firstName": "Nobody"}})
            call(
                "POST", "contact/sync", json={"contact": {"email": contacts[1].email, "firstName": "Synced"}}
            )
            call("GET", f"contacts/{cid}/fieldValues")
            call("GET", f"contacts/{cid}/deals")
            call("GET", f"contacts/{cid}/trackingLogs")
            call("GET", "fieldValues", params={"filters[fieldid]": 1})
            call("POST", "fields", json={"field": {"type": "text", "title": "leadsync_grade"}})
            tags = call("GET", "tags").json()["tags"]
            call("GET", f"tags/{tags[0]['id']}")
            call("GET", "tags/999999")
            call("POST", "tags", json={"tag": {"tag": "contract-tour", "tagType": "contact"}})
            row = call(
                "POST", "contactTags", json={"contactTag": {"contact": cid, "tag": tags[0]["id"]}}
            ).json()
            call("POST", "contactTags", json={"contactTag": {"contact": "999999", "tag": tags[0]["id"]}})
            call("POST", "contactTags", json={"contactTag": {"tag": tags[0]["id"]}})
            call("DELETE", f"contactTags/{row['contactTag']['id']}")
            call("DELETE", f"contactTags/{row['contactTag']['id']}")
            call("POST", "import/bulk_import", json={"contacts": [{"email": "not-an-email"}]})
            call("GET", "import/bulk_import")
            call("GET", "import/info")
            assert call("GET", "").status_code == 200  # the API root (not in the spec)
            call("GET", "lists")
            call("GET", "lists/1")
            call("GET", "lists/999999")
            call("GET", "contactLists")
            call("GET", "contactTags")
            campaign = call("GET", "campaigns").json()["campaigns"][0]["id"]
            call("GET", f"campaigns/{campaign}")
            message = call("GET", "messages").json()["messages"][0]["id"]
            call("GET", f"messages/{message}")
            call("GET", "automations")
            assert Writer(connector).ensure_fields()
    problems = log.problems(validator)
    assert not problems, "\n".join(problems[:30])
    missing = EXPECTED - validator.covered
    assert not missing, f"operations the tour did not cover: {sorted(missing)}"


def test_given_a_broken_answer_when_validated_then_the_validator_says_so() -> None:
    validator = load_validator()
    problems = validator.validate("GET", "/api/3/tags/1", 200, {"tag": {"id": 1, "tag": "x"}})
    assert problems and "tag/id" in problems[0]


def test_given_a_connector_error_message_then_it_never_carries_the_token(world) -> None:
    with serve(private_copy(world)) as server:
        token = "bad-token-that-must-not-leak-123456"
        with ActiveCampaignConnector(
            make_settings(api_url(server), token=token, options=dict(FAST))
        ) as connector:
            with pytest.raises(ConnectorError) as caught:
                list(connector.pull("contacts", None))
            assert token not in str(caught.value) and token not in repr(connector.client.auth)


def test_given_tracking_logs_when_validated_against_the_detailed_operation_then_they_match(world) -> None:
    """The spec describes GET /contacts/{id}/trackingLogs twice; the validator picks the loose one
    (``trackingLogs: array``), so check the detailed ``get-contacts-tracking-logsevents`` too."""
    import json

    import jsonschema

    spec = json.loads((require_specs() / "activecampaign" / "activecampaign-v3.openapi.json").read_text())
    schema = spec["paths"]["/contacts/{contactId}/trackingLogs"]["get"]["responses"]["200"]["content"][
        "application/json"
    ]["schema"]
    with serve(private_copy(world)) as server:
        state = server.state.hosts["activecampaign"].emulator.state
        contact_id = next(cid for cid, logs in state.tracking_logs.items() if logs)
        with ActiveCampaignConnector(make_settings(api_url(server), options=dict(FAST))) as connector:
            body = connector.request("GET", f"contacts/{contact_id}/trackingLogs").body
    assert body["trackingLogs"]
    jsonschema.validate(body, schema)
