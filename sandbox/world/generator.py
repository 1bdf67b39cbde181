"""The deterministic world generator: a coherent customer base and what it did.

``generate_world(contacts, seed)`` draws people (personas with fit, intent and a buying-stage
progression kept hidden), puts each on one to three platforms, and simulates ``days`` of
engagement before ``now``: the campaigns each platform sent and how each person answered them, site
visits, forms, meetings (with their outcome), sales calls, trials, carts, purchases and won deals. ``extend_world`` continues the same
process past ``world.now`` and ``apply_delta`` merges the result in (the sandbox's "advance the
clock with new activity" admin endpoint).

How behaviour is driven:

* Buying stage moves awareness → investigation → decision → action as a continuous-time process:
  the hazard of moving on grows with intent (and, past investigation, with fit); interest can go
  cold (back to awareness); only decision-stage people who fit convert.
* Engagement at any moment follows the stage: deeper stages read and click more email, visit
  more, and visit pricing/demo/compare pages; entering decision brings demo requests, meetings,
  sales calls, trials and abandoned carts; entering action brings the purchase or the won deal.
* Meetings end completed, no-show, cancelled or rescheduled (the keener the person, the likelier
  completed); sellers call hand-raisers, and cold-call some who fit, and not every call connects.
* Machines: a quarter of people read mail in a client that pre-fetches images (an open one to
  three seconds after every delivery, ``machine: true``); a few sit behind a security gateway
  that clicks every link within seconds.

Determinism: every person draws from their own ``random.Random`` seeded by (seed, person number),
campaigns from one seeded by (seed, platform, week), so the same seed gives the same world byte
for byte, on any machine and any day (``now`` defaults to a constant). Meeting outcomes and calls
draw from generators of their own (seeded by the person and the moment), so adding them left every
other draw of a world as it was.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import accumulate
from operator import itemgetter
from typing import Any, NamedTuple

from leadsync.connectors.records import EventType, Platform, normalise_email
from leadsync.sandbox.world.model import (
    Campaign,
    Event,
    Hidden,
    Person,
    Stage,
    StageChange,
    World,
    format_time,
    pause_gc,
)
from leadsync.sandbox.world.personas import (
    IDEAL_INDUSTRIES,
    UTC_OFFSET_HOURS,
    Company,
    ascii_fold,
    case_variant,
    company_for_index,
    draw_profile,
    email_kind_of,
    function_of_title,
    persona_fit,
    persona_of,
    promotion,
)

__all__ = [
    "DEFAULT_NOW",
    "PLATFORM_EVENT_TYPES",
    "SITE",
    "PersonChange",
    "PersonStageChange",
    "WorldDelta",
    "apply_delta",
    "campaigns_between",
    "extend_world",
    "generate_world",
]

DEFAULT_NOW = datetime(2026, 11, 1, tzinfo=UTC)
SITE = "https://www.example.com"
DAY = 86_400
HOUR = 3_600

E = EventType
HUBSPOT, MAILCHIMP, ACTIVECAMPAIGN = Platform.HUBSPOT, Platform.MAILCHIMP, Platform.ACTIVECAMPAIGN

# What each platform can really tell a connector about a person (docs/platforms fact sheets):
PLATFORM_EVENT_TYPES: dict[Platform, frozenset[EventType]] = {
    # hubspot.md §4.1 legacy email events (SENT, OPEN, CLICK, BOUNCE, SPAMREPORT, STATUSCHANGE for
    # unsubscribes); §4.3 page-view counters and form conversions (num_conversion_events), of which
    # gated downloads and demo requests are named forms; §4.4 meetings and calls; deals
    # (num_associated_deals).
    HUBSPOT: frozenset(
        {
            E.EMAIL_SENT,
            E.EMAIL_OPEN,
            E.EMAIL_CLICK,
            E.EMAIL_BOUNCE,
            E.EMAIL_UNSUBSCRIBE,
            E.EMAIL_SPAM_REPORT,
            E.PAGE_VIEW,
            E.FORM_SUBMIT,
            E.CONTENT_DOWNLOAD,
            E.DEMO_REQUEST,
            E.MEETING_BOOKED,
            E.CALL,
            E.DEAL_WON,
        }
    ),
    # mailchimp.md §7: campaign email activity (open, click, bounce), member activity (sent, unsub,
    # abuse), e-commerce orders and carts. No web visits.
    MAILCHIMP: frozenset(
        {
            E.EMAIL_SENT,
            E.EMAIL_OPEN,
            E.EMAIL_CLICK,
            E.EMAIL_BOUNCE,
            E.EMAIL_UNSUBSCRIBE,
            E.EMAIL_SPAM_REPORT,
            E.PURCHASE,
            E.CART_ABANDONED,
        }
    ),
    # activecampaign.md §5: campaign activity (sent, open, click, bounce, unsubscribe; no spam
    # report per contact), event tracking read back as trackingLogs (webinars, trials), deals.
    # Site-tracking visits have no documented read endpoint, so no page views here.
    ACTIVECAMPAIGN: frozenset(
        {
            E.EMAIL_SENT,
            E.EMAIL_OPEN,
            E.EMAIL_CLICK,
            E.EMAIL_BOUNCE,
            E.EMAIL_UNSUBSCRIBE,
            E.WEBINAR_ATTENDED,
            E.TRIAL_STARTED,
            E.DEAL_WON,
        }
    ),
}

# --- the website ------------------------------------------------------------------------------

_BLOG = tuple(
    f"{SITE}/blog/{slug}"
    for slug in (
        "lead-scoring-101", "mql-vs-sql", "apple-mpp-and-open-rates", "buying-stages-explained",
        "intent-data-for-b2b", "sync-hubspot-and-mailchimp", "engagement-decay", "marketing-ops-checklist",
        "revops-metrics-that-matter", "abm-starter-guide", "email-bot-clicks", "lifecycle-stages-done-right",
        "sales-and-marketing-alignment", "scoring-model-templates", "crm-data-hygiene",
    )
)  # fmt: skip
_PRODUCT = tuple(
    f"{SITE}/{path}"
    for path in (
        "product", "product/scoring", "product/sync", "product/writeback", "product/explanations",
        "integrations/hubspot", "integrations/mailchimp", "integrations/activecampaign",
    )
)  # fmt: skip
_DOCS = tuple(
    f"{SITE}/{path}"
    for path in (
        "docs", "docs/getting-started", "docs/scoring-model", "docs/connectors/hubspot",
        "docs/connectors/mailchimp", "docs/connectors/activecampaign", "docs/api", "docs/self-hosting",
    )
)  # fmt: skip
_CUSTOMERS = tuple(
    f"{SITE}/{path}"
    for path in (
        "customers",
        "customers/northwind",
        "customers/bluefin",
        "customers/granite-capital",
        "customers/apex",
    )
)
_COMPARE = tuple(
    f"{SITE}/compare/{slug}" for slug in ("scorewise", "leadpulse", "funnelforge", "spreadsheets")
)
_CAREERS = tuple(
    f"{SITE}/{path}"
    for path in (
        "careers",
        "careers/account-executive",
        "careers/software-engineer",
        "careers/marketing-intern",
    )
)
_WEBINARS = tuple(
    f"{SITE}/webinars/{slug}" for slug in ("scoring-in-practice", "mpp-proof-engagement", "revops-roundtable")
)
_RESOURCES = tuple(
    f"{SITE}/resources/{slug}"
    for slug in (
        "lead-scoring-playbook",
        "state-of-revops-2026",
        "buying-stage-worksheet",
        "mpp-survival-guide",
    )
)
PRICING, DEMO, CONTACT_SALES = f"{SITE}/pricing", f"{SITE}/demo", f"{SITE}/contact-sales"
_PAGES: dict[str, tuple[str, ...]] = {
    "home": (f"{SITE}/",),
    "about": (f"{SITE}/about",),
    "blog": _BLOG,
    "product": _PRODUCT,
    "docs": _DOCS,
    "customers": _CUSTOMERS,
    "careers": _CAREERS,
    "webinars": _WEBINARS,
    "pricing": (PRICING,),
    "demo": (DEMO,),
    "compare": _COMPARE,
    "security": (f"{SITE}/security",),
    "roi": (f"{SITE}/roi-calculator",),
}
# Which pages people look at in each stage (scoring-research.md §3.2: blog in awareness; product,
# case studies, docs in investigation; pricing, demo, comparisons in decision).
_PAGE_MIX: dict[Stage, dict[str, float]] = {
    Stage.AWARENESS: {"blog": 55, "home": 18, "product": 12, "about": 5, "careers": 5, "customers": 3, "webinars": 2},
    Stage.INVESTIGATION: {"blog": 18, "product": 28, "docs": 12, "customers": 15, "webinars": 7, "home": 6,
                          "pricing": 6, "compare": 4, "about": 4},
    Stage.DECISION: {"pricing": 26, "demo": 8, "compare": 12, "security": 8, "product": 15, "customers": 10,
                     "docs": 9, "roi": 6, "blog": 6},
    Stage.ACTION: {"docs": 60, "product": 15, "blog": 10, "home": 10, "pricing": 5},
}  # fmt: skip
# Competitors' staff study the pricing and comparison pages whatever their "stage"; students the jobs.
_PERSONA_PAGE_MIX: dict[str, dict[str, float]] = {
    "competitor": {"pricing": 30, "compare": 20, "product": 25, "docs": 10, "blog": 10, "customers": 5},
    "student": {"blog": 50, "careers": 35, "home": 10, "about": 5},
}


def _mix(weights: dict[str, float]) -> tuple[tuple[str, ...], tuple[float, ...]]:
    return tuple(weights), tuple(accumulate(weights.values()))


_STAGE_PAGE_CHOICES = {stage: _mix(weights) for stage, weights in _PAGE_MIX.items()}
_PERSONA_PAGE_CHOICES = {persona: _mix(weights) for persona, weights in _PERSONA_PAGE_MIX.items()}
# Local hour of human activity: office hours with a tail into the evening.
_HOUR_CUM = tuple(
    accumulate((1, 1, 1, 1, 1, 2, 4, 8, 14, 16, 16, 14, 10, 13, 15, 14, 12, 9, 6, 5, 5, 4, 3, 2))
)

# --- campaigns --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Cadence:
    """A recurring send: on ``weekday`` (0 = Monday) at ``hour`` UTC, in a share ``chance`` of weeks."""

    topic: str
    weekday: int
    hour: int
    chance: float
    audience: float  # share of the platform's reachable contacts who get it


_CADENCES: dict[Platform, tuple[_Cadence, ...]] = {
    HUBSPOT: (
        _Cadence("newsletter", 3, 14, 1.0, 0.9),
        _Cadence("product-update", 1, 15, 0.6, 0.7),
        _Cadence("nurture", 2, 10, 0.5, 0.45),
        _Cadence("webinar-invite", 0, 16, 0.25, 0.6),
    ),
    MAILCHIMP: (
        _Cadence("newsletter", 1, 9, 1.0, 0.95),
        _Cadence("digest", 3, 8, 0.4, 0.9),
        _Cadence("promo", 4, 13, 0.3, 0.8),
    ),
    # Fortnightly on average: ActiveCampaign's 5 requests/s makes its email activity the slowest
    # stream of every test pull, and a fortnightly nurture track is as common as a weekly one.
    ACTIVECAMPAIGN: (
        _Cadence("nurture", 2, 11, 0.5, 0.8),
        _Cadence("announcement", 0, 12, 0.3, 0.9),
        _Cadence("event-invite", 3, 16, 0.25, 0.7),
    ),
}
_AUDIENCE = {(platform, c.topic): c.audience for platform, cadences in _CADENCES.items() for c in cadences}
_PREFIX = {HUBSPOT: "hs", MAILCHIMP: "mc", ACTIVECAMPAIGN: "ac"}
_SUBJECTS: dict[str, tuple[str, ...]] = {
    "newsletter": ("This week in revenue ops", "Is your MQL lying to you?", "5 scoring rules to delete today",
                   "What Apple MPP did to your open rate", "The buying-stage cheat sheet", "Inside a 3-person RevOps team"),
    "digest": ("Your monthly reading list", "Best of the blog", "What RevOps teams read this month"),
    "promo": ("Annual plans: two months free", "Your trial, extended", "Last chance: founding-customer pricing"),
    "product-update": ("New: explanations for every score", "Write-back to ActiveCampaign is here",
                       "Faster syncs, fewer API calls", "Score history, now in your CRM"),
    "nurture": ("How Northwind doubled SQLs", "A scoring model you can explain", "Still scoring by hand?",
                "Pricing that grows with you"),
    "webinar-invite": ("Live: scoring in practice", "Webinar: MPP-proof engagement", "Join our RevOps roundtable"),
    "announcement": ("Meet the new leadsync", "We are now SOC 2 Type II", "Introducing buying stages"),
    "event-invite": ("See you at the RevOps summit?", "Workshop seats are open", "Live demo this Thursday"),
}  # fmt: skip


def _campaign_links(rng: random.Random, topic: str) -> list[str]:
    if topic in ("newsletter", "digest"):
        return [*rng.sample(_BLOG, 3), rng.choice(_PRODUCT)]
    if topic == "promo":
        return [PRICING, rng.choice(_PRODUCT)]
    if topic == "product-update":
        return [*rng.sample(_PRODUCT, 2), rng.choice(_DOCS)]
    if topic == "nurture":
        links = [rng.choice(_CUSTOMERS[1:]), rng.choice(_PRODUCT)]
        return [*links, PRICING] if rng.random() < 0.4 else links
    if topic in ("webinar-invite", "event-invite"):
        return [rng.choice(_WEBINARS)]
    return [rng.choice(_PRODUCT), rng.choice(_BLOG)]


def campaigns_between(seed: int, platform: Platform, after: datetime, until: datetime) -> list[Campaign]:
    """The campaigns ``platform`` sent in (after, until], by send time.

    Each calendar week is drawn from its own seeded generator, so a week's campaigns are the same
    whichever window asks for them: the schedule continues seamlessly across ``extend_world``.
    """
    first, last = _ts(after), _ts(until)
    monday = _monday_of(first)
    found: list[Campaign] = []
    while monday <= last:
        rng = random.Random(f"{seed}/campaigns/{platform.value}/{monday}")
        for cadence in _CADENCES[platform]:
            used = rng.random() < cadence.chance  # draw for every slot, so weeks never shift
            subject = rng.choice(_SUBJECTS[cadence.topic])
            links = _campaign_links(rng, cadence.topic)
            sent = monday + cadence.weekday * DAY + cadence.hour * HOUR
            if used and first < sent <= last:
                sent_at = _dt(sent)
                found.append(
                    Campaign(
                        id=f"{_PREFIX[platform]}-{sent_at:%Y%m%d}-{cadence.topic}",
                        platform=platform,
                        name=f"{cadence.topic.replace('-', ' ').capitalize()} {sent_at:%Y-%m-%d}",
                        subject=subject,
                        sent_at=sent_at,
                        links=links,
                    )
                )
        monday += 7 * DAY
    found.sort(key=lambda c: (c.sent_at, c.id))
    return found


class _Send(NamedTuple):
    """A campaign as the simulation needs it, worked out once for everyone."""

    ts: int
    campaign: str
    audience: float
    links: tuple[str, ...]


def _sends(campaigns: Iterable[Campaign]) -> list[_Send]:
    return [
        _Send(_ts(c.sent_at), c.id, _AUDIENCE.get((c.platform, c.id.split("-", 2)[-1]), 0.8), tuple(c.links))
        for c in campaigns
    ]


# --- time helpers -----------------------------------------------------------------------------


def _ts(moment: datetime) -> int:
    return int(moment.timestamp())


def _dt(ts: int) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def _monday_of(ts: int) -> int:
    day = ts // DAY
    return (day - (day + 3) % 7) * DAY  # 1970-01-01 was a Thursday


def _human_delay(rng: random.Random) -> int:
    """Seconds from delivery to a person reading it: median three hours, a tail of days."""
    return min(6 * DAY, max(30, int(rng.lognormvariate(math.log(3 * HOUR), 1.3))))


def _in_office_hours(ts: int, offset_hours: int, rng: random.Random) -> int:
    """A time on the same local day as ``ts``, at an hour people are awake and working."""
    local_day = (ts + offset_hours * HOUR) // DAY
    hour = rng.choices(range(24), cum_weights=_HOUR_CUM)[0]
    return local_day * DAY + hour * HOUR + rng.randrange(HOUR) - offset_hours * HOUR


def _poisson_times(rng: random.Random, start: int, end: int, per_day: float) -> Iterable[int]:
    """Arrival times of a Poisson process with ``per_day`` events a day on [start, end)."""
    if per_day <= 0:
        return
    t = float(start)
    while True:
        t += rng.expovariate(per_day) * DAY
        if t >= end:
            return
        yield int(t)


# --- hidden truth -----------------------------------------------------------------------------

_NEXT_STAGE = {
    Stage.AWARENESS: Stage.INVESTIGATION,
    Stage.INVESTIGATION: Stage.DECISION,
    Stage.DECISION: Stage.ACTION,
}
_STAGE_DEPTH = {Stage.AWARENESS: 0, Stage.INVESTIGATION: 1, Stage.DECISION: 2, Stage.ACTION: 3}
# Site visits a day in each stage: (base, extra at full intent). Customers come back for the docs.
_VISITS_PER_DAY = {
    Stage.AWARENESS: (0.02, 0.1),
    Stage.INVESTIGATION: (0.12, 0.3),
    Stage.DECISION: (0.25, 0.4),
    Stage.ACTION: (0.06, 0.0),
}


def _stage_rates(stage: Stage, hidden: Hidden) -> tuple[float, float]:
    """(moving on, going cold) hazards per day in ``stage``."""
    fit, intent = hidden.fit, hidden.intent
    if stage is Stage.AWARENESS:
        return 0.0005 + 0.01 * intent, 0.0
    if stage is Stage.INVESTIGATION:
        return 0.002 + 0.03 * intent * (0.3 + 0.7 * fit), 0.006 * (1.0 - intent)
    if stage is Stage.DECISION:
        # Only people who fit buy: a student or a competitor can read the pricing page for ever.
        return 0.025 * fit * fit * (0.3 + 0.7 * intent), 0.012
    return 0.0, 0.0


def _stage_path(
    rng: random.Random, hidden: Hidden, stage: Stage, start: int, end: int
) -> list[tuple[int, Stage]]:
    """The stage changes after ``start`` (in ``stage``) up to ``end``."""
    changes: list[tuple[int, Stage]] = []
    t = start
    while True:
        advance, cool = _stage_rates(stage, hidden)
        total = advance + cool
        if total <= 0:
            return changes
        t += int(rng.expovariate(total) * DAY) + 1
        if t > end:
            return changes
        stage = _NEXT_STAGE[stage] if rng.random() * total < advance else Stage.AWARENESS
        changes.append((t, stage))


def _draw_hidden(rng: random.Random, *, kind: str, fit: float, email_kind: str, size: int | None) -> Hidden:
    if kind == "competitor":
        intent = rng.betavariate(3.0, 2.0)  # they watch us closely
    elif kind == "student":
        intent = rng.betavariate(2.0, 3.0)
    else:
        intent = rng.betavariate(1.3, 3.2)
    engagement = min(0.9, max(0.02, 0.05 + 0.5 * intent + rng.gauss(0.0, 0.12)))
    # Apple Mail Privacy Protection is commoner on personal (iPhone) mail than behind corporate IT.
    machine_opens = rng.random() < (0.35 if email_kind == "freemail" else 0.22)
    return Hidden(
        persona=persona_of(fit, kind),
        fit=fit,
        intent=round(intent, 3),
        email_engagement=round(engagement, 3),
        machine_opens=machine_opens,
        link_scanner=rng.random() < _scanner_chance(email_kind, size),
    )


def _scanner_chance(email_kind: str, size: int | None) -> float:
    """Security gateways that click every link (SafeLinks, Mimecast …) guard larger companies' mail."""
    if email_kind == "freemail":
        return 0.0
    if (size or 0) >= 1000:
        return 0.08
    return 0.03 if (size or 0) >= 200 else 0.01


def _assumed_hidden(person: Person) -> Hidden:
    """Neutral truth for a person without one (a hand-written world), from what is visible."""
    fit = _visible_fit(person)
    return Hidden(persona=persona_of(fit, "general"), fit=fit, intent=0.2, email_engagement=0.2)


def _visible_fit(person: Person) -> float:
    return persona_fit(
        seniority=person.seniority,
        function=function_of_title(person.job_title),
        industry=person.industry,
        size=person.company_size,
        country=person.country,
        email_kind=email_kind_of(person.email),
    )


# --- people -----------------------------------------------------------------------------------


class _Companies:
    """The world's employers: company ``k`` is always the same; the ICP share is found by looking."""

    def __init__(self, seed: int, pool: int) -> None:
        self.seed = seed
        self.pool = max(10, pool)
        self._cache: dict[int, Company] = {}

    def get(self, index: int) -> Company:
        company = self._cache.get(index)
        if company is None:
            company = self._cache[index] = company_for_index(self.seed, index)
        return company

    def pick(self, rng: random.Random, icp: bool) -> Company:
        company = self.get(rng.randrange(self.pool))
        tries = 0
        while icp and not _is_icp(company) and tries < 60:
            company = self.get(rng.randrange(self.pool))
            tries += 1
        return company


def _is_icp(company: Company) -> bool:
    return company.industry in IDEAL_INDUSTRIES and 200 <= company.size <= 5000


_PLATFORM_WEIGHTS = {HUBSPOT: 0.65, MAILCHIMP: 0.55, ACTIVECAMPAIGN: 0.45}


def _draw_platforms(rng: random.Random) -> list[Platform]:
    count = rng.choices((1, 2, 3), weights=(45, 40, 15))[0]
    remaining = dict(_PLATFORM_WEIGHTS)
    chosen: set[Platform] = set()
    for _ in range(count):
        platform = rng.choices(tuple(remaining), weights=tuple(remaining.values()))[0]
        chosen.add(platform)
        del remaining[platform]
    return [p for p in Platform if p in chosen]


def _unique_email(local: str, domain: str, taken: set[str]) -> str:
    email = f"{local}@{domain}"
    suffix = 2
    while normalise_email(email) in taken:
        email = f"{local}{suffix}@{domain}"
        suffix += 1
    taken.add(email.lower())
    return email


def _new_person(
    rng: random.Random,
    person_id: str,
    companies: _Companies,
    taken: set[str],
    created_at: int,
) -> Person:
    profile = draw_profile(rng, companies.pick)
    email = _unique_email(profile.email_local, profile.email_domain, taken)
    platforms = _draw_platforms(rng)
    platform_emails: dict[Platform, str] = {}
    # Same person typed their address differently on another platform's form (identity merges
    # on the trimmed, lower-cased email: DESIGN.md "Identity").
    if len(platforms) > 1 and rng.random() < 0.15:
        platform_emails[rng.choice(platforms[1:])] = case_variant(rng, email)
    hidden = _draw_hidden(
        rng, kind=profile.kind, fit=profile.fit, email_kind=profile.email_kind, size=profile.company_size
    )
    moment = _dt(created_at)
    return Person(
        id=person_id,
        email=email,
        first_name=profile.first_name,
        last_name=profile.last_name,
        job_title=profile.job_title,
        seniority=profile.seniority,
        company=profile.company,
        industry=profile.industry,
        company_size=profile.company_size,
        country=profile.country,
        created_at=moment,
        updated_at=moment,
        platforms=platforms,
        platform_emails=platform_emails,
        hidden=hidden,
    )


def _initial_stage(rng: random.Random, *, joined_in_window: bool) -> Stage:
    # People who sign up during the window partly come in through content or a demo request.
    weights = (78, 17, 5) if joined_in_window else (85, 12, 3)
    return rng.choices((Stage.AWARENESS, Stage.INVESTIGATION, Stage.DECISION), weights=weights)[0]


# --- behaviour --------------------------------------------------------------------------------

# A draft event: (ts, platform, type, campaign, url, machine, properties). Sorted, then numbered.
_Draft = tuple[int, Platform, EventType, str | None, str | None, bool, dict[str, Any] | None]


@dataclass(slots=True)
class _History:
    """What a person's past events imply for the future."""

    mailed: set[Platform] = field(default_factory=set)  # has been sent email there (the address works)
    email_stopped: set[Platform] = field(default_factory=set)  # hard bounce, unsubscribe, spam report
    deals: int = 0
    orders: int = 0
    carts: int = 0
    meetings: int = 0
    calls: int = 0

    @classmethod
    def of(cls, person: Person, events: list[Event]) -> _History:
        history = cls()
        for event in events:  # the first sends come early: stop once every platform has one
            if event.type is E.EMAIL_SENT:
                history.mailed.add(event.platform)
                if len(history.mailed) == len(person.platforms):
                    break
        for event in events:
            kind = event.type
            if kind not in _HISTORY_TYPES:
                continue
            if kind is E.EMAIL_UNSUBSCRIBE or kind is E.EMAIL_SPAM_REPORT:
                history.email_stopped.add(event.platform)
            elif kind is E.EMAIL_BOUNCE:
                if (event.properties or {}).get("bounce") == "hard":
                    history.email_stopped.add(event.platform)
            elif kind is E.DEAL_WON:
                history.deals += 1
            elif kind is E.PURCHASE:
                history.orders += 1
            elif kind is E.CART_ABANDONED:
                history.carts += 1
            elif kind is E.CALL:
                history.calls += 1
            else:
                history.meetings += 1
        return history


_HISTORY_TYPES = frozenset(
    {
        E.EMAIL_UNSUBSCRIBE,
        E.EMAIL_SPAM_REPORT,
        E.EMAIL_BOUNCE,
        E.DEAL_WON,
        E.PURCHASE,
        E.CART_ABANDONED,
        E.MEETING_BOOKED,
        E.CALL,
    }
)


class _Simulation:
    """One person's activity on [start, end]: a small mutable scratchpad, used once."""

    def __init__(
        self,
        rng: random.Random,
        person: Person,
        hidden: Hidden,
        start: int,
        end: int,
        history: _History,
    ) -> None:
        self.rng = rng
        self.person = person
        self.hidden = hidden
        self.start = start
        self.end = end
        self.history = history
        self.on = set(person.platforms)
        self.email_kind = email_kind_of(person.email)
        self.offset = UTC_OFFSET_HOURS.get(person.country or "", 0)
        self.drafts: list[_Draft] = []

    def emit(
        self,
        ts: int,
        platform: Platform,
        kind: EventType,
        *,
        campaign: str | None = None,
        url: str | None = None,
        machine: bool = False,
        properties: dict[str, Any] | None = None,
    ) -> None:
        if self.start <= ts <= self.end and platform in self.on:
            self.drafts.append((ts, platform, kind, campaign, url, machine, properties))

    # --- the whole run ---

    def run(
        self,
        stage: Stage,
        changes: list[tuple[int, Stage]],
        campaigns: dict[Platform, list[_Send]],
        *,
        signup: bool,
    ) -> list[_Draft]:
        segments = self._segments(stage, changes)
        if signup:
            self._signup(stage)
        for platform in self.person.platforms:
            if platform not in self.history.email_stopped:
                self._email(platform, campaigns[platform], [s[0] for s in segments], [s[2] for s in segments])
        for seg_start, seg_end, seg_stage in segments:
            self._web(seg_start, seg_end, seg_stage)
            self._content(seg_start, seg_end, seg_stage)
            self._cold_calls(seg_start, seg_end, seg_stage)
        previous = stage
        for ts, new_stage in changes:
            if new_stage is Stage.DECISION:
                self._decision(ts)
            elif new_stage is Stage.ACTION and previous is Stage.DECISION:
                self._outcome(ts)
            previous = new_stage
        self.drafts.sort(key=itemgetter(0))
        return self.drafts

    def _segments(self, stage: Stage, changes: list[tuple[int, Stage]]) -> list[tuple[int, int, Stage]]:
        segments: list[tuple[int, int, Stage]] = []
        seg_start = self.start
        for ts, new_stage in changes:
            segments.append((seg_start, ts, stage))
            seg_start, stage = ts, new_stage
        segments.append((seg_start, self.end + 1, stage))
        return segments

    # --- email ---

    def _email(
        self,
        platform: Platform,
        sends: list[_Send],
        seg_starts: list[int],
        seg_stages: list[Stage],
    ) -> None:
        rng, hidden = self.rng, self.hidden
        intent, engagement = hidden.intent, hidden.email_engagement
        # A mistyped or dead address hard-bounces on first send and is never mailed again; one that
        # has already been mailed without bouncing is known to work.
        bad_chance = 0.03 if self.email_kind == "freemail" else 0.015
        bad_address = platform not in self.history.mailed and rng.random() < bad_chance
        spam_possible = platform is not ACTIVECAMPAIGN  # activecampaign.md §5: no per-contact spam report
        web_tracked = HUBSPOT in self.on
        segment = 0
        for campaign_ts, cid, audience, links in sends:
            if campaign_ts < self.start or campaign_ts > self.end:
                continue
            if rng.random() >= audience:
                continue
            sent = campaign_ts + rng.randrange(600)  # a send goes out over a few minutes
            self.emit(sent, platform, E.EMAIL_SENT, campaign=cid)
            if bad_address:
                self.emit(
                    sent + rng.randint(2, 30),
                    platform,
                    E.EMAIL_BOUNCE,
                    campaign=cid,
                    properties={"bounce": "hard"},
                )
                return
            if rng.random() < 0.004:
                self.emit(
                    sent + rng.randint(2, 300),
                    platform,
                    E.EMAIL_BOUNCE,
                    campaign=cid,
                    properties={"bounce": "soft"},
                )
                continue
            while segment + 1 < len(seg_starts) and seg_starts[segment + 1] <= sent:
                segment += 1
            depth = _STAGE_DEPTH[seg_stages[segment]]
            if hidden.machine_opens:
                # The client fetches the tracking pixel on delivery (scoring-research.md §5, Apple MPP).
                self.emit(sent + rng.randint(1, 3), platform, E.EMAIL_OPEN, campaign=cid, machine=True)
            if hidden.link_scanner and rng.random() < 0.9:
                # A security gateway follows every link before the person sees the mail. It runs no
                # JavaScript, so the site's tracking code records no page view.
                scan = sent + rng.randint(2, 12)
                for offset, link in enumerate(links):
                    self.emit(scan + offset, platform, E.EMAIL_CLICK, campaign=cid, url=link, machine=True)
            if rng.random() >= min(0.95, engagement * (0.7 + 0.2 * depth)):
                continue
            read = sent + _human_delay(rng)
            # With pre-fetching the pixel is already cached: the person's own reads show no open.
            if not hidden.machine_opens:
                self.emit(read, platform, E.EMAIL_OPEN, campaign=cid)
                if rng.random() < 0.25:
                    self.emit(read + _human_delay(rng), platform, E.EMAIL_OPEN, campaign=cid)
            if links and rng.random() < 0.05 + 0.2 * intent + 0.06 * depth:
                count = 2 if len(links) > 1 and rng.random() < 0.25 else 1
                for link in rng.sample(links, count):
                    click = read + rng.randint(5, 240)
                    self.emit(click, platform, E.EMAIL_CLICK, campaign=cid, url=link)
                    if web_tracked:  # the site's HubSpot tracking code sees the visit
                        self.emit(click + rng.randint(1, 4), HUBSPOT, E.PAGE_VIEW, url=link)
            if rng.random() < 0.004 * (1.0 + 2.0 * (1.0 - intent)) * (1.3 - hidden.fit):
                self.emit(read + rng.randint(5, 120), platform, E.EMAIL_UNSUBSCRIBE, campaign=cid)
                return
            if spam_possible and rng.random() < 0.0004:
                self.emit(read + rng.randint(5, 60), platform, E.EMAIL_SPAM_REPORT, campaign=cid)
                return

    # --- web (HubSpot's tracking code: hubspot.md §4.3 page-view counters) ---

    def _web(self, seg_start: int, seg_end: int, stage: Stage) -> None:
        if HUBSPOT not in self.on:
            return
        rng, hidden = self.rng, self.hidden
        depth = _STAGE_DEPTH[stage]
        base, per_intent = _VISITS_PER_DAY[stage]
        per_day = (base + per_intent * hidden.intent) * (1.5 if hidden.persona == "competitor" else 1.0)
        pages, cum = _PERSONA_PAGE_CHOICES.get(hidden.persona) or _STAGE_PAGE_CHOICES[stage]
        continue_chance = 0.5 if depth == 0 else 0.67
        for arrival in _poisson_times(rng, seg_start, seg_end, per_day):
            t = self._office_time(arrival, seg_start, seg_end)
            while True:
                category = rng.choices(pages, cum_weights=cum)[0]
                self.emit(t, HUBSPOT, E.PAGE_VIEW, url=rng.choice(_PAGES[category]))
                if rng.random() >= continue_chance:
                    break
                t += rng.randint(15, 240)

    def _office_time(self, ts: int, lower: int, upper: int) -> int:
        moved = _in_office_hours(ts, self.offset, self.rng)
        return moved if lower <= moved < upper else ts

    # --- content, webinars (stage-driven, Poisson in time) ---

    def _content(self, seg_start: int, seg_end: int, stage: Stage) -> None:
        rng, intent = self.rng, self.hidden.intent
        depth = _STAGE_DEPTH[stage]
        if HUBSPOT in self.on:
            # Gated content is a HubSpot form conversion (hubspot.md §4.3 num_conversion_events).
            per_day = (0.002, 0.015 + 0.02 * intent, 0.005, 0.001)[depth]
            for arrival in _poisson_times(rng, seg_start, seg_end, per_day):
                self._download(self._office_time(arrival, seg_start, seg_end))
            if depth == 1:
                for arrival in _poisson_times(rng, seg_start, seg_end, 0.005):
                    t = self._office_time(arrival, seg_start, seg_end)
                    page = rng.choice(_WEBINARS)
                    self.emit(t, HUBSPOT, E.PAGE_VIEW, url=page)
                    self.emit(
                        t + rng.randint(30, 300),
                        HUBSPOT,
                        E.FORM_SUBMIT,
                        url=page,
                        properties={"form": "webinar-registration"},
                    )
        if ACTIVECAMPAIGN in self.on and depth in (1, 2):
            # The webinar tool reports attendance through AC event tracking (activecampaign.md §5).
            for arrival in _poisson_times(rng, seg_start, seg_end, 0.006 if depth == 1 else 0.003):
                t = self._office_time(arrival, seg_start, seg_end)
                webinar = rng.choice(_WEBINARS).rsplit("/", 1)[1]
                self.emit(
                    t,
                    ACTIVECAMPAIGN,
                    E.WEBINAR_ATTENDED,
                    properties={"event": "webinar_attended", "webinar": webinar},
                )

    def _download(self, t: int) -> None:
        page = self.rng.choice(_RESOURCES)
        slug = page.rsplit("/", 1)[1]
        self.emit(t, HUBSPOT, E.PAGE_VIEW, url=page)
        self.emit(
            t + self.rng.randint(30, 300),
            HUBSPOT,
            E.CONTENT_DOWNLOAD,
            url=page,
            properties={"form": f"download-{slug}"},
        )

    def _signup(self, stage: Stage) -> None:
        """How a person who joined in the window got into HubSpot: the form they filled in."""
        if HUBSPOT not in self.on:
            return
        t = self.start
        if stage is Stage.DECISION:
            self._demo_request(t)
        elif stage is Stage.INVESTIGATION:
            self._download(t)
        else:
            self.emit(t, HUBSPOT, E.FORM_SUBMIT, url=f"{SITE}/blog", properties={"form": "newsletter-signup"})

    # --- entering decision: hand-raisers ---

    def _decision(self, ts: int) -> None:
        rng, persona = self.rng, self.hidden.persona
        t = self._office_time(ts, ts, ts + DAY)
        if HUBSPOT in self.on:
            if rng.random() < (0.05 if persona == "competitor" else 0.5):
                self._demo_request(t)
            elif rng.random() < 0.2:
                self.emit(t, HUBSPOT, E.PAGE_VIEW, url=CONTACT_SALES)
                self.emit(
                    t + rng.randint(30, 240),
                    HUBSPOT,
                    E.FORM_SUBMIT,
                    url=CONTACT_SALES,
                    properties={"form": "contact-sales"},
                )
                self._follow_up_calls(t + 300)
        if ACTIVECAMPAIGN in self.on and rng.random() < (0.3 if persona == "competitor" else 0.4):
            # The product reports sign-ups through AC event tracking (activecampaign.md §5).
            self.emit(
                t + rng.randint(HOUR, 3 * DAY),
                ACTIVECAMPAIGN,
                E.TRIAL_STARTED,
                properties={"event": "trial_started", "plan": "pro"},
            )
        if MAILCHIMP in self.on and self._self_serve() and rng.random() < 0.35:
            self.history.carts += 1
            self.emit(
                t + rng.randint(HOUR, 5 * DAY),
                MAILCHIMP,
                E.CART_ABANDONED,
                properties={
                    "cart_id": f"{self.person.id}-c{self.history.carts}",
                    "amount": rng.choice(_PLAN_PRICES),
                    "currency": "USD",
                },
            )

    def _demo_request(self, t: int) -> None:
        rng = self.rng
        self.emit(t, HUBSPOT, E.PAGE_VIEW, url=DEMO)
        self.emit(
            t + rng.randint(30, 240), HUBSPOT, E.DEMO_REQUEST, url=DEMO, properties={"form": "demo-request"}
        )
        if rng.random() < 0.7:  # sales books the demo: a HubSpot meeting (hubspot.md §4.4)
            self._meeting(t + rng.randint(DAY, 5 * DAY), "Product demo")
        self._follow_up_calls(t + 240)

    def _meeting(self, t: int, title: str) -> None:
        self.history.meetings += 1
        meeting_id = f"{self.person.id}-m{self.history.meetings}"
        at = self._office_time(t, t - DAY, t + DAY)
        self.emit(
            at,
            HUBSPOT,
            E.MEETING_BOOKED,
            properties={
                "meeting_id": meeting_id,
                "title": title,
                "outcome": self._meeting_outcome(meeting_id, title, at),
            },
        )

    def _meeting_outcome(self, meeting_id: str, title: str, at: int) -> str:
        """What became of the meeting (hubspot.md §4.4 ``hs_meeting_outcome``): keen people turn up."""
        if at > self.end - DAY:
            return "scheduled"  # not held yet, or not logged yet
        draw = random.Random(f"{meeting_id}/outcome/{at}").random()
        held = 0.95 if title == "Proposal review" else 0.45 + 0.45 * self.hidden.intent
        if draw < held:
            return "completed"
        rest = (draw - held) / (1.0 - held)
        return "no_show" if rest < 0.45 else "cancelled" if rest < 0.8 else "rescheduled"

    # --- sales calls (hubspot.md §4.4): follow-ups of hand-raisers, and cold calls ---

    def _call(self, rng: random.Random, t: int, *, connect: float) -> bool:
        """One logged call at ``t``; True when it connected."""
        self.history.calls += 1
        connected = rng.random() < connect
        moved = _in_office_hours(t, self.offset, rng)  # the call's own generator, not the person's
        self.emit(
            moved if t <= moved < t + DAY else t,
            HUBSPOT,
            E.CALL,
            properties={
                "call_id": f"{self.person.id}-k{self.history.calls}",
                "direction": "OUTBOUND",
                "outcome": "completed" if connected else "not_connected",
                "duration_s": rng.randint(240, 2400) if connected else rng.randint(0, 40),
            },
        )
        return connected

    def _follow_up_calls(self, t: int) -> None:
        """A seller calls a hand-raiser within a day or two, and once more if nobody answered."""
        if HUBSPOT not in self.on:
            return
        rng = random.Random(f"{self.person.id}/follow-up/{t}")
        when = t + rng.randint(HOUR, 2 * DAY)
        if not self._call(rng, when, connect=0.45 + 0.4 * self.hidden.intent):
            self._call(rng, when + rng.randint(DAY, 3 * DAY), connect=0.5)

    def _cold_calls(self, seg_start: int, seg_end: int, stage: Stage) -> None:
        """Outbound prospecting: people who look like the buyer persona get the odd call, at any
        stage, and few of them answer."""
        if HUBSPOT not in self.on or self.hidden.fit < 0.5:
            return
        rng = random.Random(f"{self.person.id}/cold-calls/{seg_start}/{seg_end}")
        for arrival in _poisson_times(rng, seg_start, seg_end, 0.004):
            self._call(rng, arrival, connect=0.2 + 0.2 * _STAGE_DEPTH[stage] / 3)

    def _self_serve(self) -> bool:
        size = self.person.company_size
        return size is None or size < 100 or self.email_kind == "freemail"

    # --- entering action: the sale ---

    def _outcome(self, ts: int) -> None:
        """Sales-led buyers close a CRM deal; small teams buy a plan in the shop (Mailchimp e-commerce)."""
        rng, person = self.rng, self.person
        crm = HUBSPOT if HUBSPOT in self.on else ACTIVECAMPAIGN if ACTIVECAMPAIGN in self.on else None
        if crm is not None and (not self._self_serve() or MAILCHIMP not in self.on):
            size = person.company_size or 50
            amount = int(min(250_000, max(3_000, (6_000 + size * rng.uniform(6, 20)))) // 500 * 500)
            if crm is HUBSPOT:
                self._meeting(ts - rng.randint(2 * DAY, 10 * DAY), "Proposal review")
                self._follow_up_calls(ts - 2 * DAY)
            self.history.deals += 1
            self.emit(
                ts,
                crm,
                E.DEAL_WON,
                properties={
                    "deal_id": f"{person.id}-d{self.history.deals}",
                    "amount": amount,
                    "currency": "USD",
                },
            )
        else:
            self.history.orders += 1
            self.emit(
                ts,
                MAILCHIMP,
                E.PURCHASE,
                properties={
                    "order_id": f"{person.id}-o{self.history.orders}",
                    "amount": rng.choice(_PLAN_PRICES),
                    "currency": "USD",
                },
            )


_PLAN_PRICES = (588, 1188, 2388, 4788)  # self-serve annual plans, USD


def _simulate(
    rng: random.Random,
    person: Person,
    hidden: Hidden,
    *,
    stage: Stage,
    start: int,
    end: int,
    campaigns: dict[Platform, list[_Send]],
    history: _History,
    signup: bool,
) -> tuple[list[_Draft], list[tuple[int, Stage]]]:
    changes = _stage_path(rng, hidden, stage, start, end)
    drafts = _Simulation(rng, person, hidden, start, end, history).run(
        stage, changes, campaigns, signup=signup
    )
    return drafts, changes


def _number_events(drafts: list[_Draft], person_id: str, first_number: int) -> list[Event]:
    return [
        Event(f"e{number}", person_id, platform, kind, _dt(ts), campaign, url, machine, properties)
        for number, (ts, platform, kind, campaign, url, machine, properties) in enumerate(
            drafts, start=first_number
        )
    ]


# --- the world --------------------------------------------------------------------------------

_PRIOR_SHARE = 0.55  # of a generated world's people were in the database before the window
_PRIOR_SPAN = 730 * DAY  # and joined up to two years before it
_NEW_PEOPLE_PER_DAY = (1 - _PRIOR_SHARE) / 180  # as a share of the database, to keep the growth rate


def generate_world(contacts: int, seed: int, *, now: datetime = DEFAULT_NOW, days: int = 180) -> World:
    """A world of ``contacts`` people and their last ``days`` of activity before ``now``.

    The same arguments give the same world, byte for byte (``World.dumps``).
    """
    if contacts < 0:
        raise ValueError(f"contacts must be >= 0, got {contacts}")
    if days <= 0:
        raise ValueError(f"days must be > 0, got {days}")
    if now.tzinfo is None:
        raise ValueError("now must be an aware datetime (UTC)")
    now = now.astimezone(UTC).replace(microsecond=0)
    end = _ts(now)
    start = end - days * DAY
    world_start = _dt(start)
    campaigns = {p: campaigns_between(seed, p, world_start, now) for p in Platform}
    timed = {p: _sends(campaigns[p]) for p in Platform}
    companies = _Companies(seed, contacts // 3)
    taken: set[str] = set()
    persons: list[Person] = []
    events: list[Event] = []
    with pause_gc():
        _generate_people(seed, contacts, start, end, timed, companies, taken, persons, events)
    return World(
        seed=seed,
        start=world_start,
        now=now,
        persons=persons,
        campaigns=[c for p in Platform for c in campaigns[p]],
        events=events,
        next_event_number=len(events) + 1,
    )


def _generate_people(
    seed: int,
    contacts: int,
    start: int,
    end: int,
    timed: dict[Platform, list[_Send]],
    companies: _Companies,
    taken: set[str],
    persons: list[Person],
    events: list[Event],
) -> None:
    for index in range(contacts):
        rng = random.Random(f"{seed}/person/{index}")
        joined_before = rng.random() < _PRIOR_SHARE
        created = (
            start - rng.randrange(_PRIOR_SPAN) if joined_before else start + rng.randrange(end - start - HOUR)
        )
        person = _new_person(rng, f"p{index + 1}", companies, taken, created)
        hidden = person.hidden
        assert hidden is not None
        active_from = max(created, start)
        stage = _initial_stage(rng, joined_in_window=not joined_before)
        drafts, changes = _simulate(
            rng, person, hidden, stage=stage, start=active_from, end=end, campaigns=timed,
            history=_History(), signup=not joined_before,
        )  # fmt: skip
        hidden.stages = [StageChange(stage, _dt(active_from))] + [StageChange(s, _dt(t)) for t, s in changes]
        persons.append(person)
        events.extend(_number_events(drafts, person.id, len(events) + 1))


# --- moving on --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PersonChange:
    """At ``at``, ``field`` of person ``person`` became ``value`` on every platform they are on.

    ``field`` is a ``Person`` attribute: ``job_title``, ``seniority``, ``company_size`` or ``email``.
    """

    person: str
    at: datetime
    field: str
    value: Any


@dataclass(frozen=True, slots=True)
class PersonStageChange:
    person: str
    change: StageChange


@dataclass(slots=True)
class WorldDelta:
    """What happened in (``since``, ``until``]: made by ``extend_world``, merged by ``apply_delta``."""

    since: datetime
    until: datetime
    campaigns: list[Campaign] = field(default_factory=list)
    persons: list[Person] = field(default_factory=list)  # people who joined
    changes: list[PersonChange] = field(default_factory=list)
    stage_changes: list[PersonStageChange] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """Counts for the admin endpoint's answer."""
        by_type = Counter(event.type.value for event in self.events)
        return {
            "since": format_time(self.since),
            "until": format_time(self.until),
            "campaigns": len(self.campaigns),
            "new_persons": len(self.persons),
            "changed_persons": len({change.person for change in self.changes}),
            "events": len(self.events),
            "events_by_type": dict(sorted(by_type.items())),
        }


_CHANGE_RATES_PER_DAY = {"promotion": 0.0004, "company_size": 0.0003, "email": 0.0001}


def extend_world(world: World, *, days: float, seed: int | None = None) -> WorldDelta:
    """What happens in the ``days`` after ``world.now``, following each person's hidden state.

    Existing people keep answering campaigns, visiting and moving through their buying stages; a
    few new people join; a few records change (promotions, company growth, a new address).
    Deterministic from (``seed`` or the world's seed, ``world.now``, ``days``). The world is not
    modified: pass the result to ``apply_delta``.
    """
    if days <= 0:
        raise ValueError(f"days must be > 0, got {days}")
    base_seed = (world.seed if seed is None else seed) or 0
    start = _ts(world.now)
    end = start + max(1, round(days * DAY))
    since, until = _dt(start), _dt(end)
    tag = f"{base_seed}/advance/{start}/{end}"
    campaigns = {p: campaigns_between(base_seed, p, since, until) for p in Platform}
    timed = {p: _sends(campaigns[p]) for p in Platform}
    delta = WorldDelta(since=since, until=until, campaigns=[c for p in Platform for c in campaigns[p]])
    next_number = world.next_event_number
    taken = {
        email.lower()
        for person in world.persons
        for email in (person.email, *person.platform_emails.values())
    }

    for index, person in enumerate(world.persons):
        rng = random.Random(f"{tag}/person/{index}")
        hidden = person.hidden or _assumed_hidden(person)
        stage = hidden.stages[-1].stage if hidden.stages else Stage.AWARENESS
        history = _History.of(person, world.events_of(person.id))
        drafts, changes = _simulate(
            rng,
            person,
            hidden,
            stage=stage,
            start=start + 1,
            end=end,
            campaigns=timed,
            history=history,
            signup=False,
        )
        delta.stage_changes.extend(PersonStageChange(person.id, StageChange(s, _dt(t))) for t, s in changes)
        delta.events.extend(_number_events(drafts, person.id, next_number))
        next_number += len(drafts)
        delta.changes.extend(_record_changes(rng, person, start, end, taken))

    companies = _Companies(base_seed, len(world.persons) // 3)
    rng = random.Random(f"{tag}/joiners")
    per_day = max(1.0, len(world.persons) * _NEW_PEOPLE_PER_DAY)
    for number, joined in enumerate(
        _poisson_times(rng, start + 1, end, per_day), start=len(world.persons) + 1
    ):
        person_rng = random.Random(f"{tag}/joiner/{number}")
        person = _new_person(person_rng, f"p{number}", companies, taken, joined)
        hidden = person.hidden
        assert hidden is not None
        stage = _initial_stage(person_rng, joined_in_window=True)
        drafts, changes = _simulate(
            person_rng, person, hidden, stage=stage, start=joined, end=end, campaigns=timed,
            history=_History(), signup=True,
        )  # fmt: skip
        hidden.stages = [StageChange(stage, person.created_at)] + [StageChange(s, _dt(t)) for t, s in changes]
        delta.persons.append(person)
        delta.events.extend(_number_events(drafts, person.id, next_number))
        next_number += len(drafts)
    return delta


def _record_changes(
    rng: random.Random, person: Person, start: int, end: int, taken: set[str]
) -> list[PersonChange]:
    days = (end - start) / DAY
    found: list[PersonChange] = []

    def happens(kind: str) -> int | None:
        if rng.random() < 1.0 - math.exp(-_CHANGE_RATES_PER_DAY[kind] * days):
            return start + 1 + rng.randrange(end - start)
        return None

    if (ts := happens("promotion")) is not None:
        promoted = promotion(rng, person.seniority, function_of_title(person.job_title), person.country)
        if promoted is not None:
            found.append(PersonChange(person.id, _dt(ts), "seniority", promoted[0]))
            found.append(PersonChange(person.id, _dt(ts), "job_title", promoted[1]))
    if (ts := happens("company_size")) is not None and person.company_size:
        grown = int(person.company_size * rng.uniform(1.1, 1.4))
        found.append(PersonChange(person.id, _dt(ts), "company_size", grown))
    if (ts := happens("email")) is not None and email_kind_of(person.email) == "work":
        # IT moved everyone to first.last@ (the platforms keep their record ids: DESIGN.md "Identity").
        local, _, domain = person.email.partition("@")
        first = (person.first_name or local).split()[0]
        last = (person.last_name or "").replace(" ", "")
        wanted = _email_local_from(first, last)
        if wanted and wanted != local.lower():
            found.append(PersonChange(person.id, _dt(ts), "email", _unique_email(wanted, domain, taken)))
    return found


def _email_local_from(first: str, last: str) -> str:
    parts = [ascii_fold(part).replace(" ", "").replace("'", "") for part in (first, last) if part]
    return ".".join(part for part in parts if part)


def apply_delta(world: World, delta: WorldDelta) -> None:
    """Merge ``delta`` into ``world`` and move ``world.now`` to ``delta.until``."""
    if delta.since != world.now:
        raise ValueError(
            f"this delta starts at {format_time(delta.since)} but the world is at {format_time(world.now)}: "
            "make a new one with extend_world"
        )
    world.add_campaigns(delta.campaigns)
    world.add_persons(delta.persons)
    setters: dict[str, Callable[[Person, Any], None]] = {
        "job_title": lambda p, v: setattr(p, "job_title", v),
        "seniority": lambda p, v: setattr(p, "seniority", v),
        "company_size": lambda p, v: setattr(p, "company_size", v),
        "email": _set_email,
    }
    for change in sorted(delta.changes, key=lambda c: c.at):
        person = world.person(change.person)
        setters[change.field](person, change.value)
        person.updated_at = max(person.updated_at, change.at)
    for stage_change in sorted(delta.stage_changes, key=lambda c: c.change.at):
        hidden = world.person(stage_change.person).hidden
        if hidden is not None:
            hidden.stages.append(stage_change.change)
    world.add_events(delta.events)
    world.now = delta.until


def _set_email(person: Person, email: str) -> None:
    person.email = email
    person.platform_emails.clear()  # a new address is typed once, the same everywhere
