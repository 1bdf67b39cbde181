"""How a push schedules its bulk imports (activecampaign.md §7): every import queued before any
status poll, polls that back off, and a per-contact report that survives a failed batch."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from leadsync.connectors.activecampaign.connector import ActiveCampaignConnector
from leadsync.sandbox.server import SandboxServer
from leadsync.sandbox.world import generate_world
from tests.contract.openapi import SPECS_DIR
from tests.integration.activecampaign.conftest import FAST, admin, api_url, make_settings, serve
from tests.integration.activecampaign.contract import ContractLog, load_validator, record_responses
from tests.integration.activecampaign.test_push import _updates
from tests.worlds import private_copy

IMPORT = "/api/3/import/bulk_import"
INFO = "/api/3/import/info"


@pytest.fixture(scope="module")
def world_of_300() -> Any:
    return generate_world(600, 3)  # 294 ActiveCampaign contacts: two imports


@pytest.fixture
def two_import_server(world_of_300: Any, request: pytest.FixtureRequest) -> Iterator[SandboxServer]:
    extra = getattr(request, "param", {})
    with serve(private_copy(world_of_300), extra={"activecampaign": extra}) as running:
        yield running


def _connector(server: SandboxServer, log: ContractLog, sent: list[tuple[str, str]], **options: Any):
    connector = ActiveCampaignConnector(make_settings(api_url(server), options={**FAST, **options}))
    record_responses(connector.client, log)

    def on_request(request: httpx.Request) -> None:
        sent.append((request.method, request.url.path))

    connector.client.event_hooks["request"].append(on_request)
    return connector


def _contacts(connector: ActiveCampaignConnector) -> list[Any]:
    return [c for batch in connector.pull("contacts", None) for c in batch.contacts]


def _check_contract(log: ContractLog) -> None:
    if SPECS_DIR.is_dir():
        problems = log.problems(load_validator())
        assert not problems, "responses that do not match the spec:\n" + "\n".join(problems[:20])


def test_given_a_push_of_two_imports_when_pushing_then_both_are_queued_before_the_first_status_poll(
    two_import_server,
) -> None:
    log, sent = ContractLog(), []
    with _connector(two_import_server, log, sent) as connector:
        contacts = _contacts(connector)
        assert 250 < len(contacts) <= 500
        sent.clear()
        report = connector.push(_updates(contacts))
    assert not report.failed and len(report.written) == len(contacts)
    imports = [i for i, (method, path) in enumerate(sent) if (method, path) == ("POST", IMPORT)]
    polls = [i for i, (method, path) in enumerate(sent) if path == INFO]
    assert len(imports) == 2 and polls
    assert max(imports) < min(polls)
    _check_contract(log)


def test_given_two_imports_when_pushing_then_they_are_even_sized_and_none_is_under_the_suggested_minimum(
    two_import_server,
) -> None:
    log, sent, sizes = ContractLog(), [], []
    with _connector(two_import_server, log, sent) as connector:
        contacts = _contacts(connector)

        def on_request(request: httpx.Request) -> None:
            if request.method == "POST" and request.url.path == IMPORT:
                sizes.append(request.content.count(b'"email"'))

        connector.client.event_hooks["request"].append(on_request)
        connector.push(_updates(contacts))
    # §7: at most 250 a request, at least 10 suggested: 294 contacts make 147 + 147, not 250 + 44.
    assert sorted(sizes) == [len(contacts) // 2, len(contacts) - len(contacts) // 2]


@pytest.mark.parametrize("two_import_server", [{"import_seconds": 0.6}], indirect=True)
def test_given_imports_that_take_a_while_when_pushing_then_polls_start_soon_and_back_off(
    two_import_server,
) -> None:
    log, sent = ContractLog(), []
    with _connector(two_import_server, log, sent, import_poll_s=0.05) as connector:
        contacts = _contacts(connector)
        sent.clear()
        report = connector.push(_updates(contacts))
    assert not report.failed
    polls = [path for _, path in sent if path == INFO]
    # 0.6 s + ~0.15 s of processing polled from 0.05 s, x1.5: 0.05, 0.125, 0.24, 0.4, 0.65, 1.0
    # for the first batch, then the second once (it was queued later and is due by then).
    assert 2 <= len(polls) <= 9, polls


@pytest.mark.parametrize("two_import_server", [{"import_seconds": 30}], indirect=True)
def test_given_imports_that_never_complete_in_time_when_pushing_then_every_contact_is_reported_retriable(
    two_import_server,
) -> None:
    log, sent = ContractLog(), []
    with _connector(two_import_server, log, sent, import_poll_s=0.05, import_timeout_s=0.5) as connector:
        contacts = _contacts(connector)
        sent.clear()
        report = connector.push(_updates(contacts))
    assert not report.written
    assert sorted(f.remote_id for f in report.failed) == sorted(c.remote_id for c in contacts)
    assert all(f.retriable and "still processing" in f.reason for f in report.failed)
    assert sum(1 for _, path in sent if path == INFO) <= 8  # backed off, did not hammer


def test_given_a_status_poll_that_fails_when_pushing_then_only_that_batchs_contacts_are_reported(
    two_import_server,
) -> None:
    log, sent = ContractLog(), []
    with _connector(two_import_server, log, sent, max_attempts=1) as connector:
        contacts = _contacts(connector)
        admin(
            two_import_server,
            "POST",
            "/_sandbox/faults",
            json={"paths": "/import/info", "queue": [{"kind": "server_error", "status": 503}]},
        )
        report = connector.push(_updates(contacts))
    failed = {f.remote_id for f in report.failed}
    assert 0 < len(failed) < len(contacts)
    assert all(f.retriable and "import status unknown" in f.reason for f in report.failed)
    assert set(report.written) | failed == {c.remote_id for c in contacts}
    assert not set(report.written) & failed


def test_given_a_moved_email_in_the_second_import_when_pushing_then_only_that_contact_is_reported(
    two_import_server,
) -> None:
    log, sent = ContractLog(), []
    emulator = two_import_server.state.hosts["activecampaign"].emulator
    with _connector(two_import_server, log, sent) as connector:
        contacts = _contacts(connector)
        updates = _updates(contacts)
        moved = updates[-1]  # in the second import
        with emulator.state.lock:
            emulator.state.change_email(emulator.state.contacts[int(moved.remote_id)], "moved@example.org")
        report = connector.push(updates)
    assert [f.remote_id for f in report.failed] == [moved.remote_id]
    assert report.failed[0].retriable
    assert len(report.written) == len(updates) - 1
    assert moved.remote_id not in report.written
    _check_contract(log)


def test_given_fewer_than_ten_changes_when_pushing_then_each_contact_is_updated_by_id_and_nothing_is_polled(
    two_import_server,
) -> None:
    log, sent = ContractLog(), []
    with _connector(two_import_server, log, sent) as connector:
        contacts = _contacts(connector)[:9]
        sent.clear()
        report = connector.push(_updates(contacts))
    assert not report.failed and len(report.written) == 9
    assert not any(path in (IMPORT, INFO) for _, path in sent)
    updated = {path for method, path in sent if method == "PUT" and path.startswith("/api/3/contacts/")}
    assert updated == {f"/api/3/contacts/{c.remote_id}" for c in contacts}
    _check_contract(log)


def test_given_fields_just_provisioned_when_pushing_then_they_are_not_read_again(two_import_server) -> None:
    log, sent = ContractLog(), []
    with _connector(two_import_server, log, sent) as connector:
        contacts = _contacts(connector)[:20]
        connector.ensure_fields()
        sent.clear()
        report = connector.push(_updates(contacts))
    assert not report.failed
    assert ("GET", "/api/3/fields") not in sent
