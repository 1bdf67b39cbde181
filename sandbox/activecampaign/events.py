"""What the world becomes on ActiveCampaign: contacts with custom fields, activities, tracking logs
and deals (activecampaign.md §2–§5).

* A person on ActiveCampaign is a contact. Job title, company, industry, company size, country and
  seniority are **custom fields** (ActiveCampaign has no standard contact fields for them; §3), so
  the account starts with six fields the connector finds by personalisation tag.
* Email events (sent, open, click, bounce, unsubscribe, spam report) are rows of the contact
  activity stream ``GET /activities`` (§5). The ``reference_type``/``reference_action``
  vocabulary is **unconfirmed** (§5): ``ACTIVITY_SHAPES`` is our assumption, and the connector keeps
  its mirror of it as data too.
* Web and product events (page views, forms, downloads, webinars, demo requests, trials,
  meetings, carts, purchases, social) are **event-tracking** events read back through
  ``GET /contacts/{id}/trackingLogs`` (§5: ``type`` is the event name, ``value`` the eventdata;
  site-tracking page visits have no documented read endpoint, so page views are sent as tracked
  events named ``page_view`` with the URL as value).
* A won deal is a deal with ``status`` 1 (won) whose ``mdate`` is when it was won (§5 deals).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from leadsync.connectors.records import EventType, Platform
from leadsync.sandbox.activecampaign.state import (
    AccountState,
    Activity,
    Contact,
    CustomField,
    Deal,
    FieldRel,
    TrackingLog,
)

__all__ = ["ACTIVITY_SHAPES", "PROFILE_FIELDS", "add_events", "add_person", "build_state"]

# (title, perstag, type, Person attribute) of the custom fields a typical account already has.
PROFILE_FIELDS: tuple[tuple[str, str, str, str], ...] = (
    ("Job Title", "JOB_TITLE", "text", "job_title"),
    ("Company", "COMPANY", "text", "company"),
    ("Industry", "INDUSTRY", "text", "industry"),
    ("Company Size", "COMPANY_SIZE", "text", "company_size"),
    ("Country", "COUNTRY", "text", "country"),
    ("Seniority", "SENIORITY", "text", "seniority"),
)

# world event type -> (reference_type, referenceModelName, reference_action). Assumed (§5).
ACTIVITY_SHAPES: dict[EventType, tuple[str, str, str]] = {
    EventType.EMAIL_SENT: ("Log", "log", "sent"),
    EventType.EMAIL_OPEN: ("Log", "log", "open"),
    EventType.EMAIL_CLICK: ("Link", "link", "click"),
    EventType.EMAIL_BOUNCE: ("Bounce", "bounce", "bounce"),
    EventType.EMAIL_UNSUBSCRIBE: ("ContactList", "contact-list", "unsubscribe"),
    EventType.EMAIL_SPAM_REPORT: ("Log", "log", "abuse"),
}


def build_state(world: Any, state: AccountState) -> None:
    """Fill an empty account from the world: fields first, then contacts in creation order."""
    start = getattr(world, "start", None) or world.now
    with state.lock:
        for order, (title, perstag, kind, _) in enumerate(PROFILE_FIELDS, start=1):
            custom = CustomField(state.next_id("field"), title, kind, perstag, start, start, ordernum=order)
            state.fields[custom.id] = custom
            rel = FieldRel(state.next_id("fieldRel"), custom.id, 0, start)
            state.field_rels[rel.id] = rel
        for campaign in sorted(
            _on_platform(getattr(world, "campaigns", ())), key=lambda c: (c.sent_at, c.id)
        ):
            _campaign_id(state, campaign.id, campaign.name)
        persons = sorted(
            _on_platform(getattr(world, "persons", ()), person=True), key=lambda p: (p.created_at, p.id)
        )
        for person in persons:
            add_person(state, person)
        events = [e for p in persons for e in _events_of(world, p.id)]
        add_events(state, events, world)


def add_person(state: AccountState, person: Any) -> Contact:
    """A new (or changed) person becomes a contact with its profile field values."""
    email = _email_of(person)
    existing_id = state.contact_by_person.get(person.id)
    if existing_id is not None:
        contact = state.contacts[existing_id]
        if contact.email != email:
            state.change_email(contact, email)
        contact.first_name = person.first_name or ""
        contact.last_name = person.last_name or ""
        contact.udate = max(contact.udate, person.updated_at)
    else:
        contact = state.add_contact(
            Contact(
                id=state.next_id("contact"),
                email=email,
                first_name=person.first_name or "",
                last_name=person.last_name or "",
                cdate=person.created_at,
                udate=person.updated_at,
                person_id=person.id,
            )
        )
    for _, perstag, _, attribute in PROFILE_FIELDS:
        value = getattr(person, attribute, None)
        custom = state.field_by_perstag(perstag)
        if value is not None and custom is not None:
            state.set_value(contact.id, custom.id, str(value), person.updated_at)
    return contact


def add_events(state: AccountState, events: Iterable[Any], world: Any) -> None:
    """Turn world events on ActiveCampaign into activities, tracking logs and deals."""
    for event in sorted(_on_platform(events), key=lambda e: (e.at, e.id)):
        contact_id = state.contact_by_person.get(event.person)
        if contact_id is None:
            continue
        shape = ACTIVITY_SHAPES.get(event.type)
        if shape is not None:
            state.activities.append(_activity(state, event, contact_id, shape, world))
        elif event.type is EventType.DEAL_WON:
            _won_deal(state, event, contact_id)
        else:
            state.tracking_logs.setdefault(contact_id, []).append(
                TrackingLog(
                    state.next_id("trackingLog"), contact_id, event.type.value, _event_value(event), event.at
                )
            )


def _activity(
    state: AccountState, event: Any, contact_id: int, shape: tuple[str, str, str], world: Any
) -> Activity:
    reference_type, model, action = shape
    campaign_id = 0
    data: dict[str, Any] = {}
    if event.campaign:
        name = event.campaign
        find = getattr(world, "campaign", None)
        if callable(find):
            try:
                name = find(event.campaign).name
            except KeyError:
                pass
        campaign_id = _campaign_id(state, event.campaign, name)
        data["campaign"] = {"id": str(campaign_id), "name": state.campaign_names[campaign_id]}
    if event.url:
        data["url"] = event.url
    return Activity(
        id=state.next_id("activity"),
        contact=contact_id,
        tstamp=event.at,
        reference_type=reference_type,
        reference_id=campaign_id,
        reference_action=action,
        reference_model=model,
        json_data=data or None,
    )


def _won_deal(state: AccountState, event: Any, contact_id: int) -> None:
    props = event.properties or {}
    key = str(props.get("deal_id") or event.id)
    amount = props.get("amount")
    cents = int(round(float(amount) * 100)) if isinstance(amount, int | float) else 0
    deal_id = state.deal_by_source.get(key)
    if deal_id is None:
        deal = Deal(state.next_id("deal"), contact_id, f"Deal {key}", cents, 1, event.at, event.at)
        state.deals[deal.id] = deal
        state.deal_by_source[key] = deal.id
    else:
        deal = state.deals[deal_id]
        deal.status, deal.mdate = 1, max(deal.mdate, event.at)


def _event_value(event: Any) -> str:
    if event.url and not event.properties:
        return str(event.url)
    data = dict(event.properties or {})
    if event.url:
        data["url"] = event.url
    return json.dumps(data, sort_keys=True, separators=(",", ":")) if data else ""


def _campaign_id(state: AccountState, world_id: str, name: str) -> int:
    existing = state.campaign_ids.get(world_id)
    if existing is not None:
        return existing
    new_id = state.next_id("campaign")
    state.campaign_ids[world_id] = new_id
    state.campaign_names[new_id] = name or world_id
    return new_id


def _email_of(person: Any) -> str:
    email_on = getattr(person, "email_on", None)
    return email_on(Platform.ACTIVECAMPAIGN) if callable(email_on) else person.email


def _on_platform(items: Iterable[Any], *, person: bool = False) -> list[Any]:
    wanted = Platform.ACTIVECAMPAIGN
    if person:
        return [item for item in items if wanted in [Platform(p) for p in item.platforms]]
    return [item for item in items if Platform(item.platform) is wanted]


def _events_of(world: Any, person_id: str) -> list[Any]:
    events_of = getattr(world, "events_of", None)
    if callable(events_of):
        return list(events_of(person_id, Platform.ACTIVECAMPAIGN))
    return [e for e in getattr(world, "events", ()) if e.person == person_id]


def touch(contact: Contact, now: datetime) -> None:
    """A write bumps ``udate`` (the clock never goes backwards)."""
    contact.udate = max(contact.udate, now)
