"""Every platform's streams as data: what each one reads and which event types it yields.

The connectors pull these streams, in this order; ``streams = [...]`` in a source's config selects
some of them (default: all), and ``leadsync streams`` shows the table with what each stream feeds in
the scoring model and its measured cost. Pure data: no connector (and no vendor SDK) is imported.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from leadsync.connectors.records import EventType, Platform

__all__ = ["CATALOG", "LIFECYCLE_STAGE", "STAGE_TAGS", "StreamInfo", "stream_names", "unknown_streams"]

E = EventType

# What each platform holds of leadsync's besides its fields (DESIGN.md "Write-back"): Mailchimp and
# ActiveCampaign carry a stage tag and a lifecycle tag; HubSpot has no tags, and its native
# lifecycle stage is moved forward instead.
STAGE_TAGS: frozenset[Platform] = frozenset({Platform.MAILCHIMP, Platform.ACTIVECAMPAIGN})
LIFECYCLE_STAGE: frozenset[Platform] = frozenset({Platform.HUBSPOT})


@dataclass(frozen=True)
class StreamInfo:
    """One stream of one platform. ``contacts``: it yields contact records (the attributes affinity
    scoring reads, and the values of leadsync's own fields); ``events``: the event types it yields."""

    name: str
    reads: str
    contacts: bool = False
    events: tuple[EventType, ...] = ()


_EMAIL = (E.EMAIL_SENT, E.EMAIL_OPEN, E.EMAIL_CLICK, E.EMAIL_BOUNCE, E.EMAIL_SPAM_REPORT)

CATALOG: dict[Platform, tuple[StreamInfo, ...]] = {
    Platform.HUBSPOT: (
        StreamInfo(
            "contacts",
            "CRM contacts (search on lastmodifieddate); page-view and form counters (hubspot.md §4.3)",
            contacts=True,
            events=(E.PAGE_VIEW, E.FORM_SUBMIT, E.CONTENT_DOWNLOAD, E.DEMO_REQUEST, E.TRIAL_STARTED),
        ),
        StreamInfo("email_events", "legacy Email Events API (hubspot.md §4.1)", events=_EMAIL),
        StreamInfo(
            "page_views",
            "events API e_visited_page, Enterprise only (hubspot.md §4.2)",
            events=(E.PAGE_VIEW,),
        ),
        StreamInfo(
            "meetings",
            "CRM meetings with their outcome and contacts (search on hs_lastmodifieddate, hubspot.md §4.4)",
            events=(E.MEETING_BOOKED,),
        ),
        StreamInfo(
            "calls",
            "CRM calls and their contacts (search on hs_lastmodifieddate, hubspot.md §4.4)",
            events=(E.CALL,),
        ),
        StreamInfo("deals", "won deals and their contacts", events=(E.DEAL_WON,)),
    ),
    Platform.MAILCHIMP: (
        StreamInfo(
            "members",
            "audience members (since_last_changed); unsubscribes and spam reports",
            contacts=True,
            events=(E.EMAIL_UNSUBSCRIBE, E.EMAIL_SPAM_REPORT),
        ),
        StreamInfo(
            "email_activity",
            "opens, clicks and bounces per sent campaign (mailchimp.md §7)",
            events=(E.EMAIL_OPEN, E.EMAIL_CLICK, E.EMAIL_BOUNCE),
        ),
        StreamInfo("orders", "each store's e-commerce orders (mailchimp.md §7)", events=(E.PURCHASE,)),
        StreamInfo("carts", "each store's abandoned carts (mailchimp.md §7)", events=(E.CART_ABANDONED,)),
    ),
    Platform.ACTIVECAMPAIGN: (
        StreamInfo(
            "contacts", "contacts with their custom field values (activecampaign.md §2)", contacts=True
        ),
        StreamInfo(
            "activities",
            "the account's activity feed: email sends, opens, clicks, bounces (activecampaign.md §5)",
            events=(*_EMAIL, E.EMAIL_UNSUBSCRIBE),
        ),
        StreamInfo(
            "tracking_logs",
            "event-tracking logs, one request per contact (activecampaign.md §5)",
            events=(
                E.PAGE_VIEW,
                E.FORM_SUBMIT,
                E.CONTENT_DOWNLOAD,
                E.WEBINAR_ATTENDED,
                E.DEMO_REQUEST,
                E.TRIAL_STARTED,
                E.MEETING_BOOKED,
                E.CART_ABANDONED,
                E.SOCIAL_INTERACTION,
            ),
        ),
        StreamInfo("deals", "won deals (activecampaign.md §5)", events=(E.DEAL_WON,)),
    ),
}


def stream_names(platform: Platform) -> tuple[str, ...]:
    """The platform's streams, in pull order."""
    return tuple(info.name for info in CATALOG[platform])


def unknown_streams(platform: Platform, names: Sequence[str]) -> list[str]:
    known = set(stream_names(platform))
    return [name for name in names if name not in known]
