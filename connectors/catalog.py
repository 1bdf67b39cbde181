"""Every platform's streams as data: what each one reads and which event types it yields.

The connectors pull these streams, in this order; ``streams = [...]`` in a source's config selects
some of them (default: all), and ``leadsync streams`` shows the table with what each stream feeds in
the scoring model and its measured cost. Pure data: no connector (and no vendor SDK) is imported.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from leadsync.connectors.records import EventType, Platform

__all__ = [
    "CATALOG",
    "LIFECYCLE_STAGE",
    "STAGE_TAGS",
    "StreamInfo",
    "stream_links",
    "stream_names",
    "stream_order",
    "unknown_streams",
]

E = EventType

# What each platform holds of leadsync's besides its fields (DESIGN.md "Write-back"): Mailchimp and
# ActiveCampaign carry a stage tag and a lifecycle tag; HubSpot has no tags, and its native
# lifecycle stage is moved forward instead.
STAGE_TAGS: frozenset[Platform] = frozenset({Platform.MAILCHIMP, Platform.ACTIVECAMPAIGN})
LIFECYCLE_STAGE: frozenset[Platform] = frozenset({Platform.HUBSPOT})


@dataclass(frozen=True)
class StreamInfo:
    """One stream of one platform. ``contacts``: it yields contact records (the attributes affinity
    scoring reads, and the values of leadsync's own fields); ``events``: the event types it yields;
    ``after``: the streams it starts after in a run, because it uses what they read (the pipeline
    pulls a source's other streams side by side); ``links``: the streams whose reads link its
    records, which it waits for only to link them: it starts at once and reads its pages meanwhile
    (``connectors.gates``)."""

    name: str
    reads: str
    contacts: bool = False
    events: tuple[EventType, ...] = ()
    after: tuple[str, ...] = ()
    links: tuple[str, ...] = ()


_EMAIL = (E.EMAIL_SENT, E.EMAIL_OPEN, E.EMAIL_CLICK, E.EMAIL_BOUNCE, E.EMAIL_SPAM_REPORT)

CATALOG: dict[Platform, tuple[StreamInfo, ...]] = {
    Platform.HUBSPOT: (
        StreamInfo(
            "contacts",
            "CRM contacts (search on lastmodifieddate); page-view and form counters (hubspot.md §4.3)",
            contacts=True,
            events=(E.PAGE_VIEW, E.FORM_SUBMIT, E.CONTENT_DOWNLOAD, E.DEMO_REQUEST, E.TRIAL_STARTED),
        ),
        # the contacts stream's ids link most recipients (without them, a batch read by email per
        # 100): its pages are read while the contacts are, and linked once they have all been read
        StreamInfo(
            "email_events", "legacy Email Events API (hubspot.md §4.1)", events=_EMAIL, links=("contacts",)
        ),
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
        # the members read in the run answer whether an order's or cart's customer is a member (else a
        # GET each), and the carts reuse the orders' read of the stores
        StreamInfo(
            "orders",
            "each store's e-commerce orders (mailchimp.md §7)",
            events=(E.PURCHASE,),
            after=("members",),
        ),
        StreamInfo(
            "carts",
            "each store's abandoned carts (mailchimp.md §7)",
            events=(E.CART_ABANDONED,),
            after=("orders",),
        ),
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
            # its candidates between sweeps are what these two delivered in the run, less the echoes
            after=("contacts", "activities"),
        ),
        StreamInfo("deals", "won deals (activecampaign.md §5)", events=(E.DEAL_WON,)),
    ),
}


def stream_order(platform: Platform, selected: Sequence[str]) -> dict[str, frozenset[str]]:
    """Each of ``selected`` with the selected streams it starts after (``StreamInfo.after``, followed
    through deselected streams: carts wait for members when orders is not selected)."""
    infos = {info.name: info for info in CATALOG[platform]}
    chosen = set(selected)

    def before(name: str) -> set[str]:
        found: set[str] = set()
        for earlier in infos[name].after if name in infos else ():
            found.update({earlier} if earlier in chosen else before(earlier))
        return found

    return {name: frozenset(before(name)) for name in selected}


def stream_links(platform: Platform, stream: str) -> tuple[str, ...]:
    """The streams whose reads link ``stream``'s records (``StreamInfo.links``)."""
    return next((info.links for info in CATALOG[platform] if info.name == stream), ())


def stream_names(platform: Platform) -> tuple[str, ...]:
    """The platform's streams, in pull order."""
    return tuple(info.name for info in CATALOG[platform])


def unknown_streams(platform: Platform, names: Sequence[str]) -> list[str]:
    known = set(stream_names(platform))
    return [name for name in names if name not in known]
