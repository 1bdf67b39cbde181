"""Pure functions from Mailchimp payloads to normalised records (no I/O, no clock).

A payload that cannot be normalised raises ``BadRecord`` with the reason; the connector puts it
in ``PullBatch.bad`` and goes on. Facts cited as "mailchimp.md §N".

Identity: a member is one identity per audience, ``remote_id = "<list_id>:<subscriber hash>"``.
The hash is Mailchimp's own key for a member (md5 of the lowercased address, §4), so a member
whose address changes gets a new id there too; the identity layer links persons by email.
"""

from __future__ import annotations

import hashlib
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
    "activity_events",
    "member_contact",
    "member_events",
    "member_remote_id",
    "cart_event",
    "order_event",
    "parse_time",
    "plain_merge_value",
    "proxy_opens",
    "subscriber_hash",
]

P = Platform.MAILCHIMP
# The merge tags the contact attributes are read from; the audience decides which exist (§5:
# only FNAME, LNAME, ADDRESS, PHONE are defaults, and they are editable).
NAME_TAGS = ("FNAME", "LNAME")
ATTRIBUTE_TAGS = {
    "job_title": ("JOBTITLE", "TITLE", "JOB"),
    "company": ("COMPANY", "ORG", "MMERGE3"),
    "industry": ("INDUSTRY",),
    "seniority": ("SENIORITY",),
    "company_size": ("EMPLOYEES", "COMPSIZE", "SIZE"),
}
ACTIONS = {"open": EventType.EMAIL_OPEN, "click": EventType.EMAIL_CLICK, "bounce": EventType.EMAIL_BOUNCE}


def subscriber_hash(email: str) -> str:
    """mailchimp.md §4: md5 of the lowercased address."""
    return hashlib.md5(email.lower().encode()).hexdigest()  # noqa: S324 - Mailchimp's own scheme


def member_remote_id(list_id: str, member_id: str) -> str:
    return f"{list_id}:{member_id}"


def parse_time(value: Any) -> datetime | None:
    """A Mailchimp time (``2021-03-02T19:04:19+00:00``) in UTC; ``""`` (unset, §4.2) is None."""
    if not isinstance(value, str):
        if value is None:
            return None
        raise ValueError(f"not a time: {value!r}")
    if not value:
        return None
    moment = datetime.fromisoformat(value)  # Python 3.11 reads "Z" too
    if moment.tzinfo is UTC:  # the usual "+00:00": already what we want
        return moment
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, (dict, list)):
        return None
    text = str(value).strip()
    return text or None


def _first(merge: Mapping[str, Any], tags: tuple[str, ...]) -> Any:
    for tag in tags:
        value = merge.get(tag)
        if value not in (None, ""):
            return value
    return None


def _size(value: Any) -> int | None:
    # §4.2: an empty number field is "", a set one a JSON number; a text field may hold "1,200".
    return parse_count(value)


def member_contact(
    member: Mapping[str, Any],
    *,
    source: str,
    field_prefix: str = "leadsync_",
    owned_tags: Mapping[str, str] | None = None,
) -> ContactRecord:
    """One list member as a ``ContactRecord``. Raises BadRecord when it has no id or address.

    leadsync's own merge fields (``owned_tags``: logical field -> merge tag, by default those the
    prefix gives) and its own member tags (named with the prefix) go to ``owned``, not to ``raw``."""
    member_id, list_id = member.get("id"), member.get("list_id")
    email = normalise_email(
        member.get("email_address") if isinstance(member.get("email_address"), str) else None
    )
    if not member_id or not list_id:
        raise BadRecord("member without id or list_id", record=dict(member))
    remote_id = member_remote_id(str(list_id), str(member_id))
    if email is None or "@" not in email:
        raise BadRecord("member without a usable email_address", record=dict(member), remote_id=remote_id)
    try:
        updated = parse_time(member.get("last_changed"))
        created = parse_time(member.get("timestamp_signup")) or parse_time(member.get("timestamp_opt"))
    except ValueError as exc:
        raise BadRecord(
            f"member has an unreadable time: {exc}", record=dict(member), remote_id=remote_id
        ) from None
    if updated is None:
        raise BadRecord("member without last_changed", record=dict(member), remote_id=remote_id)
    merge = member.get("merge_fields") if isinstance(member.get("merge_fields"), Mapping) else {}
    location = member.get("location") if isinstance(member.get("location"), Mapping) else {}
    address = merge.get("ADDRESS") if isinstance(merge.get("ADDRESS"), Mapping) else {}
    country = _text(location.get("country_code")) or _text(address.get("country"))
    stem = _tag_prefix(field_prefix)
    if owned_tags is None:
        owned_tags = _owned_merge_tags(field_prefix)
    tag_names = [str(t.get("name")) for t in member.get("tags") or [] if isinstance(t, Mapping)]
    owned: dict[str, Any] = {
        logical: None if merge.get(tag) in (None, "") else plain_merge_value(merge[tag])
        for logical, tag in owned_tags.items()
    }
    owned["tags"] = sorted(name for name in tag_names if name.startswith(field_prefix))
    raw = {
        "list_id": list_id,
        "status": member.get("status"),
        "member_rating": member.get("member_rating"),
        "vip": member.get("vip"),
        "stats": member.get("stats"),
        "tags": [name for name in tag_names if not name.startswith(field_prefix)],
        "source": member.get("source"),
        "contact_id": member.get("contact_id"),
        # the member's id in Mailchimp's web app, for the report's link (Mailchimp fact sheet §4)
        "web_id": member.get("web_id"),
        "merge_fields": {k: v for k, v in merge.items() if not str(k).startswith(stem)},
    }
    return ContactRecord(
        source=source,
        platform=P,
        remote_id=remote_id,
        email=email,
        first_name=_text(merge.get("FNAME")),
        last_name=_text(merge.get("LNAME")),
        job_title=_text(_first(merge, ATTRIBUTE_TAGS["job_title"])),
        seniority=_text(_first(merge, ATTRIBUTE_TAGS["seniority"])),
        company=_text(_first(merge, ATTRIBUTE_TAGS["company"])),
        industry=_text(_first(merge, ATTRIBUTE_TAGS["industry"])),
        company_size=_size(_first(merge, ATTRIBUTE_TAGS["company_size"])),
        country=country.upper() if country else None,
        lifecycle_stage=None,  # Mailchimp has no lifecycle stage; leadsync's own is a tag
        created_at=created,
        updated_at=updated,
        raw=raw,
        owned=owned,
    )


def plain_merge_value(value: Any) -> str:
    """A merge value as leadsync's logical string: number fields come back as 15 or 15.0."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _owned_merge_tags(field_prefix: str) -> dict[str, str]:
    from leadsync.connectors.mailchimp.writeback import field_defs  # local: see _tag_prefix

    return {logical: definition.tag for logical, definition in field_defs(field_prefix).items()}


def _tag_prefix(field_prefix: str) -> str:
    from leadsync.connectors.mailchimp.writeback import tag_stem  # local: writeback imports this module

    return tag_stem(field_prefix)


def member_events(member: Mapping[str, Any], *, source: str) -> list[EventRecord]:
    """Events a member's state implies: an unsubscribe (reason ``abuse`` = a spam report).

    Mailchimp keeps one status per member; its time is ``last_changed`` (the status write). The
    source id has no time in it, so a later write to the member does not count it twice.
    """
    if member.get("status") != "unsubscribed":
        return []
    list_id, member_id = str(member.get("list_id")), str(member.get("id"))
    at = parse_time(member.get("last_changed"))
    if at is None:
        return []
    abuse = str(member.get("unsubscribe_reason") or "").lower() == "abuse"
    kind = EventType.EMAIL_SPAM_REPORT if abuse else EventType.EMAIL_UNSUBSCRIBE
    return [
        EventRecord(
            source=source,
            platform=P,
            source_id=f"{kind.value}:{list_id}:{member_id}",
            type=kind,
            occurred_at=at,
            remote_contact_id=member_remote_id(list_id, member_id),
            email=normalise_email(member.get("email_address")),
            properties={"reason": member.get("unsubscribe_reason") or None},
        )
    ]


def activity_key(campaign_id: Any, email_id: Any, action: Any, stamp: Any, url: Any = None) -> str:
    """An email activity's ``source_id``: a click's carries its URL (one click per link)."""
    extra = f":{url}" if ACTIONS.get(str(action)) is EventType.EMAIL_CLICK else ""
    return f"{campaign_id}:{email_id}:{action}:{stamp}{extra}"


def activity_events(
    item: Mapping[str, Any],
    *,
    source: str,
    campaign_title: str | None = None,
    proxy_opens: frozenset[tuple[str, str]] = frozenset(),
) -> list[EventRecord]:
    """One ``emails[]`` item of ``/reports/{id}/email-activity`` as events (§7).

    ``proxy_opens`` holds ``(email_id, timestamp)`` of opens that ``open-details`` marks
    ``is_proxy_open`` (Apple Mail Privacy Protection and the like): those get ``machine=True``.
    Raises BadRecord for an item without ids, or with an activity it cannot read.

    The pull's hottest loop (one call per recipient with activity, a page of 500 at a time):
    written flat, each id turned to text once per item, not once per activity.
    """
    campaign_id, list_id, email_id = item.get("campaign_id"), item.get("list_id"), item.get("email_id")
    if not campaign_id or not list_id or not email_id:
        raise BadRecord("email activity without campaign_id, list_id or email_id", record=dict(item))
    campaign, member = str(campaign_id), str(email_id)
    remote = member_remote_id(str(list_id), member)
    address = item.get("email_address")
    email = normalise_email(address) if isinstance(address, str) else None
    events: list[EventRecord] = []
    for activity in item.get("activity") or ():
        if type(activity) is not dict and not isinstance(activity, Mapping):
            continue  # not an activity object: nothing leadsync scores
        action = activity.get("action")
        kind = ACTIONS.get(action) if isinstance(action, str) else None
        if kind is None:
            continue  # an action leadsync does not score
        stamp = activity.get("timestamp")
        try:
            at = parse_time(stamp)
        except ValueError:
            at = None
        if at is None:
            raise BadRecord(
                f"email activity {action!r} without a readable timestamp", record=dict(item), remote_id=remote
            )
        props: dict[str, Any] = {"campaign": campaign, "campaign_title": campaign_title}
        url = activity.get("url")
        if kind is EventType.EMAIL_OPEN:
            props["machine"] = (member, stamp) in proxy_opens
        elif kind is EventType.EMAIL_CLICK:
            props["url"] = url or None
        else:
            props["bounce"] = activity.get("type") or None
        key = activity_key(campaign_id, email_id, action, stamp, url)
        events.append(EventRecord(source, P, key, kind, at, remote, email, props))
    return events


def proxy_opens(members: list[Mapping[str, Any]]) -> set[tuple[str, str]]:
    """``(email_id, timestamp)`` of the opens ``open-details`` marks ``is_proxy_open`` (§7)."""
    found: set[tuple[str, str]] = set()
    for member in members:
        for opened in member.get("opens") or []:
            if isinstance(opened, Mapping) and opened.get("is_proxy_open"):
                found.add((str(member.get("email_id")), str(opened.get("timestamp"))))
    return found


def _customer_email(record: Mapping[str, Any]) -> str | None:
    """The normalised ``customer.email_address`` of an e-commerce order or cart (§7), or None."""
    customer = record.get("customer") if isinstance(record.get("customer"), Mapping) else {}
    address = customer.get("email_address")
    return normalise_email(address if isinstance(address, str) else None)


def order_event(order: Mapping[str, Any], *, source: str, list_id: str) -> EventRecord:
    """An e-commerce order as a ``purchase`` of the member of the store's audience."""
    order_id = order.get("id")
    email = _customer_email(order)
    if not order_id or email is None:
        raise BadRecord("order without id or customer email_address", record=dict(order))
    try:
        at = parse_time(order.get("processed_at_foreign")) or parse_time(order.get("updated_at_foreign"))
    except ValueError:
        at = None
    if at is None:
        raise BadRecord("order without processed_at_foreign", record=dict(order), remote_id=str(order_id))
    return EventRecord(
        source=source,
        platform=P,
        source_id=f"order:{order.get('store_id')}:{order_id}",
        type=EventType.PURCHASE,
        occurred_at=at,
        remote_contact_id=member_remote_id(list_id, subscriber_hash(email)),
        email=email,
        properties={
            "amount": order.get("order_total"),
            "currency": order.get("currency_code"),
            "order_id": str(order_id),
            "campaign": order.get("campaign_id") or None,
        },
    )


def cart_event(cart: Mapping[str, Any], *, source: str, store_id: str, list_id: str) -> EventRecord:
    """A store's cart as a ``cart_abandoned`` of the member of the store's audience (§7): a cart the
    store still reports was not checked out (a checkout turns it into an order). Its time is its
    last change (``updated_at``), so a cart filled again later moves; the source id has no time."""
    cart_id = cart.get("id")
    email = _customer_email(cart)
    if not cart_id or email is None:
        raise BadRecord("cart without id or customer email_address", record=dict(cart))
    try:
        at = parse_time(cart.get("updated_at")) or parse_time(cart.get("created_at"))
    except ValueError:
        at = None
    if at is None:
        raise BadRecord("cart without updated_at or created_at", record=dict(cart), remote_id=str(cart_id))
    return EventRecord(
        source=source,
        platform=P,
        source_id=f"cart:{store_id}:{cart_id}",
        type=EventType.CART_ABANDONED,
        occurred_at=at,
        remote_contact_id=member_remote_id(list_id, subscriber_hash(email)),
        email=email,
        properties={
            "amount": cart.get("order_total"),
            "currency": cart.get("currency_code"),
            "cart_id": str(cart_id),
            "store_id": store_id,
            "campaign": cart.get("campaign_id") or None,
        },
    )
