"""A source's streams are pulled side by side: each after the streams it follows, every page
stored, each stream's requests counted on its own, and a failure ends the others between pages."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, select

from leadsync.config.settings import LeadsyncConfig
from leadsync.connectors.base import PullBatch, SourceSettings
from leadsync.connectors.catalog import stream_links, stream_names, stream_order
from leadsync.connectors.errors import ConnectorError
from leadsync.connectors.gates import current as current_gates
from leadsync.connectors.pools import ContextPool
from leadsync.connectors.records import EventRecord, EventType, Platform
from leadsync.connectors.retry import RetryPolicy
from leadsync.sync import pipeline
from leadsync.sync.runs import Step, list_runs
from leadsync.sync.store import make_engine
from leadsync.sync.store.models import Event
from tests.unit.foundation.pullstub import PullOnlyConnector

H, M, A = Platform.HUBSPOT, Platform.MAILCHIMP, Platform.ACTIVECAMPAIGN


@pytest.mark.parametrize(
    ("platform", "selected", "expected"),
    [
        (M, ["members", "email_activity", "orders", "carts"], {"orders": {"members"}, "carts": {"orders"}}),
        # a deselected stream is followed through: carts still wait for the members
        (M, ["members", "email_activity", "carts"], {"carts": {"members"}}),
        (M, ["email_activity", "carts"], {}),
        # email_events only links its records with the contacts' ids: it starts at once (gates)
        (H, ["contacts", "email_events", "meetings", "calls", "deals"], {}),
        (H, ["email_events", "deals"], {}),
        (
            A,
            ["contacts", "activities", "tracking_logs", "deals"],
            {"tracking_logs": {"contacts", "activities"}},
        ),
        (A, ["activities", "tracking_logs"], {"tracking_logs": {"activities"}}),
    ],
)
def test_a_stream_follows_the_selected_streams_it_uses(platform, selected, expected) -> None:
    order = stream_order(platform, selected)
    assert set(order) == set(selected)
    assert {name: set(after) for name, after in order.items() if after} == expected


def test_only_hubspot_email_events_link_with_another_stream() -> None:
    links = {
        (platform, name): stream_links(platform, name)
        for platform in (H, M, A)
        for name in stream_names(platform)
        if stream_links(platform, name)
    }
    assert links == {(H, "email_events"): ("contacts",)}


PAGES = 3
PAGE_S = 0.15


class _Stub(PullOnlyConnector):
    """Mailchimp's streams, each ``PAGES`` pages of one event a page, ``PAGE_S`` apart; every page
    is one request, sent from a pool thread as the real connectors do; ``fail``: a stream that
    raises on its second page."""

    platform = Platform.MAILCHIMP

    def __init__(self, settings: SourceSettings, fail: str | None = None, linker: str | None = None) -> None:
        super().__init__(settings)
        self.policy = RetryPolicy(source=settings.name)
        self.fail = fail
        self.linker = (
            linker  # a stream that, as HubSpot's email events do, links its first page with members'
        )
        self.linked_at: float | None = None
        self.spans: dict[str, list[float]] = {}
        self.pages: dict[str, int] = {}
        self.lock = threading.Lock()

    def streams(self) -> Sequence[str]:
        return ("members", "email_activity", "orders", "carts")

    def _request(self) -> None:
        time.sleep(PAGE_S)
        self.policy.stats.add(attempts=1)

    def pull(self, stream: str, cursor: Any, *, full: bool = False) -> Iterator[PullBatch]:
        self.spans[stream] = [time.monotonic()]
        with ContextPool(max_workers=2) as pool:
            for number in range(PAGES):
                if stream == self.fail and number == 1:
                    raise ConnectorError(f"{stream} failed")
                pool.submit(self._request).result()
                if stream == self.linker and number == 0:
                    current_gates().wait("members")
                    self.linked_at = time.monotonic()
                with self.lock:
                    self.pages[stream] = self.pages.get(stream, 0) + 1
                event = EventRecord(
                    source="mc",
                    platform=Platform.MAILCHIMP,
                    source_id=f"{stream}-{number}",
                    type=EventType.EMAIL_OPEN,
                    occurred_at=datetime(2026, 12, 1, tzinfo=UTC),
                    remote_contact_id=f"c{number}",
                    properties={},
                )
                yield PullBatch(stream, events=[event], cursor={"page": number})
        self.spans[stream].append(time.monotonic())


@pytest.fixture
def engine(store_url):  # noqa: ANN001, ANN201
    engine = make_engine(store_url)
    yield engine
    engine.dispose()


def _pull(
    engine, monkeypatch, fail: str | None = None, linker: str | None = None
) -> tuple[_Stub, pipeline.SourceResult]:  # noqa: ANN001
    config = LeadsyncConfig.model_validate(
        {
            "sources": [
                {
                    "name": "mc",
                    "platform": "mailchimp",
                    "base_url": "http://127.0.0.1:9",
                    "inline_secrets": {"api_key": "k-us1"},
                }
            ]
        }
    )
    made: list[_Stub] = []

    def connector(config: Any, source: Any, environ: Any) -> _Stub:
        made.append(_Stub(pipeline.resolve_source(config, source, environ), fail=fail, linker=linker))
        return made[0]

    monkeypatch.setattr(pipeline, "_connector", connector)
    result = pipeline.pull_source(engine, config, config.sources[0])
    return made[0], result


def test_streams_run_side_by_side_each_after_those_it_follows(engine, monkeypatch) -> None:
    stub, result = _pull(engine, monkeypatch)
    assert result.ok and result.events == 4 * PAGES, result
    spans = stub.spans
    # members and email_activity overlap; orders starts once members ended, carts once orders did
    assert (
        spans["email_activity"][0] < spans["members"][1] and spans["members"][0] < spans["email_activity"][1]
    )
    assert spans["orders"][0] >= spans["members"][1]
    assert spans["carts"][0] >= spans["orders"][1]
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(Event)).scalar() == 4 * PAGES
    (run,) = list_runs(engine, step=Step.PULL)
    # each stream's requests, counted on its own while they overlapped (through the pool threads)
    assert run["counts"]["streams"] == {
        name: {"requests": PAGES, "records": PAGES} for name in stub.streams()
    }


def test_a_failed_stream_ends_the_others_and_those_after_it_never_start(engine, monkeypatch) -> None:
    stub, result = _pull(engine, monkeypatch, fail="members")
    assert not result.ok and "members failed" in (result.error or "")
    assert "orders" not in stub.spans and "carts" not in stub.spans
    # email_activity ended at the page after the failure, its committed pages stay
    assert 1 <= stub.pages.get("email_activity", 0) <= PAGES
    (run,) = list_runs(engine, step=Step.PULL)
    assert run["status"] == "failed"


@pytest.mark.timeout(30)
def test_a_stream_that_links_with_another_reads_meanwhile_and_links_once_it_has_ended(
    engine, monkeypatch
) -> None:
    stub, result = _pull(engine, monkeypatch, linker="email_activity")
    assert result.ok and result.events == 4 * PAGES, result
    spans = stub.spans
    # both started at once; the linking page waited in the gate until members had been read
    assert spans["email_activity"][0] < spans["members"][0] + PAGE_S
    assert stub.linked_at is not None and stub.linked_at >= spans["members"][1]


@pytest.mark.timeout(30)
def test_a_failed_stream_releases_the_stream_waiting_to_link_with_it(engine, monkeypatch) -> None:
    stub, result = _pull(engine, monkeypatch, fail="members", linker="email_activity")
    assert not result.ok and "members failed" in (result.error or "")
    # the linker waited in the gate on its first page: released by the failure, nothing hung
    assert 1 <= stub.pages.get("email_activity", 0) <= PAGES


def test_outside_a_pull_a_connector_waits_for_no_stream() -> None:
    gates = current_gates()
    assert gates.has_ended("contacts")
    gates.wait("contacts")  # returns at once
