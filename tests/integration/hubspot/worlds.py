"""Small hand-made worlds for HubSpot tests (the generator makes the big ones)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from leadsync.connectors.records import EventType, Platform
from leadsync.sandbox.world.model import Campaign, Event, Person, World

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def person(i: int, *, platforms: tuple[Platform, ...] = (Platform.HUBSPOT,)) -> Person:
    created = NOW - timedelta(days=60, minutes=i)
    return Person(
        id=f"p{i}",
        email=f"person{i}@acme{i % 3}.io",
        first_name=f"First{i}",
        last_name=f"Last{i}",
        job_title="VP Finance" if i % 2 else "Engineer",
        seniority="vp" if i % 2 else "individual",
        company=f"Acme {i % 3}",
        industry="manufacturing",
        company_size=100 + i,
        country="US",
        created_at=created,
        updated_at=created,
        platforms=list(platforms),
    )


def tiny_world(n: int = 6) -> World:
    persons = [person(i) for i in range(1, n + 1)]
    campaign = Campaign(
        "hs-may-newsletter",
        Platform.HUBSPOT,
        "May newsletter",
        "News for May",
        NOW - timedelta(days=10),
        ["https://example.com/pricing"],
    )
    events: list[Event] = []
    k = 0

    def ev(p: Person, kind: EventType, at: datetime, **kw: object) -> None:
        nonlocal k
        k += 1
        events.append(Event(f"e{k}", p.id, Platform.HUBSPOT, kind, at, **kw))  # type: ignore[arg-type]

    t = NOW - timedelta(days=10)
    for i, p in enumerate(persons):
        ev(p, EventType.EMAIL_SENT, t, campaign=campaign.id)
        ev(p, EventType.EMAIL_OPEN, t + timedelta(minutes=5 + i), campaign=campaign.id, machine=(i == 0))
        if i % 2 == 0:
            ev(
                p,
                EventType.EMAIL_CLICK,
                t + timedelta(minutes=30 + i),
                campaign=campaign.id,
                url="https://example.com/pricing",
            )
            ev(p, EventType.PAGE_VIEW, t + timedelta(minutes=31 + i), url="https://example.com/pricing")
            ev(p, EventType.PAGE_VIEW, t + timedelta(minutes=33 + i), url="https://example.com/demo")
        if i % 3 == 0:
            ev(p, EventType.FORM_SUBMIT, t + timedelta(hours=2, minutes=i), properties={"form": "Contact us"})
    ev(persons[1], EventType.EMAIL_BOUNCE, t + timedelta(days=1), campaign=campaign.id)
    ev(persons[2], EventType.EMAIL_UNSUBSCRIBE, t + timedelta(days=2), campaign=campaign.id)
    ev(persons[3], EventType.DEAL_WON, t + timedelta(days=3), properties={"amount": 12000})
    return World(
        seed=None,
        start=NOW - timedelta(days=90),
        now=NOW,
        persons=persons,
        campaigns=[campaign],
        events=events,
    )
