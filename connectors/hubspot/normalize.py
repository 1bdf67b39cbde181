"""Pure normalisers: HubSpot payloads to ``ContactRecord`` / ``EventRecord`` (no I/O).

A payload that cannot be normalised raises ``BadRecord`` with the reason; the caller puts it in
``PullBatch.bad`` and the sync goes on.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

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
    "EMAIL_EVENT_TYPES",
    "contact",
    "counter_events",
    "email_event",
    "page_view",
    "parse_time",
    "plain_value",
    "won_deal_events",
]

# hubspot.md §4.1: the legacy email event types we score; the rest (PROCESSED, DEFERRED, DROPPED,
# SENT, PRINT, FORWARD, SUPPRESSED, UNBOUNCE) carry no engagement signal and are skipped.
EMAIL_EVENT_TYPES: dict[str, EventType] = {
    "DELIVERED": EventType.EMAIL_SENT,
    "OPEN": EventType.EMAIL_OPEN,
    "CLICK": EventType.EMAIL_CLICK,
    "BOUNCE": EventType.EMAIL_BOUNCE,
    "SPAMREPORT": EventType.EMAIL_SPAM_REPORT,
}
# The profile properties a contact record maps to its own fields (the rest stay in ``raw``).
PROFILE: tuple[str, ...] = (
    "email",
    "firstname",
    "lastname",
    "jobtitle",
    "company",
    "industry",
    "numemployees",
    "country",
    "lifecyclestage",
    "createdate",
    "lastmodifieddate",
    "hs_object_id",
)


def parse_time(value: Any) -> datetime | None:
    """HubSpot times: ISO strings in CRM properties (hubspot.md §2), epoch ms in email events (§4.1)."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float) or (isinstance(value, str) and value.isdigit()):
        return datetime.fromtimestamp(int(value) / 1000, tz=UTC)
    parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _text(props: Mapping[str, Any], name: str) -> str | None:
    value = props.get(name)
    # hubspot.md §2.7: "" and null both mean "no value"
    return None if value is None or value == "" else str(value)


def plain_value(value: Any) -> str | None:
    """A property as leadsync's logical string: HubSpot stores numbers as "15" or "15.0" and ""
    means unset (hubspot.md §2.7)."""
    if value in (None, ""):
        return None
    text = str(value)
    return text[:-2] if text.endswith(".0") and text[:-2].lstrip("-").isdigit() else text


def contact(raw: Mapping[str, Any], *, source: str, owned: Mapping[str, str] | None = None) -> ContactRecord:
    """One CRM contact. ``owned`` maps leadsync's logical fields to their property names, when the
    pull asked for them: their values go to ``ContactRecord.owned``, not to ``raw``."""
    rid = raw.get("id")
    props = raw.get("properties")
    if not rid or not isinstance(props, Mapping):
        raise BadRecord(
            "contact without an id or properties", record=dict(raw), remote_id=str(rid) if rid else None
        )
    # numemployees is an enumeration of ranges on real portals ("25-50", "1000+"): keep the floor.
    mine = set(owned.values()) if owned else set()
    # Text we cannot read ("about fifty") leaves the size unknown and is kept in raw.
    size_text = _text(props, "numemployees")
    size = parse_count(size_text)
    try:
        created = parse_time(props.get("createdate") or raw.get("createdAt"))
        updated = parse_time(props.get("lastmodifieddate") or raw.get("updatedAt"))
    except (ValueError, TypeError) as exc:
        raise BadRecord(
            f"contact {rid}: unreadable value ({exc})", record=dict(raw), remote_id=str(rid)
        ) from None
    return ContactRecord(
        source=source,
        platform=Platform.HUBSPOT,
        remote_id=str(rid),
        email=normalise_email(_text(props, "email")),
        first_name=_text(props, "firstname"),
        last_name=_text(props, "lastname"),
        job_title=_text(props, "jobtitle"),
        company=_text(props, "company"),
        industry=_text(props, "industry"),
        company_size=size,
        country=_text(props, "country"),
        lifecycle_stage=_text(props, "lifecyclestage"),
        created_at=created,
        updated_at=updated,
        raw={
            k: v
            for k, v in props.items()
            if (k not in PROFILE or (k == "numemployees" and size is None))
            and v not in (None, "")
            and k not in mine
        },
        owned=None
        if owned is None
        else {logical: plain_value(props.get(name)) for logical, name in owned.items()},
    )


def email_event(raw: Mapping[str, Any], *, source: str, contact_id: str) -> EventRecord | None:
    """One legacy email event; None for types we do not score. ``filteredEvent`` = machine activity."""
    kind = str(raw.get("type") or "")
    if kind == "STATUSCHANGE":
        subs = raw.get("subscriptions") or []
        unsubscribed = raw.get("portalSubscriptionStatus") == "UNSUBSCRIBED" or any(
            isinstance(s, Mapping) and s.get("status") == "UNSUBSCRIBED" for s in subs
        )
        if not unsubscribed:
            return None
        event_type = EventType.EMAIL_UNSUBSCRIBE
    elif kind in EMAIL_EVENT_TYPES:
        event_type = EMAIL_EVENT_TYPES[kind]
    else:
        return None
    eid, created = raw.get("id"), raw.get("created")
    if not eid or created is None:
        raise BadRecord("email event without id or created", record=dict(raw))
    try:
        when = parse_time(created)
    except (ValueError, TypeError, OverflowError):
        raise BadRecord(f"email event {eid}: unreadable created {created!r}", record=dict(raw)) from None
    assert when is not None
    properties: dict[str, Any] = {
        "campaign": str(raw["emailCampaignId"]) if raw.get("emailCampaignId") is not None else None,
        "machine": bool(raw.get("filteredEvent", False)),
    }
    if raw.get("url"):
        properties["url"] = raw["url"]
    return EventRecord(
        source=source,
        platform=Platform.HUBSPOT,
        # hubspot.md §4.1: events are identified by (created, id)
        source_id=f"email:{created}:{eid}",
        type=event_type,
        occurred_at=when,
        remote_contact_id=contact_id,
        email=normalise_email(raw.get("recipient")),
        properties=properties,
    )


def page_view(raw: Mapping[str, Any], *, source: str) -> EventRecord:
    eid, oid, at = raw.get("id"), raw.get("objectId"), raw.get("occurredAt")
    if not eid or not oid or not at:
        raise BadRecord("web event without id, objectId or occurredAt", record=dict(raw))
    try:
        when = parse_time(at)
    except ValueError:
        raise BadRecord(f"web event {eid}: unreadable occurredAt {at!r}", record=dict(raw)) from None
    assert when is not None
    props = raw.get("properties") or {}
    return EventRecord(
        source=source,
        platform=Platform.HUBSPOT,
        source_id=f"web:{eid}",
        type=EventType.PAGE_VIEW,
        occurred_at=when,
        remote_contact_id=str(oid),
        properties={"url": props.get("hs_url"), "machine": False},
    )


def _count(props: Mapping[str, Any], name: str) -> int:
    try:
        return int(float(props.get(name) or 0))
    except (TypeError, ValueError):
        return 0


def counter_events(
    raw: Mapping[str, Any], previous: tuple[int, int] | None, *, source: str, page_views: bool
) -> tuple[list[EventRecord], tuple[int, int]]:
    """DESIGN.md: a counter increase between pulls becomes events stamped with the last-activity time.

    Counters: ``hs_analytics_num_page_views`` (page views, stamped ``hs_analytics_last_timestamp``)
    and ``num_conversion_events`` (form submissions, stamped ``recent_conversion_date``),
    hubspot.md §4.3. Each event's source id is the counter's ordinal (view #7 of contact 101), so a
    re-read never double counts. Returns the events and the counts to remember.
    """
    rid = str(raw["id"])
    props = raw.get("properties") or {}
    views, forms = _count(props, "hs_analytics_num_page_views"), _count(props, "num_conversion_events")
    before_views, before_forms = previous or (0, 0)
    events: list[EventRecord] = []
    email = normalise_email(props.get("email"))
    if page_views and views > before_views:
        when = parse_time(
            props.get("hs_analytics_last_timestamp") or props.get("hs_analytics_last_visit_timestamp")
        )
        if when is not None:
            url = props.get("hs_analytics_last_url")
            for n in range(before_views + 1, views + 1):
                events.append(
                    EventRecord(
                        source,
                        Platform.HUBSPOT,
                        f"pv:{rid}:{n}",
                        EventType.PAGE_VIEW,
                        when,
                        rid,
                        email,
                        {"url": url if n == views else None, "machine": False, "counter": True},
                    )
                )
    if forms > before_forms:
        when = parse_time(props.get("recent_conversion_date"))
        if when is not None:
            name = props.get("recent_conversion_event_name")
            for n in range(before_forms + 1, forms + 1):
                kind = _conversion_type(name) if n == forms else EventType.FORM_SUBMIT
                events.append(
                    EventRecord(
                        source,
                        Platform.HUBSPOT,
                        f"form:{rid}:{n}",
                        kind,
                        when,
                        rid,
                        email,
                        {"form": name if n == forms else None, "counter": True},
                    )
                )
    return events, (max(views, before_views), max(forms, before_forms))


def _conversion_type(name: Any) -> EventType:
    text = str(name or "").lower()
    if "demo" in text:
        return EventType.DEMO_REQUEST
    if "trial" in text:
        return EventType.TRIAL_STARTED
    if "webinar" in text:
        return EventType.WEBINAR_ATTENDED
    if "download" in text or "guide" in text or "ebook" in text:
        return EventType.CONTENT_DOWNLOAD
    return EventType.FORM_SUBMIT


def won_deal_events(raw: Mapping[str, Any], *, source: str, won_stages: set[str]) -> list[EventRecord]:
    """A deal in a won stage becomes one ``deal_won`` event per associated contact."""
    props = raw.get("properties") or {}
    if props.get("dealstage") not in won_stages:
        return []
    did = raw.get("id")
    when = parse_time(props.get("closedate") or raw.get("updatedAt"))
    if not did or when is None:
        raise BadRecord("won deal without id or close date", record=dict(raw))
    contacts = ((raw.get("associations") or {}).get("contacts") or {}).get("results") or []
    amount = props.get("amount")
    return [
        EventRecord(
            source,
            Platform.HUBSPOT,
            f"deal:{did}:{c['id']}",
            EventType.DEAL_WON,
            when,
            str(c["id"]),
            None,
            {"deal_id": str(did), "amount": float(amount) if amount not in (None, "") else None},
        )
        for c in contacts
        if isinstance(c, Mapping) and c.get("id")
    ]
