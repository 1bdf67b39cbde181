"""Custom fields, their list relations and values; tags and contact tags (activecampaign.md §3, §4)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from leadsync.sandbox.activecampaign.common import (
    Paging,
    errors_422,
    errors_status,
    message_404,
    param,
    path_id,
    read_json,
)
from leadsync.sandbox.activecampaign.events import touch
from leadsync.sandbox.activecampaign.state import CustomField, FieldRel
from leadsync.sandbox.platform import json_response

if TYPE_CHECKING:
    from leadsync.sandbox.activecampaign.host import AccountHost

__all__ = ["field_routes", "tag_routes"]

# §3: text, textarea, date, datetime, dropdown, listbox, radio, checkbox, hidden, number (the last
# one appears in doc examples although the schema's enum text omits it).
FIELD_TYPES = frozenset(
    {"text", "textarea", "date", "datetime", "dropdown", "listbox", "radio", "checkbox", "hidden", "number"}
)


def field_routes(emu: AccountHost) -> list[web.RouteDef]:
    state, render = emu.state, emu.render

    def fields_body(rows: list[CustomField], total: int) -> dict[str, Any]:
        rels = [r for r in state.field_rels.values() if r.field in {c.id for c in rows}]
        return {
            "fieldOptions": [],
            "fieldRels": [render.field_rel(r, ints=False) for r in rels],
            "fields": [render.custom_field(c, [r for r in rels if r.field == c.id]) for c in rows],
            "meta": {"total": str(total)},
        }

    async def list_fields(request: web.Request) -> web.Response:
        paging = Paging(request, default=100)  # §3: GET /fields limit defaults to 100
        with state.lock:
            rows = sorted(state.fields.values(), key=lambda c: c.id)
            perstag = param(emu, request, "filters[perstag]")
            if perstag is not None:
                rows = [c for c in rows if c.perstag.upper() == perstag.upper()]
            return json_response(fields_body(paging.slice(rows), len(rows)))

    async def get_field(request: web.Request) -> web.Response:
        field_id = path_id(request)
        with state.lock:
            custom = state.fields.get(field_id) if field_id is not None else None
            if custom is None:
                return message_404("Field", request.match_info["id"])
            body = fields_body([custom], 1)
            return json_response(
                {"field": body["fields"][0], "fieldOptions": [], "fieldRels": body["fieldRels"]}
            )

    async def create_field(request: web.Request) -> web.Response:
        payload = await read_json(request)
        data = payload.get("field") if isinstance(payload, dict) else None
        if not isinstance(data, dict) or not data.get("title") or not data.get("type"):
            return errors_422(
                "Title and type are required", code="field_missing", pointer="/data/attributes/title"
            )
        kind = str(data["type"]).lower()
        if kind not in FIELD_TYPES:
            return errors_422(
                f"Invalid field type {kind}", code="field_invalid", pointer="/data/attributes/type"
            )
        now = emu.clock.tick()
        with state.lock:
            title = str(data["title"]).strip()
            if any(c.title.lower() == title.lower() for c in state.fields.values()):
                # §3: duplicate title -> 422 {"errors":[{"title","detail","code":"duplicate"}]} (no source)
                return json_response(
                    {
                        "errors": [
                            {
                                "title": "There is already a field with this title",
                                "detail": title,
                                "code": "duplicate",
                            }
                        ]
                    },
                    status=422,
                )
            perstag = str(data.get("perstag") or title).upper().replace(" ", "_")
            custom = CustomField(
                state.next_id("field"),
                title,
                kind,
                perstag,
                now,
                now,
                descript=data.get("descript"),
                defval=data.get("defval"),
                visible=bool(data.get("visible", True)),
                ordernum=int(data.get("ordernum") or 0),
            )
            state.fields[custom.id] = custom
            return json_response(fields_body([custom], 1), status=201)

    async def create_field_rel(request: web.Request) -> web.Response:
        payload = await read_json(request)
        data = payload.get("fieldRel") if isinstance(payload, dict) else None
        field_id = _as_int(data.get("field")) if isinstance(data, dict) else None
        relid = _as_int(data.get("relid")) if isinstance(data, dict) else None
        if field_id is None or relid is None:
            return errors_422(
                "field and relid are required", code="field_missing", pointer="/data/attributes/field"
            )
        now = emu.clock.tick()
        with state.lock:
            if field_id not in state.fields:
                return errors_status(404, "Not Found", detail="Field not found")
            rel = FieldRel(state.next_id("fieldRel"), field_id, relid, now)
            state.field_rels[rel.id] = rel
            return json_response({"fieldRel": render.field_rel(rel, ints=True)}, status=201)

    async def list_field_values(request: web.Request) -> web.Response:
        paging = Paging(request)
        with state.lock:
            rows = sorted(state.field_values.values(), key=lambda v: v.id)
            field_filter = param(emu, request, "filters[fieldid]")
            if field_filter is not None and field_filter.isdigit():
                rows = [v for v in rows if v.field == int(field_filter)]
            value_filter = param(emu, request, "filters[val]")
            if value_filter is not None:
                rows = [v for v in rows if v.value == value_filter]
            return json_response(
                {
                    "fieldValues": [render.field_value(v) for v in paging.slice(rows)],
                    "meta": {"total": str(len(rows))},
                }
            )

    async def upsert_field_value(request: web.Request) -> web.Response:
        payload = await read_json(request)
        data = payload.get("fieldValue") if isinstance(payload, dict) else None
        contact_id = _as_int(data.get("contact")) if isinstance(data, dict) else None
        field_id = _as_int(data.get("field")) if isinstance(data, dict) else None
        now = emu.clock.tick()
        with state.lock:
            if contact_id not in state.contacts or field_id not in state.fields:
                return errors_status(404, "Not Found", detail="Contact or field not found")
            assert contact_id is not None and field_id is not None and isinstance(data, dict)
            value = emu.stored_value(state.fields[field_id], data.get("value"))
            row, changed = state.set_value(contact_id, field_id, value, now)
            if changed and emu.value_change_bumps_udate:
                touch(state.contacts[contact_id], now)
            contact = render.contact(state.contacts[contact_id])
            body = render.field_value(row)
            body.pop("created_by")
            body.pop("updated_by")
            return json_response({"contacts": [contact], "fieldValue": body})

    async def get_field_value(request: web.Request) -> web.Response:
        value_id = path_id(request)
        with state.lock:
            row = state.field_values.get(value_id) if value_id is not None else None
            if row is None:
                return message_404("FieldValue", request.match_info["id"])
            return json_response({"fieldValue": render.field_value(row)})

    return [
        web.get("/api/3/fields", list_fields),
        web.post("/api/3/fields", create_field),
        web.get("/api/3/fields/{id}", get_field),
        web.post("/api/3/fieldRels", create_field_rel),
        web.get("/api/3/fieldValues", list_field_values),
        web.post("/api/3/fieldValues", upsert_field_value),
        web.get("/api/3/fieldValues/{id}", get_field_value),
    ]


def tag_routes(emu: AccountHost) -> list[web.RouteDef]:
    state, render = emu.state, emu.render

    async def list_tags(request: web.Request) -> web.Response:
        paging = Paging(request)
        with state.lock:
            rows = sorted(state.tags.values(), key=lambda t: t.id)
            search = param(emu, request, "search")
            if search is not None:
                rows = [t for t in rows if search.lower() in t.tag.lower()]
            for op, keep in (
                ("eq", lambda t, v: t.tag.lower() == v),
                ("contains", lambda t, v: v in t.tag.lower()),
                ("starts_with", lambda t, v: t.tag.lower().startswith(v)),
            ):
                value = param(emu, request, f"filters[search][{op}]")
                if value is not None:
                    rows = [t for t in rows if keep(t, value.lower())]
            return json_response(
                {"tags": [render.tag(t) for t in paging.slice(rows)], "meta": {"total": str(len(rows))}}
            )

    async def create_tag(request: web.Request) -> web.Response:
        payload = await read_json(request)
        data = payload.get("tag") if isinstance(payload, dict) else None
        name = data.get("tag") if isinstance(data, dict) else None
        if not isinstance(name, str) or not name.strip():
            return errors_422("Tag name is required", code="field_missing", pointer="/data/attributes/tag")
        now = emu.clock.tick()
        with state.lock:
            if state.tag_named(name) is not None:
                # §4: behaviour on a duplicate name is unconfirmed; the sandbox refuses, the stricter choice.
                return errors_422("Duplicate tag", code="duplicate", pointer="/data/attributes/tag")
            tag = state.ensure_tag(name, now)
            tag.tag_type = str(data.get("tagType") or "contact")  # type: ignore[union-attr]
            tag.description = str(data.get("description") or "")  # type: ignore[union-attr]
            return json_response({"tag": render.tag(tag)}, status=201)

    async def get_tag(request: web.Request) -> web.Response:
        tag_id = path_id(request)
        with state.lock:
            tag = state.tags.get(tag_id) if tag_id is not None else None
            if tag is None:
                return message_404("Tag", request.match_info["id"])
            count = sum(1 for row in state.contact_tags.values() if row.tag == tag.id)
            return json_response({"tag": render.tag(tag, count=count)})

    async def add_contact_tag(request: web.Request) -> web.Response:
        payload = await read_json(request)
        data = payload.get("contactTag") if isinstance(payload, dict) else None
        contact_id = _as_int(data.get("contact")) if isinstance(data, dict) else None
        tag_id = _as_int(data.get("tag")) if isinstance(data, dict) else None
        if contact_id is None:
            return errors_status(422, "Missing attribute", pointer="/data/attributes/contact")
        if tag_id is None:
            return errors_status(422, "Missing attribute", pointer="/data/attributes/tag")
        now = emu.clock.tick()
        with state.lock:
            if contact_id not in state.contacts:
                return errors_status(404, "Not Found", detail="Contact not found")
            if tag_id not in state.tags:
                return errors_status(404, "Not Found", detail="Tag not found")
            # §4: re-tagging is unconfirmed; the sandbox answers with the existing row.
            row, _ = state.tag_contact(contact_id, tag_id, now)
            return json_response({"contactTag": _contact_tag_created(render.contact_tag(row))}, status=201)

    async def remove_contact_tag(request: web.Request) -> web.Response:
        row_id = path_id(request)
        with state.lock:
            row = state.untag(row_id) if row_id is not None else None
            if row is None:
                return message_404("SubscriberTag", request.match_info["id"])
            return json_response({})

    return [
        web.get("/api/3/tags", list_tags),
        web.post("/api/3/tags", create_tag),
        web.get("/api/3/tags/{id}", get_tag),
        web.post("/api/3/contactTags", add_contact_tag),
        web.delete("/api/3/contactTags/{id}", remove_contact_tag),
    ]


def _contact_tag_created(row: dict[str, Any]) -> dict[str, Any]:
    return {k: row[k] for k in ("cdate", "contact", "id", "links", "tag")}


def _as_int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
