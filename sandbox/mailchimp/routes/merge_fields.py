"""Audience fields: ``GET`` / ``POST /lists/{list_id}/merge-fields`` (mailchimp.md §5)."""

from __future__ import annotations

from aiohttp import web

from leadsync.sandbox.mailchimp.routes.common import Api, BadRequest, audience_or_404, handler, ok, parse_body
from leadsync.sandbox.mailchimp.shapes import page_params
from leadsync.sandbox.mailchimp.state import (
    MAX_MERGE_FIELDS,
    MAX_TAG_LENGTH,
    MERGE_TYPES,
    TAG_PATTERN,
    MergeField,
)

__all__ = ["routes"]


def routes(api: Api) -> list[web.RouteDef]:
    def list_fields(request: web.Request, _: bytes) -> web.Response:
        audience = audience_or_404(api, request.match_info["list_id"])
        count, offset = page_params(request.query)  # §5: count defaults to 10 here too
        fields = audience.merge_fields
        if "type" in request.query:
            fields = [f for f in fields if f.type == request.query["type"]]
        body = {
            "merge_fields": [f.render(audience.id) for f in fields[offset : offset + count]],
            "list_id": audience.id,
            "total_items": len(fields),
            "_links": [],
        }
        return ok(body, request.query)

    def create_field(request: web.Request, raw: bytes) -> web.Response:
        audience = audience_or_404(api, request.match_info["list_id"])
        body = parse_body(raw)
        name, kind = body.get("name"), body.get("type")
        if not isinstance(name, str) or not name or kind not in MERGE_TYPES:
            raise BadRequest(
                400,
                "The resource submitted could not be validated. For field-specific details, "
                "see the 'errors' array.",
                title="Invalid Resource",
                errors=[{"field": "type" if name else "name", "message": "This value is required."}],
            )
        if len(audience.merge_fields) >= MAX_MERGE_FIELDS:
            # §5: 30 fields per audience; what the refusal looks like is UNCONFIRMED.
            raise BadRequest(
                400,
                f"This audience already has the maximum of {MAX_MERGE_FIELDS} audience fields.",
                title="Invalid Resource",
            )
        next_id = max((f.merge_id for f in audience.merge_fields), default=0) + 1
        tag = str(body.get("tag") or f"MMERGE{next_id}").upper()
        if len(tag) > MAX_TAG_LENGTH or not TAG_PATTERN.match(tag):
            raise BadRequest(
                400,
                "The resource submitted could not be validated. For field-specific details, "
                "see the 'errors' array.",
                title="Invalid Resource",
                errors=[
                    {
                        "field": "tag",
                        "message": f"Merge tags may be at most {MAX_TAG_LENGTH} "
                        "letters, digits or underscores.",
                    }
                ],
            )
        if audience.merge_field(tag) is not None:
            raise BadRequest(
                400,
                f'A Merge Field with the tag "{tag}" already exists for this list.',
                title="Invalid Resource",
            )
        options = body.get("options") or {}
        field = MergeField(
            merge_id=next_id,
            tag=tag,
            name=name,
            type=kind,
            required=bool(body.get("required", False)),
            default_value=str(body.get("default_value") or ""),
            public=bool(body.get("public", False)),
            display_order=int(body.get("display_order") or next_id),
            help_text=str(body.get("help_text") or ""),
            choices=[str(c) for c in options.get("choices") or []],
            date_format=str(options.get("date_format") or ""),
        )
        audience.merge_fields.append(field)
        return ok(field.render(audience.id))

    return [
        web.get("/3.0/lists/{list_id}/merge-fields", handler(api, list_fields)),
        web.post("/3.0/lists/{list_id}/merge-fields", handler(api, create_field)),
    ]
