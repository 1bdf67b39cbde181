"""Every HubSpot response shape the connector relies on validates against ../shared/specs/hubspot.

Spec defects allowed for (see the ``allow`` functions):
* property values may be ``null`` (hubspot.md §2.1: "defined-but-empty -> null"), while the SPEC
  types ``properties`` values as plain strings;
* the legacy Email Events API and the deal pipelines API have no spec file (README of the specs):
  they are checked against the fact sheet's field list instead.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from leadsync.sandbox.hubspot.emulator import SANDBOX_OAUTH_APP, SANDBOX_TOKEN, HubSpotEmulator
from leadsync.sandbox.server import SandboxServer
from tests.contract.openapi import OpenAPIValidator
from tests.integration.hubspot.worlds import tiny_world


def allow_null_property_values(problem: str) -> bool:
    return "properties/" in problem and "None is not of type 'string'" in problem


@pytest.fixture(scope="module")
def validator() -> OpenAPIValidator:
    return OpenAPIValidator.load(
        "hubspot", ["contacts.json", "objects.json", "properties.json", "events.json", "oauth.json"]
    )


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    with SandboxServer.for_world(
        tiny_world(),
        emulators=[HubSpotEmulator],
        ports={"hubspot": 0},
        rate_limits=False,
        extra={"hubspot": {"tier": "enterprise"}},
    ) as server:
        with httpx.Client(
            base_url=server.base_url("hubspot"), headers={"Authorization": f"Bearer {SANDBOX_TOKEN}"}
        ) as c:
            yield c


def check(validator: OpenAPIValidator, response: httpx.Response, *, path: str | None = None) -> None:
    problems = validator.validate(
        response.request.method,
        path or response.request.url.path,
        response.status_code,
        response.json() if response.content else None,
    )
    real = [p for p in problems if not allow_null_property_values(p)]
    assert not real, "\n".join(real)


CALLS = [
    (
        "GET",
        "/crm/v3/objects/contacts",
        {"params": {"limit": 2, "properties": ["email", "lifecyclestage", "hs_lead_status"]}},
        200,
    ),
    ("GET", "/crm/v3/objects/contacts/101", {"params": {"properties": "email,firstname"}}, 200),
    ("GET", "/crm/v3/objects/contacts/nobody@nowhere.io", {"params": {"idProperty": "email"}}, 404),
    (
        "POST",
        "/crm/v3/objects/contacts/search",
        {
            "json": {
                "filterGroups": [
                    {"filters": [{"propertyName": "lastmodifieddate", "operator": "GTE", "value": "0"}]}
                ],
                "sorts": [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}],
                "limit": 2,
                "after": "0",
                "properties": ["email", "lastmodifieddate"],
            }
        },
        200,
    ),
    ("POST", "/crm/v3/objects/contacts/search", {"json": {"limit": 200, "after": "10000"}}, 400),
    (
        "POST",
        "/crm/v3/objects/contacts/batch/read",
        {"json": {"inputs": [{"id": "101"}], "properties": ["email"]}},
        200,
    ),
    (
        "POST",
        "/crm/v3/objects/contacts/batch/read",
        {"json": {"inputs": [{"id": "101"}, {"id": "9"}], "properties": ["email"]}},
        207,
    ),
    (
        "POST",
        "/crm/v3/objects/contacts/batch/update",
        {"json": {"inputs": [{"id": "101", "properties": {"firstname": "Ana"}}]}},
        200,
    ),
    (
        "POST",
        "/crm/v3/objects/contacts/batch/update",
        {
            "json": {
                "inputs": [
                    {"id": "101", "properties": {"firstname": "Ana"}},
                    {"id": "9", "properties": {"firstname": "X"}},
                ]
            }
        },
        207,
    ),
    (
        "POST",
        "/crm/v3/objects/contacts/batch/update",
        {"json": {"inputs": [{"id": "101", "properties": {"nope": "1"}}]}},
        400,
    ),
    (
        "POST",
        "/crm/v3/objects/contacts/batch/upsert",
        {
            "json": {
                "inputs": [{"id": "new@acme.io", "idProperty": "email", "properties": {"firstname": "New"}}]
            }
        },
        200,
    ),
    (
        "GET",
        "/crm/v3/objects/deals",
        {"params": {"associations": "contacts", "properties": "dealstage"}},
        200,
    ),
    ("GET", "/crm/v3/properties/contacts", {}, 200),
    ("GET", "/crm/v3/properties/contacts/lifecyclestage", {}, 200),
    ("GET", "/crm/v3/properties/contacts/groups", {}, 200),
    (
        "POST",
        "/crm/v3/properties/contacts/groups",
        {"json": {"name": "leadsync", "label": "leadsync scores"}},
        201,
    ),
    ("GET", "/crm/v3/properties/contacts/groups/leadsync", {}, 200),
    (
        "POST",
        "/crm/v3/properties/contacts",
        {
            "json": {
                "name": "leadsync_affinity",
                "label": "Affinity",
                "type": "number",
                "fieldType": "number",
                "groupName": "leadsync",
            }
        },
        201,
    ),
    (
        "POST",
        "/crm/v3/properties/contacts",
        {
            "json": {
                "name": "leadsync_stage",
                "label": "Stage",
                "type": "enumeration",
                "fieldType": "select",
                "groupName": "leadsync",
                "options": [{"label": "Action", "value": "action", "hidden": False}],
            }
        },
        201,
    ),
    (
        "GET",
        "/events/v3/events",
        {"params": {"objectType": "contact", "eventType": "e_visited_page", "limit": 2}},
        200,
    ),
]


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status"), CALLS, ids=[f"{c[0]} {c[1]} {c[3]}" for c in CALLS]
)
def test_given_a_connector_call_when_the_sandbox_answers_then_the_body_matches_the_spec(
    validator, client, method, path, kwargs, status
):
    response = client.request(method, path, **kwargs)
    assert response.status_code == status, response.text
    check(validator, response)


def test_given_a_refresh_grant_when_asking_for_a_token_then_the_answer_matches_the_spec(validator, client):
    response = client.post(
        "/oauth/v1/token",
        data={"grant_type": "refresh_token", **SANDBOX_OAUTH_APP},
        headers={"Authorization": ""},
    )
    assert response.status_code == 200
    check(validator, response)


def test_given_no_spec_for_email_events_when_reading_them_then_the_fact_sheet_fields_are_there(client):
    body = client.get("/email/public/v1/events", params={"limit": 5}).json()
    assert set(body) == {"hasMore", "offset", "events"}  # hubspot.md §4.1
    for event in body["events"]:
        assert {
            "id",
            "created",
            "type",
            "recipient",
            "portalId",
            "appId",
            "emailCampaignId",
            "sentBy",
            "filteredEvent",
        } <= set(event)
