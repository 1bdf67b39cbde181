"""A generated world written straight into a store through ``sync.ingest`` (no HTTP).

For tests that need hundreds of outcomes: pulling a world of that size through the emulators takes
minutes, while the store rows are the same kind of records the connectors yield (one identity per
person and platform, its events, HubSpot's lifecycle ``customer`` with its date on a won deal).
The real pull is exercised by the smaller backtest test.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any

from leadsync.connectors.base import PullBatch
from leadsync.connectors.records import ContactRecord, EventRecord, EventType, Platform
from leadsync.sandbox.world import World
from leadsync.sync.ingest import ingest_batch
from leadsync.sync.store import make_engine

PAGE = 2_000


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def write_world(world: World, db: Path, *, now: datetime) -> Any:
    engine = make_engine(f"sqlite:///{db}")
    contacts: dict[str, list[ContactRecord]] = defaultdict(list)
    events: dict[str, list[EventRecord]] = defaultdict(list)
    won: dict[str, datetime] = {}
    for event in world.iter_events():
        platform = event.platform.value
        if event.type is EventType.DEAL_WON and event.platform is Platform.HUBSPOT:
            won[event.person] = min(won.get(event.person, event.at), event.at)
        events[platform].append(
            EventRecord(
                source=platform,
                platform=event.platform,
                source_id=event.id,
                type=event.type,
                occurred_at=event.at,
                remote_contact_id=f"{platform}-{event.person}",
                properties={
                    **(event.properties or {}),
                    **({"url": event.url} if event.url else {}),
                    **({"campaign": event.campaign} if event.campaign else {}),
                    **({"machine": True} if event.machine else {}),
                },
            )
        )
    for person in world.persons:
        for platform in person.platforms:
            name = Platform(platform).value
            customer = name == "hubspot" and person.id in won
            contacts[name].append(
                ContactRecord(
                    source=name,
                    platform=Platform(platform),
                    remote_id=f"{name}-{person.id}",
                    email=person.email_on(platform).strip().lower(),
                    first_name=person.first_name,
                    last_name=person.last_name,
                    job_title=person.job_title,
                    seniority=person.seniority,
                    company=person.company,
                    industry=person.industry,
                    company_size=person.company_size,
                    country=person.country,
                    lifecycle_stage="customer" if customer else "subscriber",
                    created_at=person.created_at,
                    updated_at=person.updated_at,
                    raw={"hs_lifecyclestage_customer_date": _iso(won[person.id])} if customer else {},
                )
            )
    for source, records in contacts.items():
        for start in range(0, len(records), PAGE):
            ingest_batch(
                engine, PullBatch("contacts", contacts=records[start : start + PAGE]), source=source, now=now
            )
    for source, records in events.items():
        for start in range(0, len(records), PAGE):
            ingest_batch(
                engine, PullBatch("events", events=records[start : start + PAGE]), source=source, now=now
            )
    return engine
