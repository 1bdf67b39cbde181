"""How ActiveCampaign renders its records on the wire (activecampaign.md §1–§5, §7).

* ids and most numbers are strings (§1);
* ``cdate``/``udate``/``tstamp`` are ISO 8601 with the **account's** timezone offset (§1);
* ``*_utc_timestamp`` are ``YYYY-MM-DD HH:MM:SS`` without a zone (§1);
* empty dates are ``0000-00-00`` / ``0000-00-00 00:00:00`` (§1);
* every object carries ``links`` to its sub-resources (§1).
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from leadsync.sandbox.activecampaign.state import (
    Activity,
    Contact,
    ContactTag,
    CustomField,
    Deal,
    FieldRel,
    FieldValue,
    Tag,
    TrackingLog,
)

__all__ = [
    "EMPTY_DATE",
    "EMPTY_DATETIME",
    "Renderer",
    "account_timezone",
]

EMPTY_DATE = "0000-00-00"
EMPTY_DATETIME = "0000-00-00 00:00:00"
_CONTACT_LINKS = (
    "bounceLogs",
    "contactAutomations",
    "contactData",
    "contactGoals",
    "contactLists",
    "contactLogs",
    "contactTags",
    "contactDeals",
    "deals",
    "fieldValues",
    "geoIps",
    "notes",
    "organization",
    "plusAppend",
    "trackingLogs",
    "scoreValues",
    "accountContacts",
    "automationEntryCounts",
)
_DEAL_LINKS = (
    "dealActivities",
    "contact",
    "contactDeals",
    "group",
    "nextTask",
    "notes",
    "account",
    "customerAccount",
    "organization",
    "owner",
    "scoreValues",
    "stage",
    "tasks",
    "dealCustomFieldData",
)


def account_timezone(name: str) -> tzinfo:
    """The account's timezone (Settings → Account); a fixed offset like ``-05:00`` also works."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        sign = -1 if name.startswith("-") else 1
        hours, _, minutes = name.lstrip("+-").partition(":")
        return timezone(sign * timedelta(hours=int(hours), minutes=int(minutes or 0)))


class Renderer:
    """Turns state records into wire JSON for one account (its base URL and timezone)."""

    def __init__(self, tz: tzinfo, base: str = "https://sandbox.api-us1.com/api/3") -> None:
        self.tz = tz
        self.base = base

    # --- times -------------------------------------------------------------------------------

    def local(self, moment: datetime | None) -> str | None:
        """``2026-06-01T04:30:00-05:00`` (§1: the account's offset)."""
        if moment is None:
            return None
        return moment.astimezone(self.tz).isoformat(timespec="seconds")

    def plain(self, moment: datetime | None, *, utc: bool) -> str:
        """``YYYY-MM-DD HH:MM:SS`` (UTC or account-local), ``0000-00-00 00:00:00`` when empty."""
        if moment is None:
            return EMPTY_DATETIME
        return moment.astimezone(UTC if utc else self.tz).strftime("%Y-%m-%d %H:%M:%S")

    # --- records -----------------------------------------------------------------------------

    def contact(self, contact: Contact, *, value_ids: list[int] | None = None) -> dict[str, Any]:
        local, domain = (contact.email.split("@", 1) + [""])[:2]
        body: dict[str, Any] = {
            "cdate": self.local(contact.cdate),
            "email": contact.email,
            "phone": contact.phone,
            "firstName": contact.first_name,
            "lastName": contact.last_name,
            "orgid": "0",
            "orgname": "",
            "segmentio_id": "",
            "bounced_hard": "0",
            "bounced_soft": "0",
            "bounced_date": EMPTY_DATE,
            "ip": "0",
            "ua": "",
            "hash": hashlib.md5(contact.email.lower().encode()).hexdigest(),  # noqa: S324 - not security
            "socialdata_lastcheck": EMPTY_DATETIME,
            "email_local": local,
            "email_domain": domain,
            "sentcnt": "0",
            "rating_tstamp": EMPTY_DATE,
            "gravatar": "0",
            "deleted": "0",
            "anonymized": "0",
            "adate": EMPTY_DATETIME,
            "udate": self.local(contact.udate),
            "edate": EMPTY_DATETIME,
            "deleted_at": EMPTY_DATETIME,
            "created_utc_timestamp": self.plain(contact.cdate, utc=True),
            "updated_utc_timestamp": self.plain(contact.udate, utc=True),
            "created_timestamp": self.plain(contact.cdate, utc=False),
            "updated_timestamp": self.plain(contact.udate, utc=False),
            "created_by": "0",
            "updated_by": "0",
            "email_empty": False,
            "mpp_tracking": "0",
            "scoreValues": [],
            "accountContacts": [],
            "links": {name: f"{self.base}/contacts/{contact.id}/{name}" for name in _CONTACT_LINKS},
            "id": str(contact.id),
            "organization": "",  # the sync/create answers type it as a string
        }
        if value_ids is not None:
            body["fieldValues"] = [str(value_id) for value_id in value_ids]  # §1: parents carry ids
        return body

    def field_value(self, value: FieldValue) -> dict[str, Any]:
        return {
            "contact": str(value.contact),
            "field": str(value.field),
            "value": value.value,
            "cdate": self.local(value.cdate),
            "udate": self.local(value.udate),
            "created_by": "0",
            "updated_by": "0",
            "links": {
                "owner": f"{self.base}/fieldValues/{value.id}/owner",
                "field": f"{self.base}/fieldValues/{value.id}/field",
            },
            "id": str(value.id),
            "owner": str(value.contact),
        }

    def custom_field(self, custom: CustomField, rels: list[FieldRel]) -> dict[str, Any]:
        return {
            "title": custom.title,
            "descript": custom.descript,
            "type": custom.type,
            "isrequired": "0",
            "perstag": custom.perstag,
            "defval": custom.defval,
            "show_in_list": "0",
            "rows": "0",
            "cols": "0",
            "visible": "1" if custom.visible else "0",
            "service": "",
            "ordernum": str(custom.ordernum),
            "cdate": self.local(custom.cdate),
            "udate": self.local(custom.udate),
            "options": [],
            "relations": [str(rel.id) for rel in rels],
            "links": {
                "options": f"{self.base}/fields/{custom.id}/options",
                "relations": f"{self.base}/fields/{custom.id}/relations",
            },
            "id": str(custom.id),
        }

    def field_rel(self, rel: FieldRel, *, ints: bool) -> dict[str, Any]:
        # The create answer echoes relid/field as integers (spec:create-a-custom-field-relationship-to-lists);
        # listings use strings like every other id.
        return {
            "relid": rel.relid if ints else str(rel.relid),
            "field": rel.field if ints else str(rel.field),
            "cdate": self.local(rel.cdate),
            "links": [],
            "id": str(rel.id),
        }

    def tag(self, tag: Tag, *, count: int | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "tagType": tag.tag_type,
            "tag": tag.tag,
            "description": tag.description,
            "cdate": self.local(tag.cdate),
            "links": {"contactGoalTags": f"{self.base}/tags/{tag.id}/contactGoalTags"},
            "id": str(tag.id),
        }
        if count is not None:
            body["subscriber_count"] = str(count)
        return body

    def contact_tag(self, row: ContactTag) -> dict[str, Any]:
        return {
            "contact": str(row.contact),
            "tag": str(row.tag),
            "cdate": self.local(row.cdate),
            "created_timestamp": self.plain(row.cdate, utc=False),
            "updated_timestamp": self.plain(row.cdate, utc=False),
            "created_by": None,
            "updated_by": None,
            "links": {
                "contact": f"{self.base}/contactTags/{row.id}/contact",
                "tag": f"{self.base}/contactTags/{row.id}/tag",
            },
            "id": str(row.id),
        }

    def activity(self, activity: Activity) -> dict[str, Any]:
        return {
            "tstamp": self.local(activity.tstamp),
            "subscriberid": str(activity.contact),
            "reference_type": activity.reference_type,
            "reference_id": str(activity.reference_id),
            "reference_action": activity.reference_action,
            "jsonData": json.dumps(activity.json_data) if activity.json_data is not None else None,
            "userid": "0",
            "permission": "",
            "referenceModelName": activity.reference_model,
            "notes": [],
            "recipients": [],
            "reference": {"type": activity.reference_model, "id": str(activity.reference_id)},
            "user": None,
            "id": str(activity.id),
        }

    def tracking_log(self, log: TrackingLog) -> dict[str, Any]:
        return {
            "subscriberid": str(log.contact),
            "type": log.type,
            "value": log.value,
            "tstamp": self.local(log.tstamp),
            "hash": hashlib.md5(f"{log.id}".encode()).hexdigest()[:16],  # noqa: S324 - not security
            "links": {"contact": f"{self.base}/trackingLogs/{log.id}/contact"},
            "id": str(log.id),
            "contact": str(log.contact),
        }

    def deal(self, deal: Deal) -> dict[str, Any]:
        return {
            "hash": hashlib.md5(f"deal{deal.id}".encode()).hexdigest()[:9],  # noqa: S324 - not security
            "owner": "1",
            "contact": str(deal.contact),
            "organization": "0",
            "group": str(deal.group),
            "stage": str(deal.stage),
            "title": deal.title,
            "description": "",
            "percent": "0",
            "cdate": self.local(deal.cdate),
            "mdate": self.local(deal.mdate),
            "nextdate": None,
            "nexttaskid": None,
            "value": str(deal.value_cents),
            "currency": deal.currency,
            "winProbability": 0,
            "winProbabilityMdate": self.local(deal.mdate),
            "status": str(deal.status),
            "activitycount": "0",
            "nextdealid": "0",
            "edate": self.local(deal.mdate),
            "links": {name: f"{self.base}/deals/{deal.id}/{name}" for name in _DEAL_LINKS},
            "id": str(deal.id),
            "isDisabled": False,
            "account": "0",
            "customerAccount": "0",
        }
