"""Re-scoring in worker processes gives what one process gives, and its merge of parts read apart."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from sqlalchemy import select

from leadsync.config.scoring_model import load_model
from leadsync.connectors.base import PullBatch
from leadsync.connectors.records import ContactRecord, EventRecord, EventType, Platform
from leadsync.scoring import EventColumns
from leadsync.sync.ingest import ingest_batch
from leadsync.sync.rescore import rescore
from leadsync.sync.rescore_workers import _context, id_ranges, merge_event_parts, worker_count
from leadsync.sync.store import make_engine
from leadsync.sync.store.models import ChangedPerson, Score
from tests.stores import new_store_url

NOW = datetime(2026, 11, 1, tzinfo=UTC)
KINDS = [EventType.EMAIL_OPEN, EventType.EMAIL_CLICK, EventType.PAGE_VIEW, EventType.FORM_SUBMIT]
TITLES = ["CEO", "VP Marketing", "Software Engineer", None]


def _store(url, persons: int = 120):  # noqa: ANN001, ANN202
    engine = make_engine(url)
    contacts = [
        ContactRecord(
            source="hs",
            platform=Platform.HUBSPOT,
            remote_id=str(i),
            email=f"p{i}@acme.io",
            job_title=TITLES[i % len(TITLES)],
            company_size=10 * (i % 7),
        )
        for i in range(persons)
    ]
    events = [
        EventRecord(
            source="hs",
            platform=Platform.HUBSPOT,
            source_id=f"e{n}",
            type=KINDS[n % len(KINDS)],
            occurred_at=NOW - timedelta(days=n % 40, minutes=n),
            remote_contact_id=str((n * 7) % persons),
            properties={"url": f"https://acme.io/p{n % 5}", "campaign": f"c{n % 3}"},
        )
        for n in range(persons * 15)
    ]
    ingest_batch(engine, PullBatch("contacts", contacts=contacts), source="hs", now=NOW)
    ingest_batch(engine, PullBatch("events", events=events), source="hs", now=NOW)
    return engine


def _scores(engine) -> list[tuple]:  # noqa: ANN001
    with engine.connect() as connection:
        rows = connection.execute(select(Score).order_by(Score.person_id)).all()
    return [tuple(row) for row in rows]


def test_two_worker_processes_write_the_same_scores_and_clear_the_same_marks_as_one(
    tmp_path, store_kind, postgres_session
):
    one = _store(new_store_url(store_kind, tmp_path / "one", postgres_session))
    two = _store(new_store_url(store_kind, tmp_path / "two", postgres_session))
    counted = []
    rescore(one, load_model("default"), now=NOW, workers=1)
    counts = rescore(two, load_model("default"), now=NOW, workers=2, progress=counted.append)
    assert counts.scored == sum(counted) == 120
    assert counts.worker_peak_rss_mb > 0  # the workers reported in
    assert _scores(two) == _scores(one) and len(_scores(one)) == 120
    for engine in (one, two):
        with engine.connect() as connection:
            assert connection.execute(select(ChangedPerson)).all() == []
        engine.dispose()


def test_an_in_memory_store_is_always_scored_in_process(tmp_path):
    memory = make_engine("sqlite://")
    assert worker_count(memory, 1_000_000, None) == 1
    assert worker_count(memory, 10, 4) == 1
    on_disk = make_engine(f"sqlite:///{tmp_path / 'store.db'}")
    assert worker_count(on_disk, 10, None) == 1
    assert worker_count(on_disk, 10, 3) == 3


@pytest.mark.parametrize(
    ("low", "high", "parts", "expected"),
    [
        (1, 10, 2, [(1, 5), (6, 10)]),
        (1, 10, 3, [(1, 3), (4, 6), (7, 10)]),
        (5, 5, 4, [(5, 5)]),
        (1, 3, 1, [(1, 3)]),
    ],
)
def test_id_ranges_cover_every_id_once(low, high, parts, expected):
    assert id_ranges(low, high, parts) == expected


def _part(person, campaign, url, urls, campaigns):  # noqa: ANN001, ANN202
    n = len(person)
    columns = EventColumns(
        person=np.array(person, dtype=np.int32),
        kind=np.zeros(n, np.int8),
        at=np.arange(n, dtype=np.float64),
        campaign=np.array(campaign, dtype=np.int32),
        url=np.array(url, dtype=np.int32),
        flags=np.zeros(n, np.uint8),
        urls=tuple(urls),
    )
    return columns, tuple(campaigns)


def test_merged_parts_are_sorted_by_person_with_one_numbering_of_campaigns_and_urls():
    first = _part([0, 2], [0, -1], [-1, 0], ["https://a"], ["spring"])
    second = _part([1, 2], [0, 1], [0, 1], ["https://b", "https://a"], ["autumn", "spring"])
    merged = merge_event_parts([first, second])
    assert merged.person.tolist() == [0, 1, 2, 2]
    # held narrow while a re-score holds every event; each batch's slice is int64, as scoring expects
    assert {merged.person.dtype, merged.campaign.dtype, merged.url.dtype} == {np.dtype(np.int32)}
    batch = merged.person_range(1, 3)
    assert batch.person.tolist() == [0, 1, 1]
    assert {batch.person.dtype, batch.campaign.dtype, batch.url.dtype} == {np.dtype(np.int64)}
    assert merged.at.tolist() == [0.0, 0.0, 1.0, 1.0]  # stable: person 2's first-part event first
    names = ("spring", "autumn")
    assert [names[c] if c >= 0 else None for c in merged.campaign.tolist()] == [
        "spring",
        "autumn",
        None,
        "spring",
    ]
    assert [merged.urls[u] if u >= 0 else None for u in merged.url.tolist()] == [
        None,
        "https://b",
        "https://a",
        "https://a",
    ]


def test_with_another_thread_alive_workers_come_from_a_fork_server_and_score_the_same(
    tmp_path, store_kind, postgres_session
):
    # a fork with other threads alive would copy locks they may hold (the CLI's progress bar, the
    # daemon's scheduler): a fork server forks the workers instead
    one = _store(new_store_url(store_kind, tmp_path / "one", postgres_session))
    two = _store(new_store_url(store_kind, tmp_path / "two", postgres_session))
    rescore(one, load_model("default"), now=NOW, workers=1)
    release = threading.Event()
    alive = threading.Thread(target=release.wait, daemon=True)
    alive.start()
    try:
        assert _context().get_start_method() == "forkserver"
        counts = rescore(two, load_model("default"), now=NOW, workers=2)
    finally:
        release.set()
        alive.join()
    assert counts.scored == 120 and counts.worker_peak_rss_mb > 0
    assert _scores(two) == _scores(one)
    for engine in (one, two):
        engine.dispose()
