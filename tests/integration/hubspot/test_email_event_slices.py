"""Email events past their first page are read in time slices side by side (hubspot.md §4.1:
``startTimestamp``/``endTimestamp``), each event once, and a pull stopped part-way through the
slices resumes without losing one (ground truth: the emulator's own events)."""

from __future__ import annotations

import time
from email.utils import parsedate_to_datetime
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from leadsync.connectors.hubspot import normalize
from leadsync.connectors.hubspot.connector import EMAIL_EVENT_SLICES, HubSpotConnector
from leadsync.sandbox.hubspot.emulator import HubSpotEmulator
from leadsync.sandbox.server import SandboxServer
from leadsync.sandbox.world import generate_world
from tests.integration.hubspot.conftest import settings_for


@pytest.fixture(scope="module")
def server():
    with SandboxServer.for_world(
        generate_world(300, 13), emulators=[HubSpotEmulator], ports={"hubspot": 0}, rate_limits=False
    ) as s:
        yield s


def _expected(server: SandboxServer) -> list[str]:
    emulator: HubSpotEmulator = server.state.hosts["hubspot"].emulator
    return sorted(
        e.source_id
        for row in emulator.state.email_events
        if (e := normalize.email_event(row, source="hs-main", contact_id="?")) is not None
    )


def _recorded(server: SandboxServer, method: str) -> list[dict[str, str]]:
    reply = httpx.request(method, server.base_url("hubspot") + "/_sandbox/record", timeout=30)
    reply.raise_for_status()
    return reply.json().get("requests", []) if method == "DELETE" else []


@pytest.mark.parametrize("lookback_s", [300, 0])  # 0: no overlap window to hide a duplicate
def test_email_events_past_the_first_page_are_read_in_time_slices_each_event_once(server, lookback_s):
    expected = _expected(server)
    assert len(expected) > 3 * 1000, "one or two pages: there is nothing to slice"
    _recorded(server, "POST")
    settings = settings_for(server.base_url("hubspot"), rate_limit=False, lookback_s=lookback_s)
    with HubSpotConnector(settings) as connector:
        pulled = [e.source_id for batch in connector.pull("email_events", None) for e in batch.events]
    requests = [r for r in _recorded(server, "DELETE") if r["path"].startswith("/email/public/v1/events")]

    assert sorted(pulled) == expected  # every event, none twice
    starts = {
        parse_qs(urlsplit(r["path"]).query).get("startTimestamp", [None])[0]
        for r in requests
        if "offset" not in parse_qs(urlsplit(r["path"]).query)
    }
    starts.discard(None)
    assert len(starts) == EMAIL_EVENT_SLICES, f"slices started at {sorted(starts)}"
    ends = [r for r in requests if "endTimestamp" in parse_qs(urlsplit(r["path"]).query)]
    assert ends, "every slice was open-ended"


class _SlowFirstSlice(httpx.HTTPTransport):
    """Holds up every request of the slice that starts at ``start``: its pages come last."""

    def __init__(self, start: int) -> None:
        super().__init__()
        self.start = str(start)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.params.get("startTimestamp") == self.start:
            time.sleep(0.3)
        return super().handle_request(request)


def test_an_event_two_slices_or_the_first_page_both_hold_goes_out_once_whatever_the_order(server):
    expected = _expected(server)
    token = settings_for("x").secrets["token"]
    first = httpx.get(
        server.base_url("hubspot") + "/email/public/v1/events",
        params={"limit": 1000},
        headers={"Authorization": f"Bearer {token}"},
    ).json()
    newest_on_first_page = max(e["created"] for e in first["events"])
    # no overlap window: the connector's own look-back de-duplication cannot hide a second copy
    settings = settings_for(server.base_url("hubspot"), rate_limit=False, lookback_s=0)
    with HubSpotConnector(settings, transport=_SlowFirstSlice(newest_on_first_page - 1)) as connector:
        pulled = [e.source_id for batch in connector.pull("email_events", None) for e in batch.events]
    assert sorted(pulled) == expected


def test_with_one_slice_the_first_chain_goes_on_from_its_offset_each_event_once(server, monkeypatch):
    monkeypatch.setattr("leadsync.connectors.hubspot.connector.EMAIL_EVENT_SLICES", 1)
    expected = _expected(server)
    _recorded(server, "POST")
    with HubSpotConnector(settings_for(server.base_url("hubspot"), rate_limit=False)) as connector:
        pulled = [e.source_id for batch in connector.pull("email_events", None) for e in batch.events]
    requests = [r for r in _recorded(server, "DELETE") if r["path"].startswith("/email/public/v1/events")]

    assert sorted(pulled) == expected
    assert len(requests) == -(-len(server.state.hosts["hubspot"].emulator.state.email_events) // 1000)
    assert not any("Timestamp" in r["path"] for r in requests)  # one chain of offsets, no slice


def test_a_pull_stopped_part_way_through_the_slices_resumes_without_losing_an_event(server):
    expected = _expected(server)
    settings = settings_for(server.base_url("hubspot"), rate_limit=False)
    first: list[str] = []
    cursor = None
    with HubSpotConnector(settings) as connector:
        batches = connector.pull("email_events", None)
        for number, batch in enumerate(batches):
            first += [e.source_id for e in batch.events]
            cursor = batch.cursor
            if number == 4:  # slices interleave: later ones have handed over pages past this cursor
                break
        batches.close()
    assert cursor is not None and len(set(first)) < len(expected)
    with HubSpotConnector(settings) as connector:
        second = [e.source_id for batch in connector.pull("email_events", cursor) for e in batch.events]
    assert set(first) | set(second) == set(expected)


def test_the_sandbox_dates_its_answers_by_the_world_clock(server):
    reply = httpx.get(
        server.base_url("hubspot") + "/email/public/v1/events",
        params={"limit": 1},
        headers={"Authorization": f"Bearer {settings_for('x').secrets['token']}"},
    )
    assert reply.status_code == 200
    world_now = server.state.clock.now()
    assert abs((parsedate_to_datetime(reply.headers["date"]) - world_now).total_seconds()) < 1
