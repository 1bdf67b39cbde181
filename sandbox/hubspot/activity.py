"""What each world event becomes in a HubSpot portal (DESIGN.md "Sandbox"; hubspot.md §4).

* email events become legacy Email Events API rows (§4.1: OPEN, CLICK, DELIVERED, BOUNCE,
  STATUSCHANGE, SPAMREPORT; machine activity is marked ``filteredEvent``) and raise the contact's
  ``hs_email_*`` counters (§4.3);
* a page view raises ``hs_analytics_num_page_views``, ``hs_analytics_num_visits`` (a new session
  after 30 minutes without a view) and the last-visit times, and is kept as an ``e_visited_page``
  event for the Enterprise-only events API (§4.2);
* a form submission (and the other conversions a HubSpot form records: demo request, content
  download, webinar registration, trial sign-up) raises ``num_conversion_events`` and sets the
  recent-conversion properties (§4.3), and is kept in the contact's ``form-submissions`` history
  with its form, page and time (contacts v1 API, see ``routes/legacy.py``); each form it names
  exists in the Forms API;
* a meeting booked becomes a meeting (§4.4) associated with the contact, with its time, title and
  ``hs_meeting_outcome``; a call becomes a call with its direction, status and duration; both
  belong to one of the portal's sales owners;
* a won deal or a purchase becomes a deal in stage ``closedwon`` associated with the contact,
  whose lifecycle stage becomes ``customer`` (HubSpot's default lifecycle sync on closed-won deals).

Events HubSpot does not expose to an API client of this kind (social interactions, abandoned
carts) change nothing.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from leadsync.sandbox.hubspot.state import CrmObject, HubSpotState, iso, ms

__all__ = ["OWNERS", "PORTAL_APP_ID", "add_owners", "add_person", "apply_change", "apply_event", "form_id"]

PORTAL_APP_ID = 113  # appId HubSpot gives its own marketing-email tool (tap-hubspot fixtures; unconfirmed)
SESSION_GAP = timedelta(minutes=30)

EMAIL_TYPES = {
    "email_sent": "DELIVERED",
    "email_open": "OPEN",
    "email_click": "CLICK",
    "email_bounce": "BOUNCE",
    "email_unsubscribe": "STATUSCHANGE",
    "email_spam_report": "SPAMREPORT",
}
CONVERSIONS = {
    "form_submit": "Contact us",
    "demo_request": "Request a demo",
    "content_download": "Download the guide",
    "webinar_attended": "Webinar registration",
    "trial_started": "Start a free trial",
}
OUTCOMES = {"deal_won", "purchase"}
# world outcome -> hs_meeting_outcome (hubspot.md §4.4)
MEETING_OUTCOME = {
    "scheduled": "SCHEDULED",
    "completed": "COMPLETED",
    "rescheduled": "RESCHEDULED",
    "no_show": "NO_SHOW",
    "cancelled": "CANCELED",
}
MEETING_LENGTH = timedelta(minutes=30)
BOOKED_AHEAD = timedelta(days=2)  # a meeting record is created when it is booked, before it happens
# The portal's sales team (GET /crm/v3/owners): id, user id, first and last name, email.
OWNERS: tuple[tuple[str, int, str, str], ...] = (
    ("41000001", 9100001, "Sam", "Seller"),
    ("41000002", 9100002, "Alex", "Closer"),
    ("41000003", 9100003, "Robin", "Prospector"),
)
_SANDBOX_UUID = uuid.UUID("6f1c2a4e-93d3-4b4f-9a57-1eadc0ffee00")


def form_id(name: str) -> str:
    """A form's GUID, stable for its name."""
    return str(uuid.uuid5(_SANDBOX_UUID, f"form:{name}"))


def add_owners(state: HubSpotState, when: datetime) -> None:
    with state.lock:
        state.owners = [
            {
                "id": oid,
                "email": f"{first.lower()}.{last.lower()}@sandbox-seller.example.com",
                "firstName": first,
                "lastName": last,
                "userId": user_id,
                "createdAt": iso(when),
                "updatedAt": iso(when),
                "archived": False,
                "teams": [{"id": "51000001", "name": "Sales", "primary": True}],
            }
            for oid, user_id, first, last in OWNERS
        ]


def _owner_of(contact: CrmObject) -> str:
    return OWNERS[_stable_int(f"owner:{contact.id}") % len(OWNERS)][0]


def _val(obj: Any, name: str, default: Any = None) -> Any:
    return obj.get(name, default) if isinstance(obj, dict) else getattr(obj, name, default)


def _num(obj: CrmObject, name: str) -> int:
    try:
        return int(float(obj.properties.get(name) or 0))
    except ValueError:
        return 0


def _bump(obj: CrmObject, name: str) -> None:
    obj.properties[name] = str(_num(obj, name) + 1)


@lru_cache(maxsize=1 << 16)  # the same campaign, link and owner keys come back for every event
def _stable_int(text: str, digits: int = 9) -> int:
    return int(hashlib.sha1(text.encode()).hexdigest()[:12], 16) % (10**digits)


def add_person(state: HubSpotState, person: Any) -> CrmObject:
    """A world person on HubSpot becomes a contact (lifecycle ``subscriber`` until more happens)."""
    email = person.email_on("hubspot") if hasattr(person, "email_on") else _val(person, "email")
    size = _val(person, "company_size")
    props: dict[str, str | None] = {
        "email": email,
        "firstname": _val(person, "first_name"),
        "lastname": _val(person, "last_name"),
        "jobtitle": _val(person, "job_title"),
        "company": _val(person, "company"),
        "industry": _val(person, "industry"),
        "numemployees": None if size is None else str(size),
        "country": _val(person, "country"),
        "lifecyclestage": "subscriber",
        "hs_lead_status": None,
    }
    created: datetime = _val(person, "created_at")
    with state.lock:
        contact = state.create("contacts", props, created)
        contact.properties["hs_lifecyclestage_subscriber_date"] = iso(created)
        state.person_contact[_val(person, "id")] = contact.id
        updated = _val(person, "updated_at")
        if updated is not None and updated > created:
            state.touch(contact, updated)
        return contact


def apply_event(state: HubSpotState, event: Any, campaigns: dict[str, Any]) -> None:
    """Apply one world event (already known to be on HubSpot) to the portal."""
    kind = str(_val(event, "type"))
    with state.lock:
        contact_id = state.person_contact.get(_val(event, "person"))
        contact = state.objects["contacts"].get(contact_id) if contact_id else None
        if contact is None:
            return
        at: datetime = _val(event, "at")
        if kind in EMAIL_TYPES:
            _email_event(state, contact, event, EMAIL_TYPES[kind], at, campaigns)
        elif kind == "page_view":
            _page_view(state, contact, event, at)
        elif kind in CONVERSIONS:
            _conversion(state, contact, event, kind, at)
        elif kind == "meeting_booked":
            _meeting(state, contact, event, at)
        elif kind == "call":
            _call(state, contact, event, at)
        elif kind in OUTCOMES:
            _won_deal(state, contact, event, at)
        else:
            return
        state.touch(contact, at)


def _email_event(
    state: HubSpotState, contact: CrmObject, event: Any, kind: str, at: datetime, campaigns: dict[str, Any]
) -> None:
    campaign_key = _val(event, "campaign") or "unknown"
    campaign = campaigns.get(campaign_key)
    campaign_id = _stable_int(f"campaign:{campaign_key}", 8)
    world_id = str(_val(event, "id"))
    row: dict[str, Any] = {
        # hubspot.md §4.1: ids are opaque strings, events identified by (created, id)
        "id": hashlib.sha1(f"email-event:{world_id}".encode()).hexdigest()[:8] + "-" + world_id,
        "created": ms(at),
        "type": kind,
        "recipient": contact.properties.get("email"),
        "portalId": 0,  # filled by the emulator (it knows the portal id)
        "appId": PORTAL_APP_ID,
        "appName": "BatchTest" if campaign is None else "Batch",
        "emailCampaignId": campaign_id,
        "emailCampaignGroupId": _stable_int(f"group:{campaign_key}", 8),
        "sentBy": {"id": f"sent-{campaign_id}-{contact.id}", "created": ms(at)},
        "filteredEvent": bool(_val(event, "machine", False)),
    }
    if campaign is not None:
        row["subject"] = _val(campaign, "subject")
    if kind == "CLICK":
        row["url"] = _val(event, "url")
        row["linkId"] = _stable_int(f"link:{_val(event, 'url')}", 6)
    if kind in ("OPEN", "CLICK"):
        row.update(
            {
                "browser": {
                    "name": "Chrome",
                    "family": "Chrome",
                    "producer": "Google Inc.",
                    "type": "Browser",
                },
                "location": {"country": contact.properties.get("country") or "", "state": "", "city": ""},
                "deviceType": "COMPUTER",
                "userAgent": "Mozilla/5.0",
            }
        )
    if kind == "BOUNCE":
        row.update({"category": "HARD_BOUNCE", "status": "550", "response": "550 5.1.1 user unknown"})
    if kind == "STATUSCHANGE":
        row.update(
            {
                "subscriptions": [{"id": 1, "status": "UNSUBSCRIBED"}],
                "source": "SOURCE_RECIPIENT",
                "requestedBy": contact.properties.get("email"),
                "portalSubscriptionStatus": "UNSUBSCRIBED",
            }
        )
    if kind == "DELIVERED":
        row.update({"response": "250 2.0.0 OK", "smtpId": f"<{world_id}@sandbox.hubspot>"})
    state.email_events.append(row)
    stamp = iso(at)
    if kind == "DELIVERED":
        _bump(contact, "hs_email_delivered")
        contact.properties["hs_email_last_send_date"] = stamp
    elif kind == "OPEN":
        _bump(contact, "hs_email_open")
        contact.properties["hs_email_last_open_date"] = stamp
    elif kind == "CLICK":
        _bump(contact, "hs_email_click")
        contact.properties["hs_email_last_click_date"] = stamp
    elif kind == "BOUNCE":
        _bump(contact, "hs_email_bounce")
    elif kind == "STATUSCHANGE":
        contact.properties["hs_email_optout"] = "true"


def _page_view(state: HubSpotState, contact: CrmObject, event: Any, at: datetime) -> None:
    p = contact.properties
    url = _val(event, "url") or ""
    last_seen = p.get("hs_analytics_last_timestamp")
    new_session = (
        last_seen is None or at - datetime.fromisoformat(last_seen.replace("Z", "+00:00")) > SESSION_GAP
    )
    _bump(contact, "hs_analytics_num_page_views")
    stamp = iso(at)
    if new_session:
        _bump(contact, "hs_analytics_num_visits")
        p["hs_analytics_last_visit_timestamp"] = stamp
        p.setdefault("hs_analytics_first_visit_timestamp", stamp)
    p.setdefault("hs_analytics_first_timestamp", stamp)
    p.setdefault("hs_analytics_first_url", url)
    p["hs_analytics_last_timestamp"] = stamp
    p["hs_analytics_last_url"] = url
    world_id = str(_val(event, "id"))
    state.web_events.append(
        {
            # hubspot.md §4.2 (SPEC ExternalUnifiedEvent): e_<label> for HubSpot's own event types
            "id": f"{_stable_int(world_id, 12):012d}-{world_id}",
            "eventType": "e_visited_page",
            "objectType": "contact",
            "objectId": contact.id,
            "occurredAt": stamp,
            "properties": {
                "hs_url": url,
                "hs_page_title": url.rsplit("/", 1)[-1] or "Home",
                "hs_session_id": p["hs_analytics_num_visits"],
            },
        }
    )


def _conversion(state: HubSpotState, contact: CrmObject, event: Any, kind: str, at: datetime) -> None:
    p = contact.properties
    props = _val(event, "properties") or {}
    name = str(props.get("form") or CONVERSIONS[kind])
    _bump(contact, "num_conversion_events")
    seen = state.forms_seen.setdefault(contact.id, set())
    if name not in seen:
        seen.add(name)
        _bump(contact, "num_unique_conversion_events")
    stamp = iso(at)
    p.setdefault("first_conversion_event_name", name)
    p.setdefault("first_conversion_date", stamp)
    p["recent_conversion_event_name"] = name
    p["recent_conversion_date"] = stamp
    form = state.forms.get(name)
    if form is None:
        form = state.forms[name] = {"id": form_id(name), "name": name, "createdAt": at, "updatedAt": at}
    url = _val(event, "url")
    title = _page_title(url)
    submission: dict[str, Any] = {
        "conversion-id": str(uuid.uuid5(_SANDBOX_UUID, f"conversion:{_val(event, 'id')}")),
        "timestamp": ms(at),
        "form-id": form["id"],
        "portal-id": 0,  # filled by the emulator (it knows the portal id)
        "title": title or name,
        "form-type": "HUBSPOT",
        "contact-associated-by": ["EMAIL"],
        "meta-data": [],
    }
    if url:  # a submission made through the API may carry no page (hubspot.md §4.3; Airbyte fixture)
        submission["page-url"] = url
        submission["canonical-url"] = url
        submission["page-title"] = title
    state.form_submissions.setdefault(contact.id, []).append(submission)


def _page_title(url: str | None) -> str | None:
    if not url:
        return None
    slug = url.rstrip("/").rsplit("/", 1)[-1]
    words = slug.replace("-", " ").strip() if "." not in slug else "Home"
    return f"{words.capitalize()} | Example" if words else "Example"


def _meeting(state: HubSpotState, contact: CrmObject, event: Any, at: datetime) -> None:
    props = _val(event, "properties") or {}
    outcome = MEETING_OUTCOME.get(str(props.get("outcome") or "scheduled"), "SCHEDULED")
    title = str(props.get("title") or "Meeting")
    booked = max(at - BOOKED_AHEAD, contact.created_at)
    meeting = state.create(
        "meetings",
        {
            "hs_timestamp": iso(at),
            "hs_meeting_title": f"{title} - {contact.properties.get('company') or contact.properties.get('email')}",
            "hs_meeting_body": f"{title} booked from the sandbox world",
            "hs_meeting_start_time": iso(at),
            "hs_meeting_end_time": iso(at + MEETING_LENGTH),
            "hs_meeting_location": "Video call",
            "hs_meeting_outcome": outcome,
            "hubspot_owner_id": _owner_of(contact),
        },
        booked,
    )
    state.touch(meeting, at)  # the outcome is logged when the meeting happens
    meeting.associations["contacts"] = [contact.id]
    contact.associations.setdefault("meetings", []).append(meeting.id)


def _call(state: HubSpotState, contact: CrmObject, event: Any, at: datetime) -> None:
    props = _val(event, "properties") or {}
    connected = str(props.get("outcome") or "completed") == "completed"
    call = state.create(
        "calls",
        {
            "hs_timestamp": iso(at),
            "hs_call_title": f"Call with {contact.properties.get('firstname') or contact.properties.get('email')}",
            "hs_call_body": "Logged from the sandbox world",
            "hs_call_direction": str(props.get("direction") or "OUTBOUND"),
            "hs_call_status": "COMPLETED" if connected else "NO_ANSWER",
            "hs_call_duration": str(int(props.get("duration_s") or 0) * 1000),  # hubspot.md §4.4: in ms
            "hubspot_owner_id": _owner_of(contact),
        },
        at,
    )
    call.associations["contacts"] = [contact.id]
    contact.associations.setdefault("calls", []).append(call.id)


def _won_deal(state: HubSpotState, contact: CrmObject, event: Any, at: datetime) -> None:
    props = _val(event, "properties") or {}
    amount = props.get("amount")
    deal = state.create(
        "deals",
        {
            "dealname": f"{contact.properties.get('company') or 'Deal'} - {_val(event, 'type')}",
            "amount": None if amount is None else str(amount),
            "dealstage": "closedwon",
            "pipeline": "default",
            "closedate": iso(at),
            "hs_is_closed_won": "true",
        },
        at,
    )
    deal.associations["contacts"] = [contact.id]
    contact.associations.setdefault("deals", []).append(deal.id)
    _bump(contact, "num_associated_deals")
    order = state.lifecycle_order()
    current = contact.properties.get("lifecyclestage") or ""
    if not current or (current in order and order.index(current) < order.index("customer")):
        contact.properties["lifecyclestage"] = "customer"
        contact.properties.setdefault("hs_lifecyclestage_customer_date", iso(at))


CHANGED_PROPERTY = {"job_title": "jobtitle", "company_size": "numemployees", "email": "email"}


def apply_change(state: HubSpotState, change: Any) -> None:
    """A person's attribute changed (promotion, company growth, new address): the contact follows."""
    name = CHANGED_PROPERTY.get(str(_val(change, "field")))
    with state.lock:
        cid = state.person_contact.get(_val(change, "person"))
        contact = state.objects["contacts"].get(cid) if cid else None
        if contact is None or name is None:
            return
        value = _val(change, "value")
        text = None if value is None else str(value)
        if name == "email" and text:
            text = text.lower()
            state.by_email.pop(str(contact.properties.get("email") or ""), None)
            state.by_email[text] = contact.id
        contact.properties[name] = text
        state.touch(contact, _val(change, "at"))
