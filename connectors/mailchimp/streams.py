"""Mailchimp endpoints as data (mailchimp.md §3, §4.1, §5, §7). Paths are relative to ``/3.0``."""

from __future__ import annotations

from functools import partial

from leadsync.connectors.pagination import OffsetPaginator, SinglePagePaginator
from leadsync.connectors.streams import StreamSpec

__all__ = [
    "CAMPAIGNS",
    "EMAIL_ACTIVITY",
    "LISTS",
    "MEMBER",
    "MEMBERS",
    "MERGE_FIELDS",
    "OPEN_DETAILS",
    "STORE_CARTS",
    "STORE_ORDERS",
    "STORES",
]

# §4.1: count ≤ 1000 with offset; total_items on every collection.
_offset = partial(OffsetPaginator, limit_param="count", total_path="total_items")

LISTS = StreamSpec(
    "lists", "lists", "lists", _offset, page_size=1000, params={"fields": "lists.id,lists.name,total_items"}
)

# §13: peers page members by last_changed ASC with since_last_changed (singer, Airbyte).
MEMBERS = StreamSpec(
    "members",
    "lists/{list_id}/members",
    "members",
    _offset,
    page_size=1000,
    params={"sort_field": "last_changed", "sort_dir": "ASC", "exclude_fields": "members._links,_links"},
    cursor_field="last_changed",
    primary_key=("list_id", "id"),
)

# §5: merge-fields defaults to count 10: always ask for 1000.
MERGE_FIELDS = StreamSpec(
    "merge_fields",
    "lists/{list_id}/merge-fields",
    "merge_fields",
    _offset,
    page_size=1000,
    params={
        "fields": "merge_fields.merge_id,merge_fields.tag,merge_fields.name,merge_fields.type,total_items"
    },
)

CAMPAIGNS = StreamSpec(
    "campaigns",
    "campaigns",
    "campaigns",
    _offset,
    page_size=1000,
    params={
        "status": "sent",
        "sort_field": "send_time",
        "sort_dir": "ASC",
        "fields": "campaigns.id,campaigns.send_time,campaigns.settings.title,campaigns.recipients.list_id,total_items",
    },
)

# §7, §12: count=1000 on email-activity gave users 504s; Mailchimp support suggested 500.
EMAIL_ACTIVITY = StreamSpec(
    "email_activity",
    "reports/{campaign_id}/email-activity",
    "emails",
    _offset,
    page_size=500,
    params={"exclude_fields": "emails._links,_links"},
    cursor_field="timestamp",
    primary_key=("campaign_id", "email_id"),
)

# §7: only open-details says which opens were machine (is_proxy_open).
OPEN_DETAILS = StreamSpec(
    "open_details",
    "reports/{campaign_id}/open-details",
    "members",
    _offset,
    page_size=500,
    params={"fields": "members.email_id,members.opens,total_items"},
)

STORES = StreamSpec(
    "stores",
    "ecommerce/stores",
    "stores",
    _offset,
    page_size=1000,
    params={"fields": "stores.id,stores.list_id,total_items"},
)

# §7 (spec getEcommerceStoresIdOrders, getEcommerceStoresIdCarts): per store, offset paged, no time
# filter on the server; the carts a store reported and nobody checked out.
STORE_ORDERS = StreamSpec(
    "orders",
    "ecommerce/stores/{store_id}/orders",
    "orders",
    _offset,
    page_size=1000,
    params={"exclude_fields": "orders._links,orders.lines,_links"},
    primary_key=("store_id", "id"),
)
STORE_CARTS = StreamSpec(
    "carts",
    "ecommerce/stores/{store_id}/carts",
    "carts",
    _offset,
    page_size=1000,
    params={"exclude_fields": "carts._links,carts.lines,_links"},
    cursor_field="updated_at",
    primary_key=("store_id", "id"),
)

# §4: one member by subscriber hash (404 when the audience has no such member).
MEMBER = StreamSpec(
    "member",
    "lists/{list_id}/members/{subscriber_hash}",
    "",
    SinglePagePaginator,
    params={"fields": "id,status"},
)
