"""Pure ActiveCampaign → leadsync record conversion (no I/O; ``now`` is never needed here because
every record carries its own platform time).

Facts: activecampaign.md §1 (string ids; ``udate``/``tstamp`` ISO with the account's offset;
``0000-00-00 00:00:00`` for empty dates), §3 (custom fields by numeric id), §5 (activities,
tracking logs, deals).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from leadsync.connectors.base import WRITEBACK_FIELDS
from leadsync.connectors.errors import BadRecord
from leadsync.connectors.records import (
    ContactRecord,
    EventRecord,
    EventType,
    Platform,
    normalise_email,
    parse_count,
)

__all__ = [
    "ACTIVITY_EVENTS",
    "PROFILE_PERSTAGS",
    "contact_record",
    "activity_event",
    "deal_event",
    "parse_ac_time",
    "tracking_event",
]

# ContactRecord attribute -> the personalisation tag of the custom field holding it (§3: there are
# no standard contact fields for these). Overridable with options["profile_fields"].
PROFILE_PERSTAGS: dict[str, str] = {
    "job_title": "JOB_TITLE",
    "company": "COMPANY",
    "industry": "INDUSTRY",
    "company_size": "COMPANY_SIZE",
    "country": "COUNTRY",
    "seniority": "SENIORITY",
}

# (reference_type, reference_action) -> event type. §5: the vocabulary is UNCONFIRMED; this table
# is our assumption (mirrored by the sandbox) and can be extended with options["activity_map"].
ACTIVITY_EVENTS: dict[tuple[str, str], EventType] = {
    ("log", "sent"): EventType.EMAIL_SENT,
    ("log", "open"): EventType.EMAIL_OPEN,
    ("link", "click"): EventType.EMAIL_CLICK,
    ("bounce", "bounce"): EventType.EMAIL_BOUNCE,
    ("contactlist", "unsubscribe"): EventType.EMAIL_UNSUBSCRIBE,
    ("log", "abuse"): EventType.EMAIL_SPAM_REPORT,
}

_EMPTY_DATES = {"", "0000-00-00", "0000-00-00 00:00:00"}
_EVENT_TYPES = {t.value: t for t in EventType}


def parse_ac_time(value: Any, *, field: str = "time") -> datetime | None:
    """An ActiveCampaign time as aware UTC; None for the empty forms (§1).

    Accepts ISO with an offset (``2018-09-28T17:30:52-05:00``) and ``YYYY-MM-DD HH:MM:SS``, which
    is read as UTC (only the ``*_utc_timestamp`` fields use that form here). Raises ValueError.
    """
    if value is None:
        return None
    text = str(value).strip()
    if text in _EMPTY_DATES:
        return None
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    moment = datetime.fromisoformat(text.replace(" ", "T", 1) if "T" not in text else text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _required_time(raw: Mapping[str, Any], key: str, what: str, remote_id: str | None) -> datetime:
    try:
        moment = parse_ac_time(raw.get(key), field=key)
    except ValueError:
        raise BadRecord(
            f"{what} has an unreadable {key} {raw.get(key)!r}", record=raw, remote_id=remote_id
        ) from None
    if moment is None:
        raise BadRecord(f"{what} has no {key}", record=raw, remote_id=remote_id)
    return moment


def _id(raw: Mapping[str, Any], what: str) -> str:
    value = raw.get("id")
    if value is None or str(value).strip() in ("", "0"):
        raise BadRecord(f"{what} without an id", record=raw)
    return str(value)


def contact_record(
    raw: Mapping[str, Any],
    values: Mapping[str, str],
    *,
    source: str,
    perstag_of: Mapping[str, str],
    profile: Mapping[str, str] = PROFILE_PERSTAGS,
    field_prefix: str | None = None,
    tags: Sequence[str] | None = None,
) -> ContactRecord:
    """One ``contacts[]`` item. ``values`` maps field id -> value (from the side-loaded
    ``fieldValues``); ``perstag_of`` maps field id -> personalisation tag; ``tags`` are the names of
    the contact's tags (side-loaded ``contactTags.tag``), None when not read.

    With ``field_prefix``, leadsync's own custom fields (perstag ``<PREFIX><FIELD>``) and tags (named
    with the prefix) go to ``ContactRecord.owned``, not to ``raw``."""
    remote_id = _id(raw, "contact")
    try:
        created = parse_ac_time(raw.get("cdate"))
    except ValueError:
        created = None
    # §1: an empty udate ("0000-00-00 00:00:00") is no date: the contact was never updated since
    # it was created, so its creation time stands in. Only a contact with neither is refused.
    if created is not None and str(raw.get("udate") or "").strip() in _EMPTY_DATES:
        updated = created
    else:
        updated = _required_time(raw, "udate", "contact", remote_id)
    by_tag = {perstag_of.get(fid, f"FIELD_{fid}").upper(): value for fid, value in values.items()}
    profile_values: dict[str, str | None] = {}
    for attribute, tag in profile.items():
        value = by_tag.pop(tag.upper(), None)
        profile_values[attribute] = value.strip() if isinstance(value, str) and value.strip() else None
    owned: dict[str, Any] | None = None
    if field_prefix is not None:
        owned = {}
        for logical in WRITEBACK_FIELDS:
            value = by_tag.pop(f"{field_prefix}{logical}".upper(), None)
            owned[logical] = value if value not in (None, "") else None
        if tags is not None:
            owned["tags"] = sorted(name for name in tags if name.lower().startswith(field_prefix.lower()))
    size_text = profile_values.pop("company_size")
    company_size = parse_count(size_text)  # §1: numbers are strings ("250", "1,200")
    if size_text and company_size is None:
        by_tag["COMPANY_SIZE"] = size_text  # keep what we could not read
    raw_rest: dict[str, Any] = {"fields": by_tag} if by_tag else {}
    if raw.get("phone"):
        raw_rest["phone"] = raw["phone"]
    return ContactRecord(
        source=source,
        platform=Platform.ACTIVECAMPAIGN,
        remote_id=remote_id,
        email=normalise_email(raw.get("email")),
        first_name=(raw.get("firstName") or None),
        last_name=(raw.get("lastName") or None),
        job_title=profile_values.get("job_title"),
        seniority=profile_values.get("seniority"),
        company=profile_values.get("company"),
        industry=profile_values.get("industry"),
        company_size=company_size,
        country=profile_values.get("country"),
        created_at=created,
        updated_at=updated,
        raw=raw_rest,
        owned=owned,
    )


def activity_event(
    raw: Mapping[str, Any],
    *,
    source: str,
    table: Mapping[tuple[str, str], EventType] = ACTIVITY_EVENTS,
) -> EventRecord | None:
    """One ``activities[]`` item, or None when it is not engagement we score (notes, tasks …)."""
    activity_id = _id(raw, "activity")
    kind = (str(raw.get("reference_type") or "").lower(), str(raw.get("reference_action") or "").lower())
    event_type = table.get(kind)
    if event_type is None:
        return None
    contact = raw.get("subscriberid")
    if contact in (None, "", "0"):
        raise BadRecord("activity without a contact (subscriberid)", record=raw, remote_id=activity_id)
    occurred = _required_time(raw, "tstamp", "activity", activity_id)
    properties: dict[str, Any] = {}
    data = _json_object(raw.get("jsonData"))
    campaign = data.get("campaign")
    if isinstance(campaign, Mapping):
        properties["campaign"] = campaign.get("name") or campaign.get("id")
    elif isinstance(campaign, str):
        properties["campaign"] = campaign
    if isinstance(data.get("url"), str):
        properties["url"] = data["url"]
    return EventRecord(
        source=source,
        platform=Platform.ACTIVECAMPAIGN,
        source_id=f"activity:{activity_id}",
        type=event_type,
        occurred_at=occurred,
        remote_contact_id=str(contact),
        properties=properties,
    )


def tracking_event(
    raw: Mapping[str, Any],
    *,
    source: str,
    names: Mapping[str, EventType] | None = None,
) -> EventRecord | None:
    """One ``trackingLogs[]`` item (§5: ``type`` = event name, ``value`` = eventdata), or None for
    event names we do not score. Names default to our event type values (``page_view`` …)."""
    log_id = _id(raw, "tracking log")
    name = str(raw.get("type") or "").strip().lower()
    event_type = (names or {}).get(name) or _EVENT_TYPES.get(name)
    if event_type is None:
        return None
    contact = raw.get("contact") or raw.get("subscriberid")
    if contact in (None, "", "0"):
        raise BadRecord("tracking log without a contact", record=raw, remote_id=log_id)
    occurred = _required_time(raw, "tstamp", "tracking log", log_id)
    value = raw.get("value")
    properties: dict[str, Any] = {}
    if isinstance(value, str) and value.startswith(("http://", "https://")):
        properties["url"] = value
    elif isinstance(value, str) and value:
        parsed = _json_object(value)
        properties.update(parsed if parsed else {"value": value})
    return EventRecord(
        source=source,
        platform=Platform.ACTIVECAMPAIGN,
        source_id=f"tracking:{log_id}",
        type=event_type,
        occurred_at=occurred,
        remote_contact_id=str(contact),
        properties=properties,
    )


def deal_event(raw: Mapping[str, Any], *, source: str) -> EventRecord | None:
    """A won deal (``status`` "1", §5) as a ``deal_won`` event at its ``mdate``; else None."""
    deal_id = _id(raw, "deal")
    if str(raw.get("status")) != "1":
        return None
    contact = raw.get("contact")
    if contact in (None, "", "0"):
        raise BadRecord("won deal without a primary contact", record=raw, remote_id=deal_id)
    occurred = _required_time(raw, "mdate", "deal", deal_id)
    properties: dict[str, Any] = {"deal_id": deal_id}
    try:
        properties["amount"] = int(str(raw.get("value") or "0")) / 100  # deal values are in cents
    except ValueError:
        pass
    if raw.get("currency"):
        properties["currency"] = raw["currency"]
    return EventRecord(
        source=source,
        platform=Platform.ACTIVECAMPAIGN,
        source_id=f"deal:{deal_id}:won",
        type=EventType.DEAL_WON,
        occurred_at=occurred,
        remote_contact_id=str(contact),
        properties=properties,
    )


def _json_object(value: Any) -> dict[str, Any]:
    if isinstance(value, Mapping):
        return dict(value)
    if not isinstance(value, str) or not value.strip().startswith("{"):
        return {}
    try:
        parsed = json.loads(value)
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}
