"""HubSpot endpoints as data (hubspot.md sections cited per row)."""

from __future__ import annotations

from functools import partial

from leadsync.connectors.hubspot import normalize
from leadsync.connectors.pagination import (
    CursorAfterPaginator,
    HasMoreOffsetPaginator,
    SearchOffsetPaginator,
    SinglePagePaginator,
)
from leadsync.connectors.streams import StreamSpec

__all__ = [
    "ACCOUNT_DETAILS",
    "CONTACT_PROPERTIES",
    "CONTACT_SEARCH",
    "CONTACTS_BY_EMAIL",
    "DEAL_PIPELINES",
    "DEALS",
    "EMAIL_EVENTS",
    "PAGE_VIEWS",
]

# Contact properties the connector reads: profile, lifecycle, and the counters that stand in for
# engagement the API has no event feed for (hubspot.md §4.3).
CONTACT_PROPERTIES: tuple[str, ...] = (
    *normalize.PROFILE,
    "hs_lead_status",
    "hs_analytics_num_page_views",
    "hs_analytics_num_visits",
    "hs_analytics_last_visit_timestamp",
    "hs_analytics_last_timestamp",
    "hs_analytics_last_url",
    "num_conversion_events",
    "recent_conversion_date",
    "recent_conversion_event_name",
)

ACCOUNT_DETAILS = StreamSpec("account", "/account-info/v3/details", "", SinglePagePaginator)

# hubspot.md §2.5: search on lastmodifieddate (not hs_lastmodifieddate, which silently fails on
# contacts), sorted ascending, 200 a page, 10,000 results a query (the paginator re-anchors).
CONTACT_SEARCH = StreamSpec(
    "contacts",
    "/crm/v3/objects/contacts/search",
    "results",
    partial(SearchOffsetPaginator),
    method="POST",
    body={
        "sorts": [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}],
        "properties": list(CONTACT_PROPERTIES),
    },
    page_size=200,
    cursor_field="lastmodifieddate",
)

# hubspot.md §2.2: batch read by email (idProperty), 100 inputs, used to link email events.
CONTACTS_BY_EMAIL = StreamSpec(
    "contacts_by_email",
    "/crm/v3/objects/contacts/batch/read",
    "results",
    SinglePagePaginator,
    method="POST",
    body={"idProperty": "email", "properties": ["email"]},
)

# hubspot.md §4.1: legacy email events, offset + hasMore, limit 1000, times in epoch ms.
EMAIL_EVENTS = StreamSpec(
    "email_events",
    "/email/public/v1/events",
    "events",
    partial(HasMoreOffsetPaginator),
    page_size=1000,
    cursor_field="created",
)

# hubspot.md §4.2: page views with their URLs, Enterprise only; paging.next.after.
PAGE_VIEWS = StreamSpec(
    "page_views",
    "/events/v3/events",
    "results",
    partial(CursorAfterPaginator),
    params={"objectType": "contact", "eventType": "e_visited_page", "sort": "ASCENDING"},
    page_size=100,
    cursor_field="occurredAt",
)

# hubspot.md §2.1 (same list shape for deals): associations come only with the list/get calls.
DEALS = StreamSpec(
    "deals",
    "/crm/v3/objects/deals",
    "results",
    partial(CursorAfterPaginator),
    params={
        "associations": "contacts",
        "properties": "dealname,amount,dealstage,pipeline,closedate,hs_lastmodifieddate,hs_is_closed_won",
    },
    page_size=100,
    cursor_field="hs_lastmodifieddate",
)

DEAL_PIPELINES = StreamSpec("deal_pipelines", "/crm/v3/pipelines/deals", "results", SinglePagePaginator)
