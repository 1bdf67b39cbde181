"""Check every ActiveCampaign response a test receives against ../shared/specs/activecampaign.

Attach :func:`record_responses` to a connector; :meth:`ContractLog.problems` validates what was
captured. Spec defects we allow, each for a reason (activecampaign.md, specs README):

* paths the spec lacks although the API has them (README "Not in the spec although used in
  practice"): ``GET /contacts/{id}/contactTags``; and reads the spec has no GET for although
  clients call them (issue 21): ``GET /api/3/`` (a credentials check, §10), ``GET /contactTags``
  (account-wide, the singer tap, §4), ``GET /contactLists``;
* statuses the spec does not declare: 403 for a refused token on any operation (§8 shape 3,
  ``{"message": ...}``; the spec declares 403 on only a few operations), 422 on ``POST /tags`` (duplicate name; §4 unconfirmed),
  and the 429/5xx the sandbox injects on purpose (the spec declares neither on most operations);
* ``POST /fields`` 422 declares ``oneOf`` three identical schemas, which no body can satisfy
  (every body matches all three): its ``oneOf`` failure is ignored, other problems are not;
* operations whose 200 has no schema (``GET /activities``: its example is not even JSON, README
  "Known defects") validate trivially; ``GET /contacts`` declares ``oneOf`` two near-identical
  shapes, which both match a normal page: the emulator sends ``page_input.segmentid: null``
  (seen in the doc example), which only the first branch accepts, so the ``oneOf`` holds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

from tests.contract.openapi import OpenAPIValidator

__all__ = ["ContractLog", "load_validator", "record_responses"]

NOT_IN_SPEC = (re.compile(r"^/api/3/contacts/[^/]+/contactTags$"),)
NOT_IN_SPEC_GET = (
    re.compile(r"^/api/3/?$"),
    re.compile(r"^/api/3/contactTags$"),
    re.compile(r"^/api/3/contactLists$"),
)
UNDECLARED_OK = {("POST", "/tags", 422)}
IDENTICAL_ONE_OF = {("POST", "/fields", 422)}
_VALIDATOR: OpenAPIValidator | None = None


def load_validator() -> OpenAPIValidator:
    """Loaded once per process (skips the test when ../shared/specs is absent)."""
    global _VALIDATOR
    if _VALIDATOR is None:
        _VALIDATOR = OpenAPIValidator.load(
            "activecampaign", ["activecampaign-v3.openapi.json"], strip_prefix="/api/3"
        )
    return _VALIDATOR


@dataclass
class ContractLog:
    responses: list[tuple[str, str, int, Any]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def problems(self, validator: OpenAPIValidator) -> list[str]:
        found: list[str] = []
        for method, path, status, body in self.responses:
            if any(p.match(path) for p in NOT_IN_SPEC) or (
                method == "GET" and any(p.match(path) for p in NOT_IN_SPEC_GET)
            ):
                self.skipped.append(f"{method} {path}: not in the spec")
                continue
            if status == 429 or status >= 500:
                self.skipped.append(f"{method} {path} {status}: injected fault")
                continue
            for problem in validator.validate(method, path, status, body):
                op = validator.find(method, path)
                template = op.template if op else path
                if "is not declared" in problem and (
                    status == 403 or (method, template, status) in UNDECLARED_OK
                ):
                    continue
                if "is valid under each of" in problem and (method, template, status) in IDENTICAL_ONE_OF:
                    continue
                found.append(problem)
        return found


def record_responses(client: httpx.Client, log: ContractLog) -> None:
    def on_response(response: httpx.Response) -> None:
        response.read()
        try:
            body = orjson.loads(response.content) if response.content.strip() else None
        except orjson.JSONDecodeError:
            return  # a truncated body injected on purpose: the retry policy handles it
        log.responses.append((response.request.method, response.request.url.path, response.status_code, body))

    client.event_hooks["response"].append(on_response)
