"""What the sandbox world becomes on Mailchimp.

Every person on Mailchimp is a member of the main audience; a stable fifth of them are also in a
second audience, so "every member of every list" means something. Each world campaign on Mailchimp
is a sent campaign to the main audience. World events become what Mailchimp really exposes
(mailchimp.md §7):

* ``email_sent``: the member becomes a recipient of the campaign (activity feed ``sent``);
* ``email_open`` / ``email_click`` / ``email_bounce``: that campaign's ``email-activity``
  (``open`` / ``click`` with its url / ``bounce`` with ``hard``|``soft``); machine opens are
  flagged ``is_proxy_open`` in ``open-details`` (the only place Mailchimp shows it); a hard
  bounce cleans the member;
* ``email_unsubscribe`` / ``email_spam_report``: the member's status becomes ``unsubscribed``
  (reason ``abuse`` for a spam report), ``last_changed`` moves, the feed gets ``unsub``;
* ``purchase``: an e-commerce order in the sandbox store (the purchase outcome);
* ``cart_abandoned``: a cart in the sandbox store that was never checked out (and, as before, a
  custom event in the member's activity feed);
* anything else: a custom event in the member's activity feed (``activity_type: event``).

Opens and clicks do not move ``last_changed`` (UNCONFIRMED either way, §7); status changes do.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from leadsync.connectors.records import EventType, Platform
from leadsync.sandbox.mailchimp.shapes import short_id, subscriber_hash
from leadsync.sandbox.mailchimp.state import (
    Activity,
    Audience,
    CampaignState,
    Cart,
    FeedItem,
    MailchimpState,
    MergeField,
    Order,
)

if TYPE_CHECKING:
    from leadsync.sandbox.world import World
    from leadsync.sandbox.world.model import Campaign, Event, Person

__all__ = ["STORE_ID", "apply_changes", "apply_world", "build_state"]

STORE_ID = "sandbox-store"
SECOND_AUDIENCE_SHARE = 5  # one person in five is also on the second audience

# Audience fields the sandbox account has: Mailchimp's defaults (FNAME, LNAME, ADDRESS, PHONE,
# §5) plus the ones a B2B marketer adds.
DEFAULT_FIELDS: tuple[tuple[str, str, str], ...] = (
    ("FNAME", "First Name", "text"),
    ("LNAME", "Last Name", "text"),
    ("ADDRESS", "Address", "address"),
    ("PHONE", "Phone Number", "phone"),
    ("COMPANY", "Company", "text"),
    ("JOBTITLE", "Job Title", "text"),
    ("SENIORITY", "Seniority", "text"),
    ("INDUSTRY", "Industry", "text"),
    ("EMPLOYEES", "Company Size", "number"),
)


def _mailchimp(value: Any) -> bool:
    return str(getattr(value, "value", value)) == Platform.MAILCHIMP.value


def build_state(world: World, state: MailchimpState) -> MailchimpState:
    """Fill ``state`` from ``world`` (called once, when the emulator starts)."""
    start = getattr(world, "start", None) or world.now
    seed = str(getattr(world, "seed", "sandbox"))
    main = Audience(short_id(f"list:{seed}:main"), state.next_web_id(), "Leadsync Sandbox Audience", start)
    second = Audience(short_id(f"list:{seed}:updates"), state.next_web_id(), "Product Updates", start)
    for audience in (main, second):
        for order, (tag, name, kind) in enumerate(DEFAULT_FIELDS, start=1):
            audience.merge_fields.append(MergeField(order, tag, name, kind, display_order=order))
        state.audiences[audience.id] = audience
    state.stores[STORE_ID] = {
        "id": STORE_ID,
        "list_id": main.id,
        "name": "Sandbox Store",
        "created_at": start,
    }
    apply_world(
        state,
        persons=list(getattr(world, "persons", [])),
        campaigns=list(getattr(world, "campaigns", [])),
        events=_all_events(world),
    )
    return state


def _all_events(world: World) -> list[Event]:
    if hasattr(world, "events_on"):
        return list(world.events_on(Platform.MAILCHIMP))
    return [e for e in getattr(world, "events", []) if _mailchimp(e.platform)]


def main_audience(state: MailchimpState) -> Audience:
    return next(iter(state.audiences.values()))


def apply_world(
    state: MailchimpState,
    *,
    persons: Iterable[Person],
    campaigns: Iterable[Campaign],
    events: Iterable[Event],
) -> None:
    """Add persons, campaigns and events (the initial world, or a delta after a clock advance)."""
    audiences = list(state.audiences.values())
    main = audiences[0]
    for person in persons:
        if not any(_mailchimp(p) for p in person.platforms):
            continue
        _add_person(state, person, audiences)
    for campaign in campaigns:
        if _mailchimp(campaign.platform):
            _add_campaign(state, campaign, main)
    for event in sorted((e for e in events if _mailchimp(e.platform)), key=lambda e: e.at):
        _apply_event(state, event, main)


def person_email(person: Person) -> str:
    return person.email_on(Platform.MAILCHIMP) if hasattr(person, "email_on") else person.email


def _add_person(state: MailchimpState, person: Person, audiences: list[Audience]) -> None:
    email = person_email(person)
    key = subscriber_hash(email)
    state.person_hashes[person.id] = key
    chosen = [audiences[0]]
    if len(audiences) > 1 and int(key[:8], 16) % SECOND_AUDIENCE_SHARE == 0:
        chosen.append(audiences[1])
    for audience in chosen:
        if key in audience.members:
            member = audience.members[key]
        else:
            member = state.new_member(audience, email, "subscribed", person.created_at)
        member.merge_fields.update(
            {
                "FNAME": person.first_name or "",
                "LNAME": person.last_name or "",
                "COMPANY": person.company or "",
                "JOBTITLE": person.job_title or "",
                "SENIORITY": getattr(person, "seniority", None) or "",
                "INDUSTRY": person.industry or "",
                "EMPLOYEES": person.company_size if person.company_size is not None else "",
            }
        )
        member.country_code = person.country or ""
        updated = getattr(person, "updated_at", None) or person.created_at
        member.last_changed = max(member.last_changed, updated)


def _add_campaign(state: MailchimpState, campaign: Campaign, audience: Audience) -> None:
    cid = mailchimp_campaign_id(campaign.id)
    if cid in state.campaigns:
        return
    state.campaigns[cid] = CampaignState(
        id=cid,
        web_id=state.next_web_id(),
        list_id=audience.id,
        title=campaign.name or campaign.id,
        subject=campaign.subject or campaign.name or campaign.id,
        create_time=campaign.sent_at - timedelta(days=1),
        send_time=campaign.sent_at,
        links=list(campaign.links or []),
    )


def mailchimp_campaign_id(world_campaign_id: str) -> str:
    """Mailchimp campaign ids are 10 hex characters; world ids are readable names."""
    return short_id(f"campaign:{world_campaign_id}")


def _apply_event(state: MailchimpState, event: Event, main: Audience) -> None:
    # The event's person is a member of the main audience (every Mailchimp person is).
    key = state.person_hashes.get(event.person)
    member = main.members.get(key) if key else None
    if member is None:
        return
    campaign = state.campaigns.get(mailchimp_campaign_id(event.campaign)) if event.campaign else None
    feed = state.feeds.setdefault((main.id, key), [])
    props = event.properties or {}
    at = event.at
    kind = EventType(str(getattr(event.type, "value", event.type)))
    if kind is EventType.EMAIL_SENT and campaign is not None:
        campaign.recipients.setdefault(key, member.email)
        member.sent.add(campaign.id)
        feed.append(FeedItem("sent", at, campaign.id, campaign.title))
    elif (
        kind in (EventType.EMAIL_OPEN, EventType.EMAIL_CLICK, EventType.EMAIL_BOUNCE) and campaign is not None
    ):
        campaign.recipients.setdefault(key, member.email)
        member.sent.add(campaign.id)
        if kind is EventType.EMAIL_OPEN:
            item = Activity("open", at, ip=_ip(event), proxy=bool(event.machine))
            member.opened.add(campaign.id)
            feed.append(FeedItem("open", at, campaign.id, campaign.title))
        elif kind is EventType.EMAIL_CLICK:
            url = event.url or (campaign.links[0] if campaign.links else "https://example.com/")
            item = Activity("click", at, url=url, ip=_ip(event))
            member.clicked.add(campaign.id)
            feed.append(FeedItem("click", at, campaign.id, campaign.title, {"link_clicked": url}))
        else:
            bounce = str(props.get("bounce") or props.get("bounce_type") or "soft")
            bounce = "hard" if bounce.startswith("hard") else "soft"
            item = Activity("bounce", at, type=bounce)
            feed.append(FeedItem("bounce", at, campaign.id, campaign.title, {"bounce_type": bounce}))
            if bounce == "hard" and member.status == "subscribed":
                member.status = "cleaned"
                member.last_changed = max(member.last_changed, at)
        campaign.add_activity(key, item)
    elif kind in (EventType.EMAIL_UNSUBSCRIBE, EventType.EMAIL_SPAM_REPORT):
        reason = (
            "abuse"
            if kind is EventType.EMAIL_SPAM_REPORT
            else str(props.get("reason") or "N/A (Unsubscribed)")
        )
        if member.status in ("subscribed", "pending"):
            member.status = "unsubscribed"
            member.unsubscribe_reason = reason
            member.last_changed = max(member.last_changed, at)
        extra = {"unsubscribe_reason": reason}
        feed.append(
            FeedItem("unsub", at, campaign.id if campaign else "", campaign.title if campaign else "", extra)
        )
    elif kind is EventType.PURCHASE:
        amount = float(props.get("amount") or props.get("value") or 0.0)
        order_id = str(props.get("order_id") or f"order-{event.id}")
        state.orders.append(
            Order(
                id=order_id,
                store_id=STORE_ID,
                email=member.email,
                customer_id=key,
                total=round(amount, 2),
                currency=str(props.get("currency") or "USD"),
                processed_at=at,
                campaign_id=campaign.id if campaign else "",
                first_name=str(member.merge_fields.get("FNAME") or ""),
                last_name=str(member.merge_fields.get("LNAME") or ""),
            )
        )
        member.orders += 1
        member.revenue += amount
        feed.append(FeedItem("order", at, extra={"order_id": order_id, "order_total": round(amount, 2)}))
    else:
        if kind is EventType.CART_ABANDONED:
            amount = float(props.get("amount") or 0.0)
            state.carts.append(
                Cart(
                    id=str(props.get("cart_id") or f"cart-{event.id}"),
                    store_id=STORE_ID,
                    email=member.email,
                    customer_id=key,
                    total=round(amount, 2),
                    currency=str(props.get("currency") or "USD"),
                    created_at=at - timedelta(minutes=20),  # the visitor filled it, then left
                    updated_at=at,
                    first_name=str(member.merge_fields.get("FNAME") or ""),
                    last_name=str(member.merge_fields.get("LNAME") or ""),
                )
            )
        # §7: custom events appear in the feed as activity_type "event" with event_name/properties.
        properties = {k: str(v) for k, v in props.items()}
        if event.url:
            properties["url"] = event.url
        feed.append(FeedItem("event", at, extra={"event_name": kind.value, "event_properties": properties}))


def _ip(event: Event) -> str:
    n = int(short_id(event.id, 4), 16)
    return f"203.0.113.{n % 254 + 1}"


_CHANGED_TAGS = {"job_title": "JOBTITLE", "seniority": "SENIORITY", "company_size": "EMPLOYEES"}


def apply_changes(state: MailchimpState, world: Any, changes: Iterable[Any]) -> None:
    """Record changes of existing persons (a promotion, a new address): a write, so
    ``last_changed`` moves. A new address re-keys the member (the hash is of the address, §4)."""
    for change in sorted(changes, key=lambda c: c.at):
        old_key = state.person_hashes.get(change.person)
        if old_key is None:
            continue
        for audience in state.audiences.values():
            member = audience.members.get(old_key)
            if member is None:
                continue
            if change.field == "email":
                person = world.person(change.person) if hasattr(world, "person") else None
                email = person_email(person) if person is not None else str(change.value)
                audience.members.pop(old_key, None)
                member.email = email
                audience.members[member.id] = member
            elif change.field in _CHANGED_TAGS:
                value = change.value if change.value is not None else ""
                member.merge_fields[_CHANGED_TAGS[change.field]] = value
            member.last_changed = max(member.last_changed, change.at)
        if change.field == "email":
            person = world.person(change.person) if hasattr(world, "person") else None
            state.person_hashes[change.person] = subscriber_hash(
                person_email(person) if person is not None else str(change.value)
            )
