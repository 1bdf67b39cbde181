"""Validate recorded responses against the platforms' OpenAPI descriptions in ../shared/specs.

The specs are read in place, never copied into the project (their licences forbid it). Tests that
use them skip, saying why, when ``../shared/specs`` is absent.

    validator = OpenAPIValidator.load("hubspot", ["contacts.json", "properties.json"])
    problems = validator.validate("GET", "/crm/v3/objects/contacts", 200, body)
    problems += validator.validate_request("POST", "/crm/v3/objects/contacts/search", request_body)

Each platform's contract test decides which spec defects to allow (``allow`` callbacks).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

SPECS_DIR = Path(__file__).resolve().parents[3] / "shared" / "specs"


def require_specs() -> Path:
    if not SPECS_DIR.is_dir():
        pytest.skip(
            f"platform specs not found at {SPECS_DIR} (they live beside the repo, in ../shared/specs)"
        )
    return SPECS_DIR


def _openapi_30_to_jsonschema(node: Any) -> Any:
    """OpenAPI 3.0 ``nullable: true`` becomes a JSON Schema type union; other keys pass through."""
    if isinstance(node, dict):
        out = {k: _openapi_30_to_jsonschema(v) for k, v in node.items()}
        if out.pop("nullable", False):
            if "type" in out:
                types = out["type"] if isinstance(out["type"], list) else [out["type"]]
                out["type"] = [*types, "null"]
            elif "$ref" in out or "allOf" in out or "oneOf" in out or "anyOf" in out:
                out = {"anyOf": [{k: v for k, v in out.items()}, {"type": "null"}]}
        return out
    if isinstance(node, list):
        return [_openapi_30_to_jsonschema(v) for v in node]
    return node


@dataclass
class Operation:
    method: str
    template: str
    pattern: re.Pattern[str]
    responses: dict[str, Any]
    spec_uri: str
    request_body: dict[str, Any] = field(default_factory=dict)


@dataclass
class OpenAPIValidator:
    operations: list[Operation]
    registry: Registry
    covered: set[tuple[str, str, str]] = field(default_factory=set)
    covered_requests: set[tuple[str, str]] = field(default_factory=set)

    @classmethod
    def load(cls, platform: str, files: Iterable[str], *, strip_prefix: str = "") -> OpenAPIValidator:
        base = require_specs() / platform
        registry: Registry = Registry()
        operations: list[Operation] = []
        for name in files:
            doc = _openapi_30_to_jsonschema(json.loads((base / name).read_text()))
            uri = f"urn:spec:{platform}:{name}"
            registry = registry.with_resource(
                uri, Resource.from_contents(doc, default_specification=DRAFT202012)
            )
            for template, item in doc.get("paths", {}).items():
                regex = "^" + strip_prefix + re.sub(r"\\\{[^/]+?\\\}", r"[^/]+", re.escape(template)) + "/?$"
                for method, op in item.items():
                    if method.lower() in {"get", "post", "put", "patch", "delete"}:
                        operations.append(
                            Operation(
                                method.upper(),
                                template,
                                re.compile(regex),
                                op.get("responses", {}),
                                uri,
                                op.get("requestBody") or {},
                            )
                        )
        # Literal paths before templated ones (/contacts/search before /contacts/{id}).
        operations.sort(key=lambda o: o.template.count("{"))
        return cls(operations, registry)

    def find(self, method: str, path: str) -> Operation | None:
        for op in self.operations:
            if op.method == method.upper() and op.pattern.match(path):
                return op
        return None

    def validate(self, method: str, path: str, status: int, body: Any) -> list[str]:
        op = self.find(method, path)
        if op is None:
            return [f"{method} {path}: no operation in the spec"]
        response = (
            op.responses.get(str(status))
            or op.responses.get(f"{str(status)[0]}XX")
            or op.responses.get("default")
        )
        if response is None:
            return [f"{method} {op.template}: status {status} is not declared in the spec"]
        self.covered.add((method.upper(), op.template, str(status)))
        if "$ref" in response:
            response = self._resolve(op.spec_uri, response["$ref"])
        content = (response or {}).get("content") or {}
        media = next((v for k, v in content.items() if "json" in k), None)
        if media is None or "schema" not in media:
            return []  # the spec declares no body schema for this answer
        schema = media["schema"]
        if "$ref" in schema and schema["$ref"].startswith("#"):
            schema = {**schema, "$ref": op.spec_uri + schema["$ref"]}
        else:  # an inline schema may still hold local refs: resolve them against its spec document
            schema = {**schema, "$id": op.spec_uri}
        validator = jsonschema.Draft202012Validator(schema, registry=self.registry)
        return [
            f"{method} {op.template} {status}: {'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message[:300]}"
            for e in validator.iter_errors(body)
        ]

    def validate_request(
        self, method: str, path: str, body: Any, *, media: str = "application/json"
    ) -> list[str]:
        """Problems of a request body (JSON, or form fields as a dict) against the operation's
        ``requestBody`` schema for ``media``; none when the spec declares no schema for it."""
        op = self.find(method, path)
        if op is None:
            return [f"{method} {path}: no operation in the spec"]
        request_body = op.request_body
        if "$ref" in request_body:
            request_body = self._resolve(op.spec_uri, request_body["$ref"])
        content = (request_body or {}).get("content") or {}
        declared = content.get(media) or next(
            (v for k, v in content.items() if media.split("/")[-1] in k), None
        )
        if declared is None or "schema" not in declared:
            return []
        schema = declared["schema"]
        if "$ref" in schema and schema["$ref"].startswith("#"):
            schema = {**schema, "$ref": op.spec_uri + schema["$ref"]}
        else:
            schema = {**schema, "$id": op.spec_uri}
        self.covered_requests.add((method.upper(), op.template))
        validator = jsonschema.Draft202012Validator(schema, registry=self.registry)
        return [
            f"{method} {op.template} request: {'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message[:300]}"
            for e in validator.iter_errors(body)
        ]

    def _resolve(self, uri: str, ref: str) -> Any:
        resolver = self.registry.resolver(base_uri=uri)
        return resolver.lookup(ref).contents
