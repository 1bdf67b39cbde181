"""Acceptance 4: the real API silently ignores unsupported filters (activecampaign.md §11.2).

The sandbox is told to ignore supported ones too; the connector must then fall back correctly
(check key fields on its side) or stop with a clear error, and never emit wrong data.
"""

from __future__ import annotations

import copy

import pytest

from leadsync.connectors.activecampaign.connector import ActiveCampaignConnector
from leadsync.connectors.errors import PaginationLoop
from tests.integration.activecampaign.conftest import FAST, admin, api_url, make_settings, pull_all, serve
from tests.worlds import private_copy


def _connector(server):
    return ActiveCampaignConnector(make_settings(api_url(server), options=dict(FAST)))


@pytest.mark.parametrize(
    "ignored",
    [
        ["filters[updated_after]", "after"],  # date filters on contacts, deals and activities
        ["filters[status]"],  # deals: lost and open deals come back too
        ["orders[tstamp]", "orders[id]"],  # the feed comes back in the server's own order
    ],
    ids=["date-filters", "deal-status", "orders"],
)
def test_given_an_ignored_filter_when_pulling_twice_then_the_data_matches_an_honest_server(
    small_world, ignored
) -> None:
    world = private_copy(small_world)
    with (
        serve(private_copy(world)) as honest,
        serve(world, extra={"activecampaign": {"ignore_params": ignored}}) as liar,
    ):
        # An open deal and a lost one that an ignored status filter would let through.
        for server in (honest, liar):
            state = server.state.hosts["activecampaign"].emulator.state
            for status, deal in zip((0, 2), list(state.deals.values())[:1] * 2, strict=False):
                clone = copy.copy(deal)
                clone.id, clone.status = 10_000 + status, status
                state.deals[clone.id] = clone
        results = []
        for server in (honest, liar):
            with _connector(server) as connector:
                first, cursors = pull_all(connector)
                admin(server, "POST", "/_sandbox/clock/advance", json={"days": 10})
                second, _ = pull_all(connector, cursors)
                third, _ = pull_all(connector, _)
            results.append(
                [
                    (
                        stream,
                        sorted((r.remote_id, str(r.updated_at)) for b in bs for r in b.contacts),
                        sorted(e.source_id for b in bs for e in b.events),
                    )
                    for run in (first, second, third)
                    for stream, bs in sorted(run.items())
                ]
            )
        assert results[0] == results[1]
        # and the third run, with nothing changed, brought nothing
        assert all(not contacts and not events for _, contacts, events in results[1][-4:])


def test_given_id_greater_is_ignored_when_pulling_contacts_then_the_run_stops_with_a_clear_error(
    small_world,
) -> None:
    with serve(
        private_copy(small_world), extra={"activecampaign": {"ignore_params": ["id_greater"]}}
    ) as server:
        with _connector(server) as connector:
            for n in range(120):  # more than one page of 100
                connector.request(
                    "POST", "contact/sync", json={"contact": {"email": f"extra{n}@example.org"}}
                )
            emitted = []
            with pytest.raises(PaginationLoop, match="ignored 'id_greater'"):
                for batch in connector.pull("contacts", None):
                    emitted.extend(c.remote_id for c in batch.contacts)
            assert len(emitted) == len(set(emitted)) == 100  # the first page only, each contact once
