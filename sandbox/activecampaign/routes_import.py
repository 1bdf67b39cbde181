"""Bulk import: queue up to 250 contacts, poll the batch (activecampaign.md §7).

* ``POST /import/bulk_import``: at most 250 contacts and under 400,000 bytes a request; its own rate
  limit (100 requests a minute with several contacts, 20 with one) answered with **HTTP 400**, not
  429; a payload that fails validation is refused whole (``failureReasons`` name the contact index).
* The batch is processed asynchronously: ``GET /import/info?batchId=`` says ``processing`` until
  ``import_seconds + import_seconds_per_contact x contacts`` (``extra``; default 0.25 s + 1 ms, so
  0.5 s for 250) have passed since it was queued, and it has been polled ``import_polls`` times
  (default 0); then it applies the batch and answers ``completed`` with the contact ids that
  succeeded and the emails that failed. §7 says nothing about how long an import takes (nor names
  the in-between status): the delay is a small, configurable stand-in, and batches are processed
  independently so the emulator is never slower than the §7 cap of 100 imports a minute.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from aiohttp import web

from leadsync.sandbox.activecampaign.common import read_json
from leadsync.sandbox.activecampaign.events import touch
from leadsync.sandbox.activecampaign.state import Contact, ImportBatch
from leadsync.sandbox.faults import FaultKind
from leadsync.sandbox.platform import FAULT, json_response
from leadsync.sandbox.ratelimit import RollingWindowPolicy

if TYPE_CHECKING:
    from leadsync.sandbox.activecampaign.host import AccountHost

__all__ = ["MAX_IMPORT_BYTES", "MAX_IMPORT_CONTACTS", "import_routes"]

MAX_IMPORT_CONTACTS = 250  # §7
MAX_IMPORT_BYTES = 400_000  # §7: "payload < 400,000 bytes"
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_RATE_MESSAGE = (
    "Up to 100 imports may be requested per minute.Please batch contacts into larger requests, "
    "or retry this request in a minute."
)


def import_routes(emu: AccountHost) -> list[web.RouteDef]:
    state = emu.state
    multi = RollingWindowPolicy("bulk_import_multi", 100, 60.0)  # §7: 100 req/min multi-contact
    single = RollingWindowPolicy("bulk_import_single", 20, 60.0)  # §7: 20 req/min single-contact

    def rate_limited() -> web.Response:
        return json_response(
            {"success": 0, "message": "Rate limit exceeded.", "failureReasons": [_RATE_MESSAGE]}, status=400
        )

    async def bulk_import(request: web.Request) -> web.Response:
        fault = request.get(FAULT)
        if fault is not None and fault.kind is FaultKind.BULK_IMPORT_LIMIT:
            return rate_limited()
        raw = await request.read()
        if len(raw) >= MAX_IMPORT_BYTES:
            return _invalid([f"Payload is {len(raw)} bytes; it must be under {MAX_IMPORT_BYTES} bytes."])
        payload = await read_json(request)
        contacts = payload.get("contacts") if isinstance(payload, dict) else None
        if not isinstance(contacts, list) or not contacts:
            return _invalid([{"contact": 0, "failureReason": "Field 'contacts' is required"}])
        if len(contacts) > MAX_IMPORT_CONTACTS:
            return _invalid(
                [f"Up to {MAX_IMPORT_CONTACTS} contacts may be imported per request, got {len(contacts)}."]
            )
        if emu.options.rate_limits:
            decision = (single if len(contacts) == 1 else multi).check(
                request.get("sandbox.principal", "account")
            )
            if not decision.allowed:
                return rate_limited()
        reasons = [
            {"contact": index, "failureReason": problem}
            for index, item in enumerate(contacts)
            if (problem := _problem(item)) is not None
        ]
        if reasons:
            return _invalid(reasons)
        batch_id = str(uuid.UUID(int=emu.random.getrandbits(128), version=4))
        with state.lock:
            state.batches[batch_id] = ImportBatch(
                batch_id,
                contacts,
                emu.clock.now(),
                polls_left=emu.import_polls,
                ready_at=emu.monotonic()
                + emu.import_seconds
                + emu.import_seconds_per_contact * len(contacts),
            )
        # §7: the 200 example spells "Success" with a capital S.
        return json_response(
            {
                "Success": 1,
                "queued_contacts": len(contacts),
                "batchId": batch_id,
                "message": "Contact import queued",
            }
        )

    async def import_info(request: web.Request) -> web.Response:
        batch_id = request.query.get("batchId")
        if not batch_id:
            return json_response({"success": 0, "message": "'batchId' is a required field."}, status=400)
        with state.lock:
            batch = state.batches.get(batch_id)
            if batch is None:
                return json_response(
                    {"success": 0, "message": f"No batch found with id {batch_id}"}, status=400
                )
            if batch.status != "completed":
                batch.polls_left -= 1
                if batch.polls_left <= 0 and emu.monotonic() >= batch.ready_at:
                    process(batch)
            if batch.status != "completed":
                return json_response({"status": "processing", "success": [], "failure": []})
            return json_response({"status": "completed", "success": batch.success, "failure": batch.failure})

    async def import_list(_: web.Request) -> web.Response:
        with state.lock:
            now = emu.monotonic()
            for batch in list(state.batches.values()):
                if batch.status != "completed" and batch.polls_left <= 0 and now >= batch.ready_at:
                    process(batch)
            outstanding = [b for b in state.batches.values() if b.status != "completed"]
            done = [b for b in state.batches.values() if b.status == "completed"]
        day = emu.clock.now().strftime("%Y-%m-%d")

        def summary(batches: list[ImportBatch]) -> list[dict[str, str]]:
            if not batches:
                return []
            return [
                {
                    "forDate": day,
                    "batches": str(len(batches)),
                    "contacts": str(sum(len(b.contacts) for b in batches)),
                }
            ]

        return json_response({"outstanding": summary(outstanding), "recentlyCompleted": summary(done)})

    def process(batch: ImportBatch) -> None:
        for item in batch.contacts:
            email = item["email"].strip()
            now = emu.clock.tick()
            contact = state.find_contact(email)
            if contact is None:
                contact = state.add_contact(Contact(state.next_id("contact"), email, "", "", now, now))
            fields = item.get("fields") or []
            if any(_field_id(f) not in state.fields for f in fields):
                batch.failure.append(email)  # a field that does not exist: the contact is not imported
                continue
            changed = False
            for key, attr in (("first_name", "first_name"), ("last_name", "last_name"), ("phone", "phone")):
                value = item.get(key)
                if value and getattr(contact, attr) != str(value):
                    setattr(contact, attr, str(value))
                    changed = True
            values_changed = False
            for entry in fields:
                field_id = _field_id(entry)
                assert field_id is not None
                _, did = state.set_value(
                    contact.id, field_id, emu.stored_value(state.fields[field_id], entry.get("value")), now
                )
                values_changed = values_changed or did
            for name in item.get("tags") or []:
                tag = state.ensure_tag(str(name), now)  # §7: tags are created when missing
                state.tag_contact(contact.id, tag.id, now)
            if changed or (values_changed and emu.value_change_bumps_udate):
                touch(contact, now)
            batch.success.append(str(contact.id))
        batch.status = "completed"

    return [
        web.post("/api/3/import/bulk_import", bulk_import),
        web.get("/api/3/import/bulk_import", import_list),
        web.get("/api/3/import/info", import_info),
    ]


def _invalid(reasons: list[Any]) -> web.Response:
    return json_response(
        {
            "success": 0,
            "message": "JSON payload did not pass validation. Please fix failure Reasons and retry. "
            "The import was not queued for processing.",
            "failureReasons": reasons,
        },
        status=400,
    )


def _problem(item: Any) -> str | None:
    if not isinstance(item, Mapping):
        return "Each contact must be an object"
    email = item.get("email")
    if not isinstance(email, str) or not _EMAIL.match(email.strip()):
        return "Field\u2018 email\u2019 incorrect format"
    fields = item.get("fields", [])
    if not isinstance(fields, list) or any(_field_id(f) is None for f in fields):
        return "Field 'fields' must be a list of {id, value} with integer ids"
    tags = item.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        return "Field 'tags' must be a list of strings"
    return None


def _field_id(entry: Any) -> int | None:
    if not isinstance(entry, Mapping):
        return None
    value = entry.get("id")
    if isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
