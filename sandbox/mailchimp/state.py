"""What the Mailchimp emulator holds: audiences, members, merge fields, tags, campaigns and their
email activity, member activity feeds and e-commerce orders.

Plain data with the rules Mailchimp applies on writes (mailchimp.md §4-§6, §14): members keyed by
the subscriber hash, ``last_changed`` moved on every write, unset values rendered as ``""``, merge
field values checked against their type. Routes render these objects; ``worldmap`` builds them
from the sandbox world. Every access from a route or the world happens under ``MailchimpState.lock``.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from leadsync.sandbox.mailchimp.shapes import fmt_time, short_id, subscriber_hash

if TYPE_CHECKING:
    from leadsync.sandbox.clock import SandboxClock

__all__ = [
    "Activity",
    "Audience",
    "Batch",
    "CampaignState",
    "Cart",
    "FeedItem",
    "MAX_MERGE_FIELDS",
    "MAX_TAG_LENGTH",
    "MailchimpState",
    "Member",
    "MergeField",
    "MergeValueError",
    "Order",
]

# mailchimp.md §5: 30 merge fields per audience (UI warning, mc-magento#957); merge tags of at
# most ~10 letters, digits and "_" (UNCONFIRMED in the spec; enforced here so the connector copes).
MAX_MERGE_FIELDS = 30
MAX_TAG_LENGTH = 10
TAG_PATTERN = re.compile(r"^[A-Z0-9_]{1,10}$")
MERGE_TYPES = (
    "text",
    "number",
    "address",
    "phone",
    "date",
    "url",
    "imageurl",
    "radio",
    "dropdown",
    "birthday",
    "zip",
)
_DATE_FORMATS = (
    re.compile(r"^\d{4}-\d{2}-\d{2}$"),
    re.compile(r"^\d{4}/\d{2}/\d{2}$"),
    re.compile(r"^\d{2}-\d{2}-\d{4}$"),
    re.compile(r"^\d{2}/\d{2}/\d{4}$"),
)


class MergeValueError(ValueError):
    """A merge field value its type refuses (mailchimp.md §5: 400 Invalid Resource)."""

    def __init__(self, tag: str, message: str) -> None:
        self.tag = tag
        self.message = message
        super().__init__(f"{tag}: {message}")


@dataclass
class MergeField:
    merge_id: int
    tag: str
    name: str
    type: str
    required: bool = False
    default_value: str = ""
    public: bool = True
    display_order: int = 0
    help_text: str = ""
    choices: list[str] = field(default_factory=list)
    date_format: str = ""

    def coerce(self, value: Any) -> Any:
        """The stored value, or MergeValueError (mailchimp.md §5 value rules)."""
        if value is None or value == "":
            return ""  # unset is "" even for number fields (§4.2)
        if self.type == "number":
            if isinstance(value, bool):
                raise MergeValueError(self.tag, "Please enter a number")
            if isinstance(value, (int, float)):
                return value
            try:
                number = float(str(value))
            except ValueError:
                raise MergeValueError(self.tag, "Please enter a number") from None
            return int(number) if number.is_integer() else number
        if self.type == "date":
            text = str(value)
            if not any(p.match(text) for p in _DATE_FORMATS):
                raise MergeValueError(self.tag, "Please enter a date")
            return text.replace("/", "-") if text[4:5] in "-/" else text
        if self.type in ("radio", "dropdown") and self.choices and str(value) not in self.choices:
            raise MergeValueError(self.tag, "Please choose one of the options")
        if self.type == "address":
            if not isinstance(value, dict):
                raise MergeValueError(self.tag, "Please enter a complete address")
            return value
        if isinstance(value, (dict, list)):
            raise MergeValueError(self.tag, "Please enter a value")
        # §5: text values are truncated to 255 bytes.
        return str(value).encode()[:255].decode(errors="ignore")

    def render(self, list_id: str) -> dict[str, Any]:
        options: dict[str, Any] = {}
        if self.type == "text":
            options["size"] = 25
        if self.type in ("radio", "dropdown"):
            options["choices"] = list(self.choices)
        if self.type in ("date", "birthday"):
            options["date_format"] = self.date_format or ("YYYY-MM-DD" if self.type == "date" else "MM/DD")
        if self.type == "phone":
            options["phone_format"] = "none"
        if self.type == "address":
            options["default_country"] = 164
        return {
            "merge_id": self.merge_id,
            "tag": self.tag,
            "name": self.name,
            "type": self.type,
            "required": self.required,
            "default_value": self.default_value,
            "public": self.public,
            "display_order": self.display_order,
            "options": options,
            "help_text": self.help_text,
            "list_id": list_id,
            "_links": [],
        }


@dataclass
class Member:
    email: str
    status: str
    contact_id: str
    unique_email_id: str
    web_id: int
    last_changed: datetime
    timestamp_opt: datetime | None = None
    timestamp_signup: datetime | None = None
    merge_fields: dict[str, Any] = field(default_factory=dict)
    tags: dict[str, tuple[int, datetime]] = field(default_factory=dict)  # name -> (tag id, date added)
    country_code: str = ""
    source: str = "API - Generic"
    unsubscribe_reason: str = ""
    vip: bool = False
    sent: set[str] = field(default_factory=set)  # campaign ids
    opened: set[str] = field(default_factory=set)
    clicked: set[str] = field(default_factory=set)
    orders: int = 0
    revenue: float = 0.0

    @property
    def id(self) -> str:
        return subscriber_hash(self.email)

    def rating(self) -> int:
        # mailchimp.md §4.2: member_rating 1-5, 2 for fresh contacts.
        if not self.sent:
            return 2
        rate = len(self.opened) / len(self.sent)
        return 5 if rate > 0.6 else 4 if rate > 0.4 else 3 if rate > 0.15 else 2 if rate > 0 else 1

    def render(self, list_id: str, merge_fields: list[MergeField]) -> dict[str, Any]:
        values = {mf.tag: self.merge_fields.get(mf.tag, "") for mf in merge_fields}
        full_name = " ".join(str(values.get(t) or "") for t in ("FNAME", "LNAME")).strip()
        sent = len(self.sent)
        tags = sorted(self.tags.items(), key=lambda item: item[1][1])
        return {
            "id": self.id,
            "email_address": self.email,
            "unique_email_id": self.unique_email_id,
            "contact_id": self.contact_id,
            "full_name": full_name,
            "web_id": self.web_id,
            "email_type": "html",
            "status": self.status,
            "unsubscribe_reason": self.unsubscribe_reason,
            "consents_to_one_to_one_messaging": True,
            "merge_fields": values,
            "interests": {},
            "stats": {
                # §4.2: fractions, 0 without data.
                "avg_open_rate": round(len(self.opened) / sent, 4) if sent else 0,
                "avg_click_rate": round(len(self.clicked) / sent, 4) if sent else 0,
                "ecommerce_data": {
                    "total_revenue": round(self.revenue, 2),
                    "number_of_orders": self.orders,
                    "currency_code": "USD",
                },
            },
            "ip_signup": "",
            "timestamp_signup": fmt_time(self.timestamp_signup),
            "ip_opt": "198.51.100.7" if self.timestamp_opt else "",
            "timestamp_opt": fmt_time(self.timestamp_opt),
            "member_rating": self.rating(),
            "last_changed": fmt_time(self.last_changed),
            "language": "",
            "vip": self.vip,
            "email_client": "",
            "location": {
                "latitude": 0,
                "longitude": 0,
                "gmtoff": 0,
                "dstoff": 0,
                "country_code": self.country_code,
                "timezone": "",
                "region": "",
            },
            "source": self.source,
            "tags_count": len(tags),
            # §4.2: the member view shows at most 50 tags.
            "tags": [{"id": tag_id, "name": name} for name, (tag_id, _) in tags[:50]],
            "list_id": list_id,
            "_links": [],
        }


@dataclass
class Audience:
    id: str
    web_id: int
    name: str
    date_created: datetime
    members: dict[str, Member] = field(default_factory=dict)
    merge_fields: list[MergeField] = field(default_factory=list)
    forgotten: set[str] = field(default_factory=set)  # hashes deleted permanently
    tags: dict[str, int] = field(default_factory=dict)  # tags created as static segments (§6), name -> id

    def merge_field(self, tag: str) -> MergeField | None:
        return next((mf for mf in self.merge_fields if mf.tag == tag), None)

    def find(self, key: str) -> Member | None:
        """§4: the hash, or the email address, or the contact_id."""
        member = self.members.get(key.lower()) or self.members.get(subscriber_hash(key))
        if member is None:
            member = next((m for m in self.members.values() if m.contact_id == key), None)
        return member

    def coerce_merge(self, values: dict[str, Any]) -> tuple[dict[str, Any], list[MergeValueError]]:
        good: dict[str, Any] = {}
        errors: list[MergeValueError] = []
        for tag, value in values.items():
            mf = self.merge_field(tag)
            if mf is None:
                continue  # Mailchimp ignores unknown merge tags
            try:
                good[tag] = mf.coerce(value)
            except MergeValueError as exc:
                errors.append(exc)
        return good, errors

    def render(self, campaigns: int, last_sent: datetime | None) -> dict[str, Any]:
        members = list(self.members.values())
        count = sum(1 for m in members if m.status == "subscribed")
        unsub = sum(1 for m in members if m.status == "unsubscribed")
        cleaned = sum(1 for m in members if m.status == "cleaned")
        return {
            "id": self.id,
            "web_id": self.web_id,
            "name": self.name,
            "contact": {
                "company": "Leadsync Sandbox",
                "address1": "1 Loopback Way",
                "address2": "",
                "city": "Atlanta",
                "state": "GA",
                "zip": "30308",
                "country": "US",
                "phone": "",
            },
            "permission_reminder": "You signed up on our website.",
            "use_archive_bar": True,
            "campaign_defaults": {
                "from_name": "Leadsync Sandbox",
                "from_email": "news@leadsync.invalid",
                "subject": "",
                "language": "en",
            },
            "notify_on_subscribe": "",
            "notify_on_unsubscribe": "",
            "date_created": fmt_time(self.date_created),
            "list_rating": 3,
            "email_type_option": False,
            "subscribe_url_short": f"http://eepurl.com/{self.id[:6]}",
            "subscribe_url_long": f"https://sandbox.us6.list-manage.com/subscribe?u=0&id={self.id}",
            "beamer_address": f"us6-{self.id}@inbound.mailchimp.com",
            "visibility": "prv",
            "double_optin": False,
            "has_welcome": False,
            "marketing_permissions": False,
            "modules": [],
            "stats": {
                "member_count": count,
                "total_contacts": len(members),
                "unsubscribe_count": unsub,
                "cleaned_count": cleaned,
                "member_count_since_send": 0,
                "unsubscribe_count_since_send": 0,
                "cleaned_count_since_send": 0,
                "campaign_count": campaigns,
                "campaign_last_sent": fmt_time(last_sent),  # "" when never sent (§3)
                "merge_field_count": len(self.merge_fields),
                "avg_sub_rate": 0,
                "avg_unsub_rate": 0,
                "target_sub_rate": 0,
                "open_rate": 0,
                "click_rate": 0,
                "last_sub_date": "",
                "last_unsub_date": "",
            },
            "_links": [],
        }


@dataclass
class Activity:
    """One item of a campaign's email activity (§7): open, click or bounce."""

    action: str
    timestamp: datetime
    url: str = ""
    type: str = ""
    ip: str = ""
    proxy: bool = False  # shown only by open-details as is_proxy_open
    stamp: str = field(default="", compare=False)  # the timestamp as rendered, computed once

    def __post_init__(self) -> None:
        self.stamp = fmt_time(self.timestamp)
        self.second = self.timestamp.replace(microsecond=0)


@dataclass
class CampaignState:
    id: str
    web_id: int
    list_id: str
    title: str
    subject: str
    create_time: datetime
    send_time: datetime
    links: list[str] = field(default_factory=list)
    recipients: dict[str, str] = field(default_factory=dict)  # hash -> email, in send order
    activity: dict[str, list[Activity]] = field(default_factory=dict)  # hash -> time order
    # the members with an open, and with a click (report_summary), kept as activity is added: as
    # Mailchimp keeps its report summaries, rather than counted over every activity per request
    opened_by: set[str] = field(default_factory=set)
    clicked_by: set[str] = field(default_factory=set)

    def add_activity(self, key: str, item: Activity) -> None:
        self.activity.setdefault(key, []).append(item)
        if item.action == "open":
            self.opened_by.add(key)
        elif item.action == "click":
            self.clicked_by.add(key)


@dataclass
class FeedItem:
    """One item of a member's activity feed (§7, polymorphic by ``activity_type``)."""

    activity_type: str
    created_at: datetime
    campaign_id: str = ""
    campaign_title: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def render(self) -> dict[str, Any]:
        body = {"activity_type": self.activity_type, "created_at_timestamp": fmt_time(self.created_at)}
        if self.campaign_id:
            body["campaign_id"] = self.campaign_id
            body["campaign_title"] = self.campaign_title
        body.update(self.extra)
        return body


@dataclass
class Order:
    id: str
    store_id: str
    email: str
    customer_id: str
    total: float
    currency: str
    processed_at: datetime
    campaign_id: str = ""
    first_name: str = ""
    last_name: str = ""
    product: str = "Sandbox subscription"


@dataclass
class Cart:
    """An e-commerce cart the store reported and nobody checked out (mailchimp.md §7)."""

    id: str
    store_id: str
    email: str
    customer_id: str
    total: float
    currency: str
    created_at: datetime
    updated_at: datetime
    campaign_id: str = ""
    first_name: str = ""
    last_name: str = ""
    product: str = "Sandbox subscription"


@dataclass
class Batch:
    """A ``POST /batches`` request and what became of it (mailchimp.md §8.1)."""

    id: str
    operations: list[dict[str, Any]]
    submitted_at: datetime
    status: str = "pending"
    finished_operations: int = 0
    errored_operations: int = 0
    completed_at: datetime | None = None
    results: bytes | None = None  # the gzipped tar of the results, once finished


class MailchimpState:
    """Everything one Mailchimp account holds in the sandbox."""

    def __init__(self, clock: SandboxClock, *, seed: str = "sandbox") -> None:
        self.clock = clock
        self.seed = seed
        self.lock = threading.RLock()
        self.audiences: dict[str, Audience] = {}
        self.campaigns: dict[str, CampaignState] = {}
        self.feeds: dict[tuple[str, str], list[FeedItem]] = {}
        self.stores: dict[str, dict[str, Any]] = {}
        self.orders: list[Order] = []
        self.carts: list[Cart] = []
        self.batches: dict[str, Batch] = {}
        self.tag_ids: dict[str, int] = {}
        self.person_hashes: dict[str, str] = {}  # world person id -> subscriber hash
        # called with (audience, member) after an API write to a member (sandbox.webhooks: the
        # ``profile`` webhook it causes when the webhook's ``sources.api`` is on)
        self.on_member_write: Any = None
        self.synced_tag_writes = 0  # tag writes with is_syncing (automations do not fire, §6)
        self.automation_tag_writes = 0  # tag writes that would have fired tag automations
        self._web_ids = 100_000

    # --- ids and time ---

    def next_web_id(self) -> int:
        self._web_ids += 1
        return self._web_ids

    def tag_id(self, name: str) -> int:
        if name not in self.tag_ids:
            self.tag_ids[name] = 10_000 + len(self.tag_ids) + 1
        return self.tag_ids[name]

    def stamp(self) -> datetime:
        """The time of a write: the sandbox clock, nudged so successive writes are ordered."""
        return self.clock.tick(0.001)

    # --- members ---

    def new_member(self, audience: Audience, email: str, status: str, at: datetime) -> Member:
        key = subscriber_hash(email)
        member = Member(
            email=email,
            status=status,
            contact_id=short_id(f"contact:{self.seed}:{audience.id}:{key}", 32),
            unique_email_id=short_id(f"unique:{self.seed}:{audience.id}:{key}", 10),
            web_id=self.next_web_id(),
            last_changed=at,
            timestamp_opt=at if status == "subscribed" else None,
        )
        audience.members[key] = member
        return member

    def set_tags(self, member: Member, changes: list[tuple[str, bool]], at: datetime) -> bool:
        """§6: only the named tags change; an unknown active tag is created. True when any changed."""
        changed = False
        for name, active in changes:
            if active and name not in member.tags:
                member.tags[name] = (self.tag_id(name), at)
                changed = True
            elif not active and name in member.tags:
                del member.tags[name]
                changed = True
        return changed

    def campaign_count(self, list_id: str) -> tuple[int, datetime | None]:
        sent = [c.send_time for c in self.campaigns.values() if c.list_id == list_id]
        return len(sent), max(sent) if sent else None
