"""Webhook bodies as deliveries, pure: one ``Delivery`` per event about a person.

* HubSpot (hubspot.md §6): a JSON array of events, each with ``eventId``, ``subscriptionType`` and
  the contact's id in ``objectId``; property changes add ``propertyName`` and ``propertyValue``.
* Mailchimp (mailchimp.md §10): one form-encoded event, ``type``, ``fired_at`` and PHP-bracket
  ``data[...]`` keys; there is no event id, so the id is a digest of the body.
* ActiveCampaign (activecampaign.md §9, the AsyncAPI description of its webhooks): one
  form-encoded event, ``type``, ``date_time``, ``initiated_from`` and the ``contact[...]`` block
  (deal events name the contact in ``deal[contactid]``); no event id either.

A body that cannot be read raises ``Malformed``. An event leadsync does not act on (a deal's
pipeline, a campaign starting to send) comes back in ``ignored`` with its type, to be logged.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from leadsync.connectors.mailchimp.normalize import member_remote_id, subscriber_hash
from leadsync.connectors.records import Platform, normalise_email

__all__ = ["Delivery", "Malformed", "Parsed", "parse"]

# HubSpot contact subscriptions (hubspot.md §6): the ones about a person.
HUBSPOT_CONTACT_EVENTS = frozenset(
    {"contact.creation", "contact.propertyChange", "contact.merge", "contact.restore"}
)
# mailchimp.md §10: list webhook types; ``campaign`` is about a send, not a person.
MAILCHIMP_PERSON_EVENTS = frozenset({"subscribe", "unsubscribe", "profile", "upemail", "cleaned"})
MAILCHIMP_KNOWN = MAILCHIMP_PERSON_EVENTS | {"campaign"}
# The AsyncAPI description's messages: those with a contact block, and deal events (deal[contactid]).
AC_CONTACT_EVENTS = frozenset(
    {
        "subscribe",
        "unsubscribe",
        "update",
        "subscriber_note",
        "contact_task_add",
        "contact_tag_added",
        "contact_tag_removed",
        "open",
        "click",
        "reply",
        "forward",
        "share",
        "bounce",
        "sms_sent",
        "sms_reply",
        "sms_unsub",
    }
)
AC_DEAL_EVENTS = frozenset(
    {"deal_add", "deal_update", "deal_note_add", "deal_pipeline_add", "deal_stage_add", "deal_task_add"}
)
AC_KNOWN = (
    AC_CONTACT_EVENTS
    | AC_DEAL_EVENTS
    | {
        "sent",
        "list_add",
        "account_add",
        "account_update",
        "account_contact_add",
        "account_contact_update",
        "deal_task_complete",
        "deal_tasktype_add",
    }
)
MAX_EVENTS = 1000  # a HubSpot request carries up to 100 (hubspot.md §6, unconfirmed): far more is not HubSpot


class Malformed(ValueError):
    """A body that is not what the platform sends (said in the log and the 400)."""


@dataclass(frozen=True)
class Delivery:
    """One event about one person: what the queue keeps and the fast path reads."""

    event_id: str
    kind: str
    remote_id: str | None
    email: str | None
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass
class Parsed:
    deliveries: list[Delivery] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)  # event types leadsync does not act on


def _digest(body: bytes) -> str:
    return hashlib.blake2b(body, digest_size=16).hexdigest()


def parse(platform: Platform, body: bytes, content_type: str = "") -> Parsed:
    if platform is Platform.HUBSPOT:
        return _hubspot(body)
    if platform is Platform.MAILCHIMP:
        return _mailchimp(body)
    return _activecampaign(body)


def _hubspot(body: bytes) -> Parsed:
    try:
        events = json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise Malformed(f"body is not JSON ({exc})") from None
    if isinstance(events, dict):
        events = [events]
    if not isinstance(events, list) or not events or len(events) > MAX_EVENTS:
        raise Malformed("body is not a JSON array of 1 to 1000 events")
    parsed = Parsed()
    for number, event in enumerate(events):
        if not isinstance(event, Mapping):
            raise Malformed(f"event {number} is not an object")
        kind, event_id, object_id = event.get("subscriptionType"), event.get("eventId"), event.get("objectId")
        if not isinstance(kind, str) or event_id in (None, "") or isinstance(event_id, bool):
            raise Malformed(f"event {number} has no subscriptionType or eventId")
        if kind not in HUBSPOT_CONTACT_EVENTS:
            parsed.ignored.append(kind)
            continue
        if object_id in (None, "") or isinstance(object_id, bool | dict | list):
            raise Malformed(f"event {number} ({kind}) has no objectId")
        payload = {
            key: event.get(key)
            for key in ("propertyName", "propertyValue", "occurredAt", "changeSource", "attemptNumber")
            if event.get(key) is not None
        }
        parsed.deliveries.append(Delivery(str(event_id), kind, str(object_id), None, payload))
    return parsed


def _form(body: bytes) -> dict[str, str]:
    try:
        text = body.decode("utf-8")
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text), max_num_fields=2000)
    except (UnicodeDecodeError, ValueError) as exc:
        raise Malformed(f"body is not form-encoded ({exc})") from None
    return dict(pairs)


def _mailchimp(body: bytes) -> Parsed:
    form = _form(body)
    kind = form.get("type")
    if not kind:
        raise Malformed("form body has no 'type'")
    parsed = Parsed()
    if kind not in MAILCHIMP_PERSON_EVENTS:
        parsed.ignored.append(kind)
        return parsed
    email = normalise_email(form.get("data[new_email]") or form.get("data[email]"))
    list_id = form.get("data[list_id]")
    if not email or not list_id:
        raise Malformed(f"{kind} event without data[email] or data[list_id]")
    payload = {
        "fired_at": form.get("fired_at"),
        "merges": {k[len("data[merges][") : -1]: v for k, v in form.items() if k.startswith("data[merges][")},
    }
    if kind == "upemail":
        payload["old_email"] = normalise_email(form.get("data[old_email]"))
    if kind == "unsubscribe":
        payload["reason"] = form.get("data[reason]")
    remote = member_remote_id(list_id, subscriber_hash(email))
    parsed.deliveries.append(Delivery(_digest(body), kind, remote, email, payload))
    return parsed


def _activecampaign(body: bytes) -> Parsed:
    form = _form(body)
    kind = form.get("type")
    if not kind:
        raise Malformed("form body has no 'type'")
    parsed = Parsed()
    if kind in AC_DEAL_EVENTS:
        contact_id, email = form.get("deal[contactid]"), form.get("deal[contact_email]")
    elif kind in AC_CONTACT_EVENTS:
        contact_id, email = form.get("contact[id]"), form.get("contact[email]")
    else:
        parsed.ignored.append(kind)
        return parsed
    if not contact_id and not email:
        raise Malformed(f"{kind} event without contact[id] or contact[email]")
    payload = {
        key: form[key]
        for key in ("date_time", "initiated_from", "initiated_by", "link[url]", "campaign[id]", "tag")
        if form.get(key)
    }
    parsed.deliveries.append(
        Delivery(
            _digest(body), kind, str(contact_id) if contact_id else None, normalise_email(email), payload
        )
    )
    return parsed
