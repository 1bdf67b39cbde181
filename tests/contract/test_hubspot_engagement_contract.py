"""The HubSpot traffic issue 21 added, recorded on the wire from the connector, checked against
../shared/specs/hubspot where the specs define it.

* Meetings and calls (``meetings.json``, ``calls.json``): the search requests the connector sends
  and the answers, and the list/get/batch-read answers other clients read.
* OAuth (``oauth.json`` defines ``/oauth/v1/token`` only): the 2026-03 token request's form fields
  and its answer are checked against the v1 operation, whose fields and answer the dated path keeps
  (hubspot.md §1: "same form fields").
* No spec beside the repo for associations v4, contacts v1 and forms v3: their answers are checked
  for the fields the connector reads (hubspot.md §4.3, §4.4) and through the official SDK
  (tests/integration/hubspot/test_sdk_directory.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest

from leadsync.connectors.base import SourceSettings
from leadsync.connectors.hubspot.connector import HubSpotConnector
from leadsync.connectors.records import Platform
from leadsync.sandbox.hubspot.emulator import SANDBOX_OAUTH_APP, SANDBOX_TOKEN, HubSpotEmulator
from leadsync.sandbox.server import SandboxServer
from leadsync.sandbox.world import generate_world
from tests.contract.openapi import OpenAPIValidator, require_specs


def allow_null_property_values(problem: str) -> bool:
    return "properties/" in problem and "None is not of type 'string'" in problem


def allow_object_sorts(problem: str) -> bool:
    """The spec types ``sorts`` items as strings; HubSpot's docs and the SDK send objects
    ``{"propertyName", "direction"}`` (hubspot.md §2.5, §7: verified on the wire)."""
    return "request: sorts/" in problem and "is not of type 'string'" in problem


def allowed(problem: str) -> bool:
    return allow_null_property_values(problem) or allow_object_sorts(problem)


class Recorder(httpx.HTTPTransport):
    """The real transport, keeping every request and response the connector exchanged."""

    def __init__(self) -> None:
        super().__init__()
        self.exchanges: list[tuple[httpx.Request, httpx.Response, bytes]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        body = response.read()
        self.exchanges.append((request, response, body))
        return httpx.Response(response.status_code, headers=response.headers, content=body, request=request)


@pytest.fixture(scope="module")
def validator() -> OpenAPIValidator:
    require_specs()
    return OpenAPIValidator.load("hubspot", ["contacts.json", "meetings.json", "calls.json", "oauth.json"])


@pytest.fixture(scope="module")
def server() -> Iterator[SandboxServer]:
    with SandboxServer.for_world(
        generate_world(150, 3), emulators=[HubSpotEmulator], ports={"hubspot": 0}, rate_limits=False
    ) as running:
        yield running


def _settings(server: SandboxServer, *, oauth: bool = False) -> SourceSettings:
    secrets = (
        {"client_id": SANDBOX_OAUTH_APP["client_id"], "client_secret": SANDBOX_OAUTH_APP["client_secret"],
         "refresh_token": SANDBOX_OAUTH_APP["refresh_token"]}
        if oauth
        else {"token": SANDBOX_TOKEN}
    )  # fmt: skip
    return SourceSettings(
        name="hubspot",
        platform=Platform.HUBSPOT,
        base_url=server.base_url("hubspot"),
        secrets=secrets,
        options={"rate_limit": False},
    )


def test_given_the_new_streams_when_pulled_then_every_request_and_answer_matches_the_specs(
    server: SandboxServer, validator: OpenAPIValidator
) -> None:
    recorder = Recorder()
    with HubSpotConnector(_settings(server, oauth=True), transport=recorder) as connector:
        for stream in ("contacts", "meetings", "calls"):
            for _ in connector.pull(stream, None):
                pass
    problems: list[str] = []
    seen: set[str] = set()
    for request, response, body in recorder.exchanges:
        path = request.url.path
        answer = json.loads(body) if body else None
        if path.startswith(("/crm/v3/objects/meetings", "/crm/v3/objects/calls")):
            problems += validator.validate_request(request.method, path, json.loads(request.content))
            problems += validator.validate(request.method, path, response.status_code, answer)
            seen.add(path)
        elif path == "/oauth/2026-03/token":
            form = dict(parse_qsl(request.content.decode()))
            assert set(form) == {"grant_type", "client_id", "client_secret", "refresh_token"}
            problems += validator.validate_request(
                "POST", "/oauth/v1/token", form, media="application/x-www-form-urlencoded"
            )
            problems += validator.validate("POST", "/oauth/v1/token", response.status_code, answer)
            seen.add(path)
        elif path.startswith("/crm/v4/associations/"):
            assert response.status_code in (200, 207)
            assert {"status", "results", "startedAt", "completedAt"} <= set(answer)
            for row in answer["results"]:
                assert set(row["from"]) == {"id"} and all(isinstance(t["toObjectId"], str) for t in row["to"])
            seen.add("/crm/v4/associations")
        elif path.startswith("/contacts/v1/contact/vids/batch"):
            for profile in answer.values():
                for item in profile["form-submissions"]:
                    assert {"conversion-id", "timestamp", "form-id", "portal-id", "form-type"} <= set(item)
            seen.add("/contacts/v1")
    real = [p for p in problems if not allowed(p)]
    assert not real, "\n".join(real[:20])
    assert {
        "/crm/v3/objects/meetings/search",
        "/crm/v3/objects/calls/search",
        "/oauth/2026-03/token",
        "/crm/v4/associations",
        "/contacts/v1",
    } <= seen, seen
    assert ("POST", "/crm/v3/objects/meetings/search") in validator.covered_requests
    assert ("POST", "/oauth/v1/token") in validator.covered_requests


SEARCH = {
    "limit": 1,
    "after": "0",
    "sorts": ["hs_lastmodifieddate"],
    "properties": ["hs_timestamp"],
    "filterGroups": [],
}
READ = {"properties": ["hs_timestamp"], "propertiesWithHistory": []}
CALLS: list[tuple[str, str, dict[str, Any], int]] = [
    ("GET", "/crm/v3/objects/meetings", {"params": {"limit": 2, "associations": "contacts"}}, 200),
    ("GET", "/crm/v3/objects/meetings/70001", {"params": {"associations": "contacts"}}, 200),
    ("GET", "/crm/v3/objects/meetings/1", {}, 404),
    ("POST", "/crm/v3/objects/meetings/batch/read", {"json": {**READ, "inputs": [{"id": "70001"}]}}, 200),
    ("POST", "/crm/v3/objects/meetings/search", {"json": SEARCH}, 200),
    ("GET", "/crm/v3/objects/calls", {"params": {"limit": 2, "associations": "contacts"}}, 200),
    ("GET", "/crm/v3/objects/calls/80001", {"params": {"associations": "contacts"}}, 200),
    ("GET", "/crm/v3/objects/calls/1", {}, 404),
    ("POST", "/crm/v3/objects/calls/batch/read", {"json": {**READ, "inputs": [{"id": "80001"}]}}, 200),
    ("POST", "/crm/v3/objects/calls/search", {"json": SEARCH}, 200),
]


@pytest.mark.parametrize(("method", "path", "kwargs", "status"), CALLS, ids=[f"{c[0]} {c[1]}" for c in CALLS])
def test_given_a_client_call_on_meetings_or_calls_when_answered_then_the_body_matches_the_spec(
    server: SandboxServer,
    validator: OpenAPIValidator,
    method: str,
    path: str,
    kwargs: dict[str, Any],
    status: int,
) -> None:
    with httpx.Client(
        base_url=server.base_url("hubspot"), headers={"Authorization": f"Bearer {SANDBOX_TOKEN}"}
    ) as c:
        response = c.request(method, path, **kwargs)
    assert response.status_code == status, response.text
    if "json" in kwargs:
        assert not validator.validate_request(method, path, kwargs["json"])
    problems = validator.validate(method, path, response.status_code, response.json())
    assert not [p for p in problems if not allowed(p)], problems
