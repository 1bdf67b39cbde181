"""What one ActiveCampaign account holds: contacts, custom fields and values, tags, activities,
tracking logs, deals and bulk-import batches.

Facts: the ActiveCampaign fact sheet, activecampaign.md (cited as "§N"). Ids are integers here and
strings on the wire (§1). Times are kept as aware UTC datetimes and rendered in the account's
timezone (§1: ``cdate``/``udate`` carry the account's offset) by ``sandbox.activecampaign.shapes``.

The state is shared by the server's event loop and the admin thread that applies world deltas, so
every read and write goes through ``lock``.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

__all__ = [
    "AccountState",
    "Activity",
    "Contact",
    "ContactTag",
    "CustomField",
    "Deal",
    "FieldRel",
    "FieldValue",
    "ImportBatch",
    "Tag",
    "TrackingLog",
]


@dataclass
class Contact:
    id: int
    email: str
    first_name: str
    last_name: str
    cdate: datetime
    udate: datetime
    phone: str = ""
    person_id: str | None = None


@dataclass
class CustomField:
    id: int
    title: str
    type: str
    perstag: str
    cdate: datetime
    udate: datetime
    descript: str | None = None
    defval: str | None = None
    visible: bool = True
    ordernum: int = 0


@dataclass
class FieldRel:
    id: int
    field: int
    relid: int
    cdate: datetime


@dataclass
class FieldValue:
    id: int
    contact: int
    field: int
    value: str
    cdate: datetime
    udate: datetime


@dataclass
class Tag:
    id: int
    tag: str
    cdate: datetime
    tag_type: str = "contact"
    description: str = ""


@dataclass
class ContactTag:
    id: int
    contact: int
    tag: int
    cdate: datetime


@dataclass
class Activity:
    """One row of ``GET /activities`` (§5). ``reference_*`` say what happened to what."""

    id: int
    contact: int
    tstamp: datetime
    reference_type: str
    reference_id: int
    reference_action: str
    reference_model: str
    json_data: dict[str, Any] | None = None


@dataclass
class TrackingLog:
    """One event-tracking event (§5: ``type`` is the event name, ``value`` its eventdata)."""

    id: int
    contact: int
    type: str
    value: str
    tstamp: datetime


@dataclass
class Deal:
    id: int
    contact: int
    title: str
    value_cents: int
    status: int  # 0 open, 1 won, 2 lost
    cdate: datetime
    mdate: datetime
    stage: int = 1
    group: int = 1
    currency: str = "usd"


@dataclass
class ImportBatch:
    """A queued ``POST /import/bulk_import`` (§7): applied when processed, then ``completed``."""

    id: str
    contacts: list[dict[str, Any]]
    queued_at: datetime
    polls_left: int
    ready_at: float = 0.0  # monotonic seconds: processing is asynchronous and takes a moment
    status: str = "queued"
    success: list[str] = field(default_factory=list)
    failure: list[str] = field(default_factory=list)


class AccountState:
    """The account's records with the indexes the routes need."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.contacts: dict[int, Contact] = {}
        self.contact_by_email: dict[str, int] = {}
        self.contact_by_person: dict[str, int] = {}
        # called with (contact id, webhook type, extra fields) when a field value or tag of a
        # contact changes outside the world's own events (``quiet``): the webhooks it causes
        self.on_write: Any = None
        self.quiet = False
        self.fields: dict[int, CustomField] = {}
        self.field_rels: dict[int, FieldRel] = {}
        self.field_values: dict[int, FieldValue] = {}
        self._values_by_contact: dict[int, dict[int, int]] = {}  # contact -> field -> fieldValue id
        self.tags: dict[int, Tag] = {}
        self.tag_by_name: dict[str, int] = {}  # lower-cased
        self.contact_tags: dict[int, ContactTag] = {}
        self._tags_by_contact: dict[int, dict[int, int]] = {}  # contact -> tag -> contactTag id
        self.activities: list[Activity] = []  # append-only, in insertion (and id) order
        self._by_time: tuple[int, list[Activity], list[tuple[datetime, int]]] = (0, [], [])
        self._per_contact: tuple[int, Counter[int]] = (0, Counter())
        self.tracking_logs: dict[int, list[TrackingLog]] = {}  # by contact
        self.deals: dict[int, Deal] = {}
        self.deal_by_source: dict[str, int] = {}
        self.campaign_ids: dict[str, int] = {}  # world campaign id -> AC campaign id
        self.campaign_names: dict[int, str] = {}
        self.batches: dict[str, ImportBatch] = {}
        self._next: dict[str, int] = {}

    def next_id(self, kind: str) -> int:
        value = self._next.get(kind, 0) + 1
        self._next[kind] = value
        return value

    # --- contacts ----------------------------------------------------------------------------

    def find_contact(self, email: str) -> Contact | None:
        contact_id = self.contact_by_email.get(email.strip().lower())
        return self.contacts.get(contact_id) if contact_id is not None else None

    def add_contact(self, contact: Contact) -> Contact:
        self.contacts[contact.id] = contact
        self.contact_by_email[contact.email.strip().lower()] = contact.id
        if contact.person_id is not None:
            self.contact_by_person[contact.person_id] = contact.id
        return contact

    def change_email(self, contact: Contact, email: str) -> None:
        self.contact_by_email.pop(contact.email.strip().lower(), None)
        contact.email = email
        self.contact_by_email[email.strip().lower()] = contact.id

    # --- custom fields -----------------------------------------------------------------------

    def field_by_perstag(self, perstag: str) -> CustomField | None:
        for custom in self.fields.values():
            if custom.perstag.upper() == perstag.upper():
                return custom
        return None

    def values_of(self, contact_id: int) -> list[FieldValue]:
        """A contact's values in field order (an index: a page of contacts with their values reads
        only those contacts' values)."""
        by_field = self._values_by_contact.get(contact_id, {})
        return [self.field_values[by_field[field_id]] for field_id in sorted(by_field)]

    def set_value(self, contact_id: int, field_id: int, value: str, now: datetime) -> tuple[FieldValue, bool]:
        """Upsert one value; return it and whether it changed."""
        existing_id = self._values_by_contact.get(contact_id, {}).get(field_id)
        if existing_id is not None:
            existing = self.field_values[existing_id]
            if existing.value == value:
                return existing, False
            existing.value = value
            existing.udate = now
            self._wrote(contact_id, "update", {})
            return existing, True
        created = FieldValue(self.next_id("fieldValue"), contact_id, field_id, value, now, now)
        self.field_values[created.id] = created
        self._values_by_contact.setdefault(contact_id, {})[field_id] = created.id
        self._wrote(contact_id, "update", {})
        return created, True

    def _wrote(self, contact_id: int, kind: str, extra: dict[str, Any]) -> None:
        if self.on_write is not None and not self.quiet:
            self.on_write(contact_id, kind, extra)

    # --- activities ----------------------------------------------------------------------------

    def activities_by_time(self) -> tuple[list[Activity], list[tuple[datetime, int]]]:
        """The activities by (tstamp, id), with those keys for bisecting: sorted again only after
        activities were added (the list is append-only), not for every page read."""
        count, rows, keys = self._by_time
        if count != len(self.activities):
            rows = sorted(self.activities, key=lambda a: (a.tstamp, a.id))
            keys = [(a.tstamp, a.id) for a in rows]
            self._by_time = (len(self.activities), rows, keys)
        return rows, keys

    def activity_counts(self) -> Counter[int]:
        """Activities per contact id, counted again only after activities were added."""
        count, per_contact = self._per_contact
        if count != len(self.activities):
            per_contact = Counter(a.contact for a in self.activities)
            self._per_contact = (len(self.activities), per_contact)
        return per_contact

    # --- tags --------------------------------------------------------------------------------

    def tag_named(self, name: str) -> Tag | None:
        tag_id = self.tag_by_name.get(name.strip().lower())
        return self.tags.get(tag_id) if tag_id is not None else None

    def ensure_tag(self, name: str, now: datetime) -> Tag:
        existing = self.tag_named(name)
        if existing is not None:
            return existing
        tag = Tag(self.next_id("tag"), name.strip(), now)
        self.tags[tag.id] = tag
        self.tag_by_name[tag.tag.lower()] = tag.id
        return tag

    def tag_contact(self, contact_id: int, tag_id: int, now: datetime) -> tuple[ContactTag, bool]:
        existing_id = self._tags_by_contact.get(contact_id, {}).get(tag_id)
        if existing_id is not None:
            return self.contact_tags[existing_id], False
        row = ContactTag(self.next_id("contactTag"), contact_id, tag_id, now)
        self.contact_tags[row.id] = row
        self._tags_by_contact.setdefault(contact_id, {})[tag_id] = row.id
        self._wrote(contact_id, "contact_tag_added", {"tag": self.tags[tag_id].tag})
        return row, True

    def untag(self, contact_tag_id: int) -> ContactTag | None:
        row = self.contact_tags.pop(contact_tag_id, None)
        if row is not None:
            self._tags_by_contact.get(row.contact, {}).pop(row.tag, None)
            tag = self.tags.get(row.tag)
            self._wrote(row.contact, "contact_tag_removed", {"tag": tag.tag if tag else ""})
        return row

    def tags_of(self, contact_id: int) -> list[ContactTag]:
        return [
            self.contact_tags[row_id] for row_id in sorted(self._tags_by_contact.get(contact_id, {}).values())
        ]
