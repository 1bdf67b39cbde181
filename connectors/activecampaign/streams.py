"""ActiveCampaign endpoints as data (activecampaign.md §2–§5, §7). Mechanics live in the core."""

from __future__ import annotations

from functools import partial

from leadsync.connectors.pagination import KeysetPaginator, OffsetPaginator, SinglePagePaginator
from leadsync.connectors.streams import StreamSpec

__all__ = [
    "ACTIVITIES",
    "CONTACTS",
    "CONTACT_IDS",
    "CONTACT_TAGS",
    "DEALS",
    "FIELDS",
    "PAGE_SIZE",
    "TAGS",
    "TRACKING_LOGS",
]

PAGE_SIZE = 100  # §2: limit max 100 (default 20)
_offset = partial(OffsetPaginator, limit_param="limit", total_path="meta.total")

# §2: orders[id]=ASC + id_greater is the recommended way through contacts (offset gets slow);
# meta.total then counts the contacts past the id sent (progress totals);
# include=fieldValues side-loads the custom field values of the page, contactTags.tag the contacts'
# tags with their names (§2 [practice]): leadsync's own fields and tags are read with the contact.
CONTACTS = StreamSpec(
    name="contacts",
    path="contacts",
    records_path="contacts",
    paginator_factory=partial(KeysetPaginator, param="id_greater", total_path="meta.total"),
    page_size=PAGE_SIZE,
    params={"orders[id]": "ASC", "include": "fieldValues,contactTags.tag"},
    cursor_field="udate",
)
# The same walk without side-loading: only the ids matter (tracking logs are per contact).
CONTACT_IDS = StreamSpec(
    name="contact_ids",
    path="contacts",
    records_path="contacts",
    paginator_factory=partial(KeysetPaginator, param="id_greater", total_path="meta.total"),
    page_size=PAGE_SIZE,
    params={"orders[id]": "ASC"},
)
# §5: the account-wide activity feed with `after` (the docs want `contact`; the singer tap reads
# it account-wide [peer]); oldest first so offsets stay stable while new rows arrive.
ACTIVITIES = StreamSpec(
    name="activities",
    path="activities",
    records_path="activities",
    paginator_factory=_offset,
    page_size=PAGE_SIZE,
    params={"orders[tstamp]": "ASC"},
    cursor_field="tstamp",
)
# §5: event-tracking events, per contact, all at once.
TRACKING_LOGS = StreamSpec(
    name="tracking_logs",
    path="contacts/{id}/trackingLogs",
    records_path="trackingLogs",
    paginator_factory=SinglePagePaginator,
    cursor_field="tstamp",
)
# §5 deals: status 1 = won; filters[updated_after] is ">= given date" (spec:list-all-deals).
DEALS = StreamSpec(
    name="deals",
    path="deals",
    records_path="deals",
    paginator_factory=_offset,
    page_size=PAGE_SIZE,
    params={"filters[status]": 1, "orders[cdate]": "ASC"},
    cursor_field="mdate",
)
FIELDS = StreamSpec(
    name="fields", path="fields", records_path="fields", paginator_factory=_offset, page_size=PAGE_SIZE
)
TAGS = StreamSpec(
    name="tags", path="tags", records_path="tags", paginator_factory=_offset, page_size=PAGE_SIZE
)
# Not in the OpenAPI, but in every contact's links and used by peers (§4) [practice].
CONTACT_TAGS = StreamSpec(
    name="contact_tags",
    path="contacts/{id}/contactTags",
    records_path="contactTags",
    paginator_factory=SinglePagePaginator,
)
