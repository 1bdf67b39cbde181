"""The cursor committed with a batch is the one the connector handed over with it, even when the
connector, reading the next page ahead, changes what that cursor refers to before the batch is
stored (HubSpot's contacts cursor shares its per-contact counters with the next page's reading:
a worker killed after such a commit lost the next page's page-view and form events for good)."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest

from leadsync.config.settings import LeadsyncConfig
from leadsync.connectors.base import PullBatch
from leadsync.connectors.records import EventRecord, EventType, Platform
from leadsync.sync import pipeline
from leadsync.sync.ingest import ingest_batch
from leadsync.sync.store import make_engine
from tests.unit.foundation.pullstub import PullOnlyConnector

CONFIG = LeadsyncConfig.model_validate(
    {
        "sources": [
            {
                "name": "hs",
                "platform": "hubspot",
                "base_url": "http://127.0.0.1:9",
                "inline_secrets": {"token": "pat-na1-x"},
            }
        ]
    }
)


class _SharedCounters(PullOnlyConnector):
    """Two pages; each page's cursor is the same ``counts`` dict, which the next page's reading
    changes (as ``_pull_contacts`` does with its per-contact page-view and form counters)."""

    platform = Platform.HUBSPOT

    def __init__(self, settings: Any, read_on: threading.Event) -> None:
        super().__init__(settings)
        self.read_on = read_on

    def streams(self) -> Sequence[str]:
        return ("contacts",)

    def pull(self, stream: str, cursor: Any, *, full: bool = False) -> Iterator[PullBatch]:
        counts: dict[str, list[int]] = {}
        for page in range(2):
            counts[f"c{page}"] = [page + 1]
            if page:
                self.read_on.set()  # the next page is read while the one before is being stored
            event = EventRecord(
                source="hs",
                platform=Platform.HUBSPOT,
                source_id=f"pv:c{page}:1",
                type=EventType.PAGE_VIEW,
                occurred_at=datetime(2026, 12, 1, tzinfo=UTC),
                remote_contact_id=f"c{page}",
                properties={},
            )
            yield PullBatch(stream, events=[event], cursor={"counts": counts})


@pytest.fixture
def engine(store_url):  # noqa: ANN001, ANN201
    engine = make_engine(store_url)
    yield engine
    engine.dispose()


def test_a_pull_killed_after_its_first_page_resumes_from_that_page_cursor_alone(engine) -> None:
    read_on = threading.Event()
    connector = _SharedCounters(pipeline.resolve_source(CONFIG, CONFIG.sources[0]), read_on)
    stored: list[Any] = []

    def ingest(engine: Any, batch: PullBatch, **kwargs: Any) -> Any:
        if stored:
            raise RuntimeError("killed before the second page was stored")
        assert read_on.wait(10), "the connector did not read the next page ahead"
        stored.append(batch.cursor)
        return ingest_batch(engine, batch, **kwargs)

    with pytest.raises(RuntimeError, match="killed"):
        for _ in pipeline.pull_stream(engine, connector, "hs", "contacts", ingest=ingest):
            pass
    # only the first page's contact is counted: the retried pull reads the second page's events again
    assert pipeline.load_cursor(engine, "hs", "contacts") == {"counts": {"c0": [1]}}
    assert stored == [{"counts": {"c0": [1]}}]


def test_a_cursor_that_is_not_json_fails_the_batch_it_came_with() -> None:
    batches = iter([PullBatch("contacts", cursor={"since": object()})])
    with pytest.raises(TypeError):
        next(pipeline.as_handed_over(batches))
