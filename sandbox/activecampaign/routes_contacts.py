"""Contacts: list/filter/side-load, get, create, update, sync (activecampaign.md §2)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from aiohttp import web

from leadsync.sandbox.activecampaign.common import (
    Paging,
    errors_422,
    message_404,
    param,
    parse_filter_time,
    path_id,
    read_json,
)
from leadsync.sandbox.activecampaign.events import touch
from leadsync.sandbox.activecampaign.state import Contact
from leadsync.sandbox.platform import json_response

if TYPE_CHECKING:
    from leadsync.sandbox.activecampaign.host import AccountHost

__all__ = ["contact_routes"]

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def contact_routes(emu: AccountHost) -> list[web.RouteDef]:
    state, render = emu.state, emu.render

    async def list_contacts(request: web.Request) -> web.Response:
        paging = Paging(request)
        with state.lock:
            rows = list(state.contacts.values())
            email = param(emu, request, "email")
            if email is not None:
                rows = [c for c in rows if c.email.lower() == email.strip().lower()]
            email_like = param(emu, request, "email_like")
            if email_like is not None:
                rows = [c for c in rows if email_like.strip().lower() in c.email.lower()]
            search = param(emu, request, "search")
            if search is not None:  # §2: names, organisation, phone, email
                needle = search.strip().lower()
                rows = [
                    c
                    for c in rows
                    if any(needle in text.lower() for text in (c.email, c.first_name, c.last_name, c.phone))
                ]
            for name, keep in (("id_greater", lambda c, v: c.id > v), ("id_less", lambda c, v: c.id < v)):
                raw = param(emu, request, name)
                if raw is not None and raw.lstrip("-").isdigit():
                    rows = [c for c in rows if keep(c, int(raw))]
            for name, attr, after in (
                ("filters[updated_after]", "udate", True),
                ("filters[updated_before]", "udate", False),
                ("filters[created_after]", "cdate", True),
                ("filters[created_before]", "cdate", False),
            ):
                raw = param(emu, request, name)
                moment = parse_filter_time(raw, emu.tz) if raw is not None else None
                if moment is not None:
                    # The spec says updated_after is "greater than or equal" for deals; for contacts the
                    # boundary is unconfirmed (§2) — the sandbox is inclusive.
                    rows = [c for c in rows if (getattr(c, attr) >= moment) == after]
            tagid = param(emu, request, "tagid")
            if tagid is not None and tagid.isdigit():
                tagged = {row.contact for row in state.contact_tags.values() if row.tag == int(tagid)}
                rows = [c for c in rows if c.id in tagged]
            rows = _ordered(emu, request, rows)
            total = len(rows)
            page = paging.slice(rows)
            includes = {
                part.strip() for part in (request.query.get("include") or "").split(",") if part.strip()
            }
            body: dict[str, Any] = {"scoreValues": []}
            side_values = "fieldValues" in includes
            contacts = []
            field_values: list[dict[str, Any]] = []
            contact_tags: list[dict[str, Any]] = []
            tag_ids: set[int] = set()
            for contact in page:
                values = state.values_of(contact.id) if side_values else []
                contacts.append(
                    render.contact(contact, value_ids=[v.id for v in values] if side_values else None)
                )
                field_values.extend(render.field_value(v) for v in values)
                if "contactTags" in includes or "contactTags.tag" in includes:
                    for row in state.tags_of(contact.id):
                        contact_tags.append(render.contact_tag(row))
                        tag_ids.add(row.tag)
            body["contacts"] = contacts
            if side_values:
                body["fieldValues"] = field_values
            if "contactTags" in includes or "contactTags.tag" in includes:
                body["contactTags"] = contact_tags
            if "contactTags.tag" in includes:
                body["tags"] = [render.tag(state.tags[t]) for t in sorted(tag_ids)]
        body["meta"] = {
            "total": str(total),  # §1: meta.total is a string here
            "page_input": {
                "segmentid": None,
                "formid": 0,
                "listid": 0,
                "tagid": int(tagid) if tagid and tagid.isdigit() else 0,
                "limit": paging.limit,
                "offset": paging.offset,
                "search": None,
                "sort": None,
                "seriesid": 0,
                "waitid": 0,
                "status": -1,
                "forceQuery": 0,
                "cacheid": "",
            },
        }
        return json_response(body)

    async def get_contact(request: web.Request) -> web.Response:
        contact_id = path_id(request)
        with state.lock:
            contact = state.contacts.get(contact_id) if contact_id is not None else None
            if contact is None:
                return message_404("Subscriber", request.match_info["id"])
            values = state.values_of(contact.id)
            deals = [d for d in state.deals.values() if d.contact == contact.id]
            body = render.contact(contact, value_ids=[v.id for v in values])
            body.update(contactAutomations=[], contactLists=[], geoIps=[], deals=[str(d.id) for d in deals])
            return json_response(
                {
                    "contactAutomations": [],
                    "contactLists": [],
                    "deals": [_contact_deal(render.deal(d)) for d in deals],
                    "fieldValues": [render.field_value(v) for v in values],
                    "geoAddresses": [],
                    "geoIps": [],
                    "contact": body,
                }
            )

    async def sync_contact(request: web.Request) -> web.Response:
        payload = await read_json(request)
        data = payload.get("contact") if isinstance(payload, dict) else None
        if (
            not isinstance(data, dict)
            or not isinstance(data.get("email"), str)
            or not _EMAIL.match(data["email"])
        ):
            return errors_422(
                "Email address is invalid", code="field_invalid", pointer="/data/attributes/email"
            )
        now = emu.clock.tick()
        with state.lock:
            contact = state.find_contact(data["email"])
            if contact is None:
                contact = state.add_contact(
                    Contact(state.next_id("contact"), data["email"].strip(), "", "", now, now)
                )
            problem = _apply_contact(emu, contact, data, now)
            if problem is not None:
                return problem
            return json_response(_contact_with_values(emu, contact), status=201)

    async def create_contact(request: web.Request) -> web.Response:
        payload = await read_json(request)
        data = payload.get("contact") if isinstance(payload, dict) else None
        if (
            not isinstance(data, dict)
            or not isinstance(data.get("email"), str)
            or not _EMAIL.match(data["email"])
        ):
            return errors_422(
                "Email address is invalid", code="field_invalid", pointer="/data/attributes/email"
            )
        now = emu.clock.tick()
        with state.lock:
            if state.find_contact(data["email"]) is not None:
                # §2 POST /contacts: an existing email is a 422 "duplicate".
                return errors_422(
                    "Email address already exists in the system",
                    code="duplicate",
                    pointer="/data/attributes/email",
                )
            contact = state.add_contact(
                Contact(state.next_id("contact"), data["email"].strip(), "", "", now, now)
            )
            problem = _apply_contact(emu, contact, data, now)
            if problem is not None:
                return problem
            return json_response(_contact_with_values(emu, contact), status=201)

    async def update_contact(request: web.Request) -> web.Response:
        contact_id = path_id(request)
        payload = await read_json(request)
        data = payload.get("contact") if isinstance(payload, dict) else None
        now = emu.clock.tick()
        with state.lock:
            contact = state.contacts.get(contact_id) if contact_id is not None else None
            if contact is None:
                return message_404("Subscriber", request.match_info["id"])
            problem = _apply_contact(emu, contact, data if isinstance(data, dict) else {}, now)
            if problem is not None:
                return problem
            return json_response(_contact_with_values(emu, contact))

    async def contact_field_values(request: web.Request) -> web.Response:
        contact_id = path_id(request)
        with state.lock:
            if contact_id not in state.contacts:
                return message_404("Subscriber", request.match_info["id"])
            return json_response(
                {"fieldValues": [render.field_value(v) for v in state.values_of(contact_id)]}
            )

    async def contact_tags(request: web.Request) -> web.Response:
        # Not in the OpenAPI but in every contact's links and used by peers (§4) [practice].
        contact_id = path_id(request)
        with state.lock:
            if contact_id not in state.contacts:
                return message_404("Subscriber", request.match_info["id"])
            rows = [render.contact_tag(row) for row in state.tags_of(contact_id)]
            return json_response({"contactTags": rows})

    async def contact_tracking_logs(request: web.Request) -> web.Response:
        contact_id = path_id(request)
        with state.lock:
            if contact_id not in state.contacts:
                return message_404("Subscriber", request.match_info["id"])
            logs = sorted(state.tracking_logs.get(contact_id, []), key=lambda log: log.id)
            return json_response({"trackingLogs": [render.tracking_log(log) for log in logs]})

    async def contact_deals(request: web.Request) -> web.Response:
        contact_id = path_id(request)
        with state.lock:
            if contact_id not in state.contacts:
                return message_404("Subscriber", request.match_info["id"])
            deals = sorted((d for d in state.deals.values() if d.contact == contact_id), key=lambda d: d.id)
            return json_response({"deals": [render.deal(d) for d in deals]})

    return [
        web.get("/api/3/contacts", list_contacts),
        web.post("/api/3/contacts", create_contact),
        web.get("/api/3/contacts/{id}", get_contact),
        web.put("/api/3/contacts/{id}", update_contact),
        web.post("/api/3/contact/sync", sync_contact),
        web.get("/api/3/contacts/{id}/fieldValues", contact_field_values),
        web.get("/api/3/contacts/{id}/contactTags", contact_tags),
        web.get("/api/3/contacts/{id}/trackingLogs", contact_tracking_logs),
        web.get("/api/3/contacts/{id}/deals", contact_deals),
    ]


def _ordered(emu: AccountHost, request: web.Request, rows: list[Contact]) -> list[Contact]:
    # §2: orders[...] take ASC/DESC (the spec enum is lowercase, doc examples uppercase): accept both.
    for name, key in (
        ("orders[id]", lambda c: c.id),
        ("orders[cdate]", lambda c: (c.cdate, c.id)),
        ("orders[email]", lambda c: (c.email.lower(), c.id)),
    ):
        direction = param(emu, request, name)
        if direction is not None:
            return sorted(rows, key=key, reverse=direction.strip().lower() == "desc")
    return sorted(rows, key=lambda c: c.id)


def _apply_contact(emu: AccountHost, contact: Contact, data: dict[str, Any], now: Any) -> web.Response | None:
    """Write the given attributes and field values; only keys present change (§2: empty strings overwrite)."""
    state = emu.state
    changed = False  # a contact attribute changed
    values_changed = False
    for key, attr in (("firstName", "first_name"), ("lastName", "last_name"), ("phone", "phone")):
        if key in data and data[key] is not None and getattr(contact, attr) != str(data[key]):
            setattr(contact, attr, str(data[key]))
            changed = True
    if isinstance(data.get("email"), str) and data["email"].strip().lower() != contact.email.lower():
        state.change_email(contact, data["email"].strip())
        changed = True
    values = data.get("fieldValues") or []
    if not isinstance(values, list):
        return errors_422(
            "fieldValues must be a list", code="field_invalid", pointer="/data/attributes/fieldValues"
        )
    for item in values:
        field_id = _as_int(item.get("field")) if isinstance(item, dict) else None
        if field_id is None or field_id not in state.fields:
            # §3: fields are referenced by numeric id only.
            return errors_422(
                "Field not found", code="related_missing", pointer="/data/attributes/fieldValues/field"
            )
        value = emu.stored_value(state.fields[field_id], item.get("value"))
        _, did_change = state.set_value(contact.id, field_id, value, now)
        values_changed = values_changed or did_change
    # §11.6: whether a field-value change bumps udate is unconfirmed; the sandbox does by default
    # (extra={"value_change_bumps_udate": False} turns it off).
    if changed or (values_changed and emu.value_change_bumps_udate):
        touch(contact, now)
    return None


def _contact_with_values(emu: AccountHost, contact: Contact) -> dict[str, Any]:
    values = emu.state.values_of(contact.id)
    body = emu.render.contact(contact, value_ids=[v.id for v in values])
    return {"fieldValues": [emu.render.field_value(v) for v in values], "contact": body}


def _contact_deal(deal: dict[str, Any]) -> dict[str, Any]:
    return {
        k: deal[k]
        for k in (
            "owner",
            "contact",
            "organization",
            "group",
            "title",
            "nexttaskid",
            "currency",
            "status",
            "id",
        )
    } | {"links": {}, "nextTask": None}


def _as_int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
