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
    "CALL_CONTACTS",
    "CALL_SEARCH",
    "CONTACT_FORM_SUBMISSIONS",
    "CONTACT_PROPERTIES",
    "CONTACT_SEARCH",
    "CONTACTS_BY_EMAIL",
    "DEAL_PIPELINES",
    "DEALS",
    "EMAIL_EVENTS",
    "ENGAGEMENTS",
    "FORMS",
    "MEETING_CONTACTS",
    "MEETING_SEARCH",
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


# hubspot.md §4.4: engagements are searched like contacts, on hs_lastmodifieddate (Airbyte's
# engagements streams), 200 a page; search cannot return associations (hubspot.md §2.2, §8.6).
MEETING_SEARCH = StreamSpec(
    "meetings",
    "/crm/v3/objects/meetings/search",
    "results",
    partial(SearchOffsetPaginator),
    method="POST",
    body={
        "sorts": [{"propertyName": "hs_lastmodifieddate", "direction": "ASCENDING"}],
        "properties": list(normalize.MEETING_PROPERTIES),
        "after": "0",  # the spec (meetings.json PublicObjectSearchRequest) requires it on the first page too
    },
    page_size=200,
    cursor_field="hs_lastmodifieddate",
)
CALL_SEARCH = StreamSpec(
    "calls",
    "/crm/v3/objects/calls/search",
    "results",
    partial(SearchOffsetPaginator),
    method="POST",
    body={
        "sorts": [{"propertyName": "hs_lastmodifieddate", "direction": "ASCENDING"}],
        "properties": list(normalize.CALL_PROPERTIES),
        "after": "0",
    },
    page_size=200,
    cursor_field="hs_lastmodifieddate",
)

# Their contacts: associations v4 batch read, {"inputs":[{"id"}]} -> results[].from.id / to[].toObjectId
# (DOCS https://developers.hubspot.com/docs/api-reference/legacy/crm/associations/associate-records/batch/get-associations).
MEETING_CONTACTS = StreamSpec(
    "meeting_contacts",
    "/crm/v4/associations/meetings/contacts/batch/read",
    "results",
    SinglePagePaginator,
    method="POST",
)
CALL_CONTACTS = StreamSpec(
    "call_contacts",
    "/crm/v4/associations/calls/contacts/batch/read",
    "results",
    SinglePagePaginator,
    method="POST",
)

# stream name -> (search, associations to contacts, normaliser)
ENGAGEMENTS = {
    "meetings": (MEETING_SEARCH, MEETING_CONTACTS, normalize.meeting_events),
    "calls": (CALL_SEARCH, CALL_CONTACTS, normalize.call_events),
}

# hubspot.md §4.3: the form-submission history of contacts, 100 vids a request, every submission
# (formSubmissionMode=all) with form-id, page-url and timestamp. A v1 read that outlives the v1
# lists sunset (https://developers.hubspot.com/changelog/upcoming-sunset-v1-lists-api: "will
# continue to function, but will no longer return list memberships"); documented at
# https://developers.hubspot.com/docs/api-reference/legacy/crm/objects/contacts/v1/get-contacts-v1-contactvids-batch.
# It needs only crm.objects.contacts.read, so it works on every tier. The body is an object keyed by
# vid (records_path "").
CONTACT_FORM_SUBMISSIONS = StreamSpec(
    "form_submissions",
    "/contacts/v1/contact/vids/batch",
    "",
    SinglePagePaginator,
    params={"formSubmissionMode": "all", "property": "email", "showListMemberships": "false"},
)

# The forms' names by id (Forms API v3, paging.next.after, at most 50 a page).
FORMS = StreamSpec(
    "forms",
    "/marketing/v3/forms/",
    "results",
    partial(CursorAfterPaginator),
    page_size=50,
)
