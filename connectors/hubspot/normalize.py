"""Pure normalisers: HubSpot payloads to ``ContactRecord`` / ``EventRecord`` (no I/O).

A payload that cannot be normalised raises ``BadRecord`` with the reason; the caller puts it in
``PullBatch.bad`` and the sync goes on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from leadsync.connectors.errors import BadRecord
from leadsync.connectors.records import (
    ContactRecord,
    EventRecord,
    EventType,
    Platform,
    call_outcome,
    meeting_outcome,
    normalise_email,
    parse_count,
)

__all__ = [
    "CALL_PROPERTIES",
    "EMAIL_EVENT_TYPES",
    "MEETING_PROPERTIES",
    "call_events",
    "contact",
    "conversion_type",
    "counter_events",
    "email_event",
    "form_counter_events",
    "form_submission_events",
    "meeting_events",
    "page_view",
    "page_view_counter_events",
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
    before_views, before_forms = previous or (0, 0)
    views, view_count = page_view_counter_events(raw, before_views, source=source, enabled=page_views)
    forms, form_count = form_counter_events(raw, before_forms, source=source)
    return views + forms, (view_count, form_count)


def form_count(raw: Mapping[str, Any]) -> int:
    """``num_conversion_events`` [Number of Form Submissions] (hubspot.md §4.3)."""
    return _count(raw.get("properties") or {}, "num_conversion_events")


def page_view_counter_events(
    raw: Mapping[str, Any], before_views: int, *, source: str, enabled: bool = True
) -> tuple[list[EventRecord], int]:
    """The page views a rise of ``hs_analytics_num_page_views`` stands for (see ``counter_events``);
    none when ``enabled`` is false (the events API gives them with their URLs, hubspot.md §4.2)."""
    rid = str(raw["id"])
    props = raw.get("properties") or {}
    views = _count(props, "hs_analytics_num_page_views")
    events: list[EventRecord] = []
    email = normalise_email(props.get("email"))
    if enabled and views > before_views:
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
    return events, max(views, before_views)


def form_counter_events(
    raw: Mapping[str, Any], before_forms: int, *, source: str
) -> tuple[list[EventRecord], int]:
    """The form submissions a rise of ``num_conversion_events`` stands for, stamped
    ``recent_conversion_date``; the last one typed by ``recent_conversion_event_name``. The fallback
    where the submission history is unavailable (see ``form_submission_events``)."""
    rid = str(raw["id"])
    props = raw.get("properties") or {}
    forms = _count(props, "num_conversion_events")
    events: list[EventRecord] = []
    email = normalise_email(props.get("email"))
    start = before_forms + 1
    if forms >= start:
        when = parse_time(props.get("recent_conversion_date"))
        if when is not None:
            name = props.get("recent_conversion_event_name")
            for n in range(start, forms + 1):
                kind = conversion_type(name) if n == forms else EventType.FORM_SUBMIT
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
    return events, max(forms, before_forms)


# What a form submission stands for, from the form's name and the page it was sent from (first match
# wins). Hand-raisers (demo, contact sales, quote, pricing) are demo requests: "Demo / contact-sales
# request" are one row of scoring-research.md §2.1 and decision-stage evidence in §3.2. A webinar
# registration is a form, not an attendance (§2.1 scores registration and attendance apart); a
# newsletter sign-up is a subscription, not a trial.
_CONVERSION_RULES: tuple[tuple[tuple[str, ...], EventType], ...] = (
    (("newsletter", "subscribe", "registration", "register"), EventType.FORM_SUBMIT),
    (("demo", "contact-sales", "contact sales", "talk-to-sales", "talk to sales", "quote", "pricing"),
     EventType.DEMO_REQUEST),
    (("trial", "sign-up", "signup", "get-started"), EventType.TRIAL_STARTED),
    (("webinar",), EventType.WEBINAR_ATTENDED),
    (("download", "guide", "ebook", "e-book", "whitepaper", "white paper", "playbook", "/resources/"),
     EventType.CONTENT_DOWNLOAD),
)  # fmt: skip


def conversion_type(name: Any, url: Any = None) -> EventType:
    """The event type of a form submission named ``name`` (sent from ``url``): the form name
    decides; only a form whose name says nothing falls back to the page's path."""
    for text in (str(name or "").lower(), urlsplit(str(url or "")).path.lower()):
        if not text:
            continue
        for words, kind in _CONVERSION_RULES:
            if any(word in text for word in words):
                return kind
    return EventType.FORM_SUBMIT


def form_submission_events(
    raw: Mapping[str, Any],
    submissions: Sequence[Mapping[str, Any]],
    before_forms: int,
    *,
    source: str,
    form_names: Mapping[str, str],
) -> tuple[list[EventRecord], int, list[BadRecord]]:
    """A contact's form-submission history (contacts v1 ``form-submissions``, hubspot.md §4.3) as
    events, one per submission with its form, page and time.

    The submissions already counted (the oldest ``before_forms``, which earlier pulls turned into
    events, from this history or from the counter) are skipped, so a history read after counter
    events never double counts. When the history holds fewer submissions than the counter (it lags,
    or some conversion is not a form), the rest stand in as counter events (``form_counter_events``).
    A submission without a page URL is kept, without a URL; one without a conversion id or a
    readable timestamp is a bad record. Returns the events, the count to remember, the bad records.
    """
    rid = str(raw["id"])
    props = raw.get("properties") or {}
    email = normalise_email(props.get("email"))
    events: list[EventRecord] = []
    bad: list[BadRecord] = []
    dated: list[tuple[datetime, str, Mapping[str, Any]]] = []
    for item in submissions:
        conversion = item.get("conversion-id")
        try:
            when = parse_time(item.get("timestamp"))
        except (TypeError, ValueError, OverflowError):
            when = None
        if not conversion or when is None:
            bad.append(
                BadRecord(
                    f"form submission of contact {rid} without conversion-id or timestamp",
                    record=dict(item),
                    remote_id=f"{rid}:{conversion}" if conversion else rid,
                )
            )
            continue
        dated.append((when, str(conversion), item))
    dated.sort(key=lambda entry: (entry[0], entry[1]))
    for when, conversion, item in dated[before_forms:]:
        form_id = str(item.get("form-id") or "")
        name = form_names.get(form_id) or item.get("title") or None
        url = item.get("page-url") or None
        events.append(
            EventRecord(
                source,
                Platform.HUBSPOT,
                f"form:{rid}:{conversion}",
                conversion_type(form_names.get(form_id), url),
                when,
                rid,
                email,
                {
                    "url": url,
                    "form": name,
                    "form_id": form_id or None,
                    "page_title": item.get("page-title") or item.get("title") or None,
                },
            )
        )
    counted = max(before_forms, len(dated))
    total = _count(props, "num_conversion_events")
    if total > counted:  # the history lags the counter: the rest as counter events
        extra, _ = form_counter_events(raw, counted, source=source)
        events += extra
    return events, max(counted, total), bad


def _when(props: Mapping[str, Any], *names: str) -> datetime | None:
    for name in names:
        value = props.get(name)
        if value not in (None, ""):
            return parse_time(value)
    return None


# hubspot.md §4.4: the properties read from each engagement object.
MEETING_PROPERTIES: tuple[str, ...] = (
    "hs_timestamp",
    "hs_createdate",
    "hs_lastmodifieddate",
    "hs_meeting_title",
    "hs_meeting_start_time",
    "hs_meeting_outcome",
    "hubspot_owner_id",
)
CALL_PROPERTIES: tuple[str, ...] = (
    "hs_timestamp",
    "hs_createdate",
    "hs_lastmodifieddate",
    "hs_call_title",
    "hs_call_direction",
    "hs_call_status",
    "hs_call_duration",
    "hubspot_owner_id",
)


def meeting_events(raw: Mapping[str, Any], contact_ids: Sequence[str], *, source: str) -> list[EventRecord]:
    """A meeting (hubspot.md §4.4) as one ``meeting_booked`` per associated contact.

    ``properties["outcome"]`` is the normalised ``hs_meeting_outcome`` (an unknown value reads as
    scheduled, ``records.meeting_outcome``; the platform's word is kept as ``platform_outcome``).
    Time: a meeting still scheduled counts from when it was booked (``hs_createdate``, the hand was
    raised then, and a meeting ahead would not count until it happened); one that was held, missed
    or cancelled counts at its time (``hs_timestamp``). Raises BadRecord without an id, a time or an
    associated contact.
    """
    mid = raw.get("id")
    props = raw.get("properties") or {}
    if not mid:
        raise BadRecord("meeting without an id", record=dict(raw))
    outcome, _ = meeting_outcome(props.get("hs_meeting_outcome"))
    try:
        held = _when(props, "hs_timestamp", "hs_meeting_start_time", "hs_createdate")
        booked = _when(props, "hs_createdate") or parse_time(raw.get("createdAt"))
    except (TypeError, ValueError, OverflowError):
        raise BadRecord(f"meeting {mid}: unreadable time", record=dict(raw), remote_id=str(mid)) from None
    if held is None:
        raise BadRecord(f"meeting {mid} without hs_timestamp", record=dict(raw), remote_id=str(mid))
    if not contact_ids:
        raise BadRecord(f"meeting {mid} has no associated contact", record=dict(raw), remote_id=str(mid))
    pending = outcome.value in ("scheduled", "rescheduled")
    when = min(booked, held) if pending and booked is not None else held
    properties = {
        "meeting_id": str(mid),
        "title": props.get("hs_meeting_title") or None,
        "outcome": outcome.value,
        "platform_outcome": props.get("hs_meeting_outcome") or None,
        "starts_at": held.isoformat(),
        "owner": props.get("hubspot_owner_id") or None,
    }
    return [
        EventRecord(
            source,
            Platform.HUBSPOT,
            f"meeting:{mid}:{cid}",
            EventType.MEETING_BOOKED,
            when,
            str(cid),
            None,
            dict(properties),
        )
        for cid in contact_ids
    ]


def call_events(raw: Mapping[str, Any], contact_ids: Sequence[str], *, source: str) -> list[EventRecord]:
    """A call (hubspot.md §4.4) as one ``call`` per associated contact, at ``hs_timestamp``, with its
    direction, duration (``hs_call_duration`` is in ms) and outcome (``records.call_outcome`` of
    ``hs_call_status``: an unanswered call is ``not_connected``). BadRecord as for meetings."""
    cid_ = raw.get("id")
    props = raw.get("properties") or {}
    if not cid_:
        raise BadRecord("call without an id", record=dict(raw))
    try:
        when = _when(props, "hs_timestamp", "hs_createdate")
    except (TypeError, ValueError, OverflowError):
        raise BadRecord(f"call {cid_}: unreadable time", record=dict(raw), remote_id=str(cid_)) from None
    if when is None:
        raise BadRecord(f"call {cid_} without hs_timestamp", record=dict(raw), remote_id=str(cid_))
    if not contact_ids:
        raise BadRecord(f"call {cid_} has no associated contact", record=dict(raw), remote_id=str(cid_))
    outcome, _ = call_outcome(props.get("hs_call_status"))
    try:
        duration = round(float(props.get("hs_call_duration") or 0) / 1000)
    except (TypeError, ValueError):
        duration = None
    properties = {
        "call_id": str(cid_),
        "title": props.get("hs_call_title") or None,
        "direction": props.get("hs_call_direction") or None,
        "outcome": outcome.value,
        "platform_status": props.get("hs_call_status") or None,
        "duration_s": duration,
        "owner": props.get("hubspot_owner_id") or None,
    }
    return [
        EventRecord(
            source,
            Platform.HUBSPOT,
            f"call:{cid_}:{contact}",
            EventType.CALL,
            when,
            str(contact),
            None,
            dict(properties),
        )
        for contact in contact_ids
    ]


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
