"""Issue 20, point 5 in small: three sources ingesting pages of the same persons at once (what the
first sync of an account does, the three pulls side by side) never deadlock. The writers lock the
shared rows in one order (``sync.ingest``'s docstring); a deadlock would be retried and counted, so
the count of retries must stay 0, and every row must be there."""

from __future__ import annotations

import random
import threading
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from leadsync.connectors.base import PullBatch
from leadsync.connectors.records import ContactRecord, EventRecord, EventType, Platform
from leadsync.sync.ingest import IngestCounts, ingest_batch
from leadsync.sync.store import make_engine
from leadsync.sync.store.models import ChangedPerson, Event, Identity, Person

NOW = datetime(2026, 11, 1, tzinfo=UTC)
PERSONS = 600
PAGE = 50
SOURCES = {"hs": Platform.HUBSPOT, "mc": Platform.MAILCHIMP, "ac": Platform.ACTIVECAMPAIGN}


def _pages(source: str, seed: int) -> list[PullBatch]:
    rng = random.Random(seed)
    order = list(range(PERSONS))
    rng.shuffle(order)  # each source meets the persons in its own order
    platform = SOURCES[source]
    pages: list[PullBatch] = []
    for start in range(0, PERSONS, PAGE):
        ids = order[start : start + PAGE]
        contacts = [
            ContactRecord(source=source, platform=platform, remote_id=f"{source}{i}", email=f"p{i}@acme.io")
            for i in ids
        ]
        pages.append(PullBatch("contacts", contacts=contacts, cursor={"page": start}))
    for number in range(PERSONS // PAGE):
        events = [
            EventRecord(
                source=source,
                platform=platform,
                source_id=f"{source}-e{number}-{k}",
                type=EventType.EMAIL_OPEN,
                occurred_at=NOW - timedelta(minutes=k),
                remote_contact_id=f"{source}{rng.randrange(PERSONS)}",
            )
            for k in range(PAGE * 2)
        ]
        pages.append(PullBatch("events", events=events, cursor={"page": number}))
    return pages


def test_three_sources_ingesting_the_same_persons_at_once_never_deadlock(store_url):
    engine = make_engine(store_url)
    totals: dict[str, IngestCounts] = {source: IngestCounts() for source in SOURCES}
    failures: list[BaseException] = []
    start = threading.Barrier(len(SOURCES))

    def pull(source: str, seed: int) -> None:
        try:
            start.wait()
            for page in _pages(source, seed):
                totals[source].add(ingest_batch(engine, page, source=source, now=NOW))
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            failures.append(exc)

    threads = [threading.Thread(target=pull, args=(source, n)) for n, source in enumerate(SOURCES)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert failures == []
    assert sum(total.deadlock_retries for total in totals.values()) == 0
    with engine.connect() as connection:
        count = lambda model: connection.execute(select(func.count()).select_from(model)).scalar_one()  # noqa: E731
        assert count(Person) == PERSONS
        assert count(Identity) == PERSONS * len(SOURCES)
        assert count(Event) == len(SOURCES) * (PERSONS // PAGE) * PAGE * 2
        assert count(ChangedPerson) == PERSONS
    engine.dispose()
