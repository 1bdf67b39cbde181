"""Normalised records: the contract between connectors, the store and scoring.

Connectors turn each platform's payloads into these; the store persists them; scoring reads them.
They are plain frozen dataclasses (no I/O, no validation side effects) so that scoring can hold
millions of events cheaply. A normaliser that cannot build one raises ``BadRecord`` (see
``connectors.errors``) and the record goes to quarantine with that reason.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

__all__ = [
    "CALL_OUTCOMES",
    "CallOutcome",
    "ContactRecord",
    "EventRecord",
    "EventType",
    "MEETING_OUTCOMES",
    "MeetingOutcome",
    "Platform",
    "Profile",
    "call_outcome",
    "meeting_outcome",
    "normalise_email",
    "parse_count",
]


class Platform(StrEnum):
    HUBSPOT = "hubspot"
    MAILCHIMP = "mailchimp"
    ACTIVECAMPAIGN = "activecampaign"


class EventType(StrEnum):
    """Engagement event types (DESIGN.md, "Normalised records")."""

    EMAIL_SENT = "email_sent"
    EMAIL_OPEN = "email_open"
    EMAIL_CLICK = "email_click"
    EMAIL_BOUNCE = "email_bounce"
    EMAIL_UNSUBSCRIBE = "email_unsubscribe"
    EMAIL_SPAM_REPORT = "email_spam_report"
    PAGE_VIEW = "page_view"
    FORM_SUBMIT = "form_submit"
    CONTENT_DOWNLOAD = "content_download"
    WEBINAR_ATTENDED = "webinar_attended"
    DEMO_REQUEST = "demo_request"
    TRIAL_STARTED = "trial_started"
    MEETING_BOOKED = "meeting_booked"
    CART_ABANDONED = "cart_abandoned"
    PURCHASE = "purchase"
    DEAL_WON = "deal_won"
    SOCIAL_INTERACTION = "social_interaction"
    # Appended, not inserted: a type's code in scoring is its position in this enum.
    CALL = "call"


class MeetingOutcome(StrEnum):
    """What became of a ``meeting_booked`` event, in ``properties["outcome"]``.

    The model can weigh outcomes apart (``meeting_completed``, ``meeting_no_show``,
    ``meeting_cancelled`` in scoring models); scheduled and rescheduled meetings score as booked.
    """

    SCHEDULED = "scheduled"
    COMPLETED = "completed"
    RESCHEDULED = "rescheduled"
    NO_SHOW = "no_show"
    CANCELLED = "cancelled"


#: Spellings platforms use for a meeting's outcome, normalised (HubSpot's ``hs_meeting_outcome``
#: is ``SCHEDULED``, ``COMPLETED``, ``RESCHEDULED``, ``NO_SHOW`` or ``CANCELED``, hubspot.md §4.4).
MEETING_OUTCOMES: dict[str, MeetingOutcome] = {
    "scheduled": MeetingOutcome.SCHEDULED,
    "completed": MeetingOutcome.COMPLETED,
    "rescheduled": MeetingOutcome.RESCHEDULED,
    "no_show": MeetingOutcome.NO_SHOW,
    "noshow": MeetingOutcome.NO_SHOW,
    "cancelled": MeetingOutcome.CANCELLED,
    "canceled": MeetingOutcome.CANCELLED,
}


class CallOutcome(StrEnum):
    """What became of a ``call`` event, in ``properties["outcome"]``: the model can leave calls
    that never reached the person (``call_not_connected``) out of engagement."""

    COMPLETED = "completed"
    NOT_CONNECTED = "not_connected"


#: HubSpot's ``hs_call_status`` values (hubspot.md §4.4 lists the property, its values are
#: unconfirmed there; these are the ones public HubSpot integrations read), normalised. Calls still
#: in progress (``QUEUED``, ``RINGING``, ``CONNECTING``, ``IN_PROGRESS``, ``CALLING_CRM_USER``) and
#: unknown values count as completed: a logged call is a conversation unless it says otherwise.
CALL_OUTCOMES: dict[str, CallOutcome] = {
    "completed": CallOutcome.COMPLETED,
    "no_answer": CallOutcome.NOT_CONNECTED,
    "busy": CallOutcome.NOT_CONNECTED,
    "failed": CallOutcome.NOT_CONNECTED,
    "canceled": CallOutcome.NOT_CONNECTED,
    "cancelled": CallOutcome.NOT_CONNECTED,
    "not_connected": CallOutcome.NOT_CONNECTED,
}


def _outcome_key(value: Any) -> str:
    return str(value).strip().lower().replace("-", "_").replace(" ", "_")


def call_outcome(value: Any) -> tuple[CallOutcome, bool]:
    """A platform's call status and whether it was recognised (default: completed, see above)."""
    if value is None or not str(value).strip():
        return CallOutcome.COMPLETED, True
    key = _outcome_key(value)
    if key in ("queued", "ringing", "connecting", "in_progress", "calling_crm_user"):
        return CallOutcome.COMPLETED, True
    known = CALL_OUTCOMES.get(key)
    return (known, True) if known is not None else (CallOutcome.COMPLETED, False)


def meeting_outcome(value: Any) -> tuple[MeetingOutcome, bool]:
    """A platform's meeting outcome and whether it was recognised.

    Documented default: a missing or unknown outcome is ``scheduled`` (the meeting was booked, what
    became of it is not known); callers keep the platform's own word beside it. Values are matched
    without regard to case, spaces or hyphens (``"No-show"``, ``"NO_SHOW"``).
    """
    if value is None or not str(value).strip():
        return MeetingOutcome.SCHEDULED, True
    known = MEETING_OUTCOMES.get(_outcome_key(value))
    return (known, True) if known is not None else (MeetingOutcome.SCHEDULED, False)


def normalise_email(email: str | None) -> str | None:
    """The identity key: trimmed and lowercased, or None when empty (DESIGN.md, "Identity")."""
    if email is None:
        return None
    cleaned = email.strip().lower()
    return cleaned or None


def parse_count(value: Any) -> int | None:
    """A head count as platforms hold it: a number, or text such as ``"250"``, ``" 1,200 "``,
    ``"25-50"`` (a range: its floor) or ``"1000+"``. None when empty, negative or unreadable (the
    caller keeps the raw text): an odd company size never costs the whole contact."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return int(value) if math.isfinite(value) and value >= 0 else None
    text = str(value).strip().replace(",", "").replace("_", "").replace(" ", "").rstrip("+")
    if not text or text.startswith("-"):
        return None
    try:
        number = float(text.split("-")[0])
    except ValueError:
        return None
    return int(number) if math.isfinite(number) and number >= 0 else None


@dataclass(frozen=True, slots=True)
class ContactRecord:
    """One contact as one platform knows it (an identity).

    ``source`` is the configured source name (a config may hold two HubSpot portals);
    ``remote_id`` is the platform's id for the contact, stable across email changes.
    ``updated_at`` is the platform's own last-modified time (UTC), used to pick the most
    recent value when sources disagree.
    """

    source: str
    platform: Platform
    remote_id: str
    email: str | None
    first_name: str | None = None
    last_name: str | None = None
    job_title: str | None = None
    seniority: str | None = None
    company: str | None = None
    industry: str | None = None
    company_size: int | None = None
    country: str | None = None
    lifecycle_stage: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    raw: dict[str, Any] = field(default_factory=dict)
    # What the platform holds in leadsync's own fields (logical name -> value as a string, None when
    # unset) and, where leadsync tags, ``"tags"``: the sorted names of leadsync's tags the contact
    # carries. None when this pull did not read them. Kept out of ``raw``: the platform is the truth
    # for these (DESIGN.md "Operating at scale"), and a change to them alone is no news to scoring.
    owned: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class EventRecord:
    """One engagement event.

    ``source_id`` is unique within the source, so a re-read never double counts. ``occurred_at``
    is UTC. ``remote_contact_id`` links to the ``ContactRecord`` of the same source. ``properties``
    holds at least ``url`` (page views, clicks), ``campaign`` (email events) and ``machine``
    (True when the platform or our filter marks it as bot activity) where they apply.
    """

    source: str
    platform: Platform
    source_id: str
    type: EventType
    occurred_at: datetime
    remote_contact_id: str
    email: str | None = None
    properties: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Profile:
    """A person's merged attributes across platforms: what affinity scoring reads."""

    email: str
    first_name: str | None = None
    last_name: str | None = None
    job_title: str | None = None
    seniority: str | None = None
    company: str | None = None
    industry: str | None = None
    company_size: int | None = None
    country: str | None = None
    lifecycle_stage: str | None = None
    platforms: tuple[str, ...] = ()
