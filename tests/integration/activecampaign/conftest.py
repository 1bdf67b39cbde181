"""Fixtures: the ActiveCampaign emulator on a loopback port, and connectors pointed at it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from leadsync.connectors.activecampaign.connector import ActiveCampaignConnector
from leadsync.connectors.base import PullBatch, SourceSettings
from leadsync.connectors.records import Platform
from leadsync.sandbox.activecampaign.emulator import SANDBOX_API_TOKEN, ActiveCampaignEmulator
from leadsync.sandbox.server import SandboxServer
from leadsync.sandbox.world import generate_world
from tests.contract.openapi import SPECS_DIR
from tests.integration.activecampaign.contract import ContractLog, load_validator, record_responses
from tests.worlds import private_copy

TOKEN_VARIABLE = "LEADSYNC_AC_API_TOKEN"
FAST = {"requests_per_second": 0, "import_poll_s": 0.01, "backoff_initial_s": 0.01, "bulk_rate_wait_s": 0.05}


def make_settings(
    base_url: str, token: str = SANDBOX_API_TOKEN, options: dict[str, Any] | None = None
) -> SourceSettings:
    return SourceSettings(
        name="ac-test",
        platform=Platform.ACTIVECAMPAIGN,
        base_url=base_url,
        secrets={"api_token": token},
        secret_names={"api_token": TOKEN_VARIABLE},
        options=options if options is not None else dict(FAST),
    )


def api_url(server: SandboxServer) -> str:
    return server.base_url("activecampaign") + "/api/3"


def serve(world: Any, **kwargs: Any) -> SandboxServer:
    kwargs.setdefault("rate_limits", False)
    return SandboxServer.for_world(
        world, emulators=[ActiveCampaignEmulator], ports={"activecampaign": 0}, **kwargs
    )


@pytest.fixture(scope="module")
def small_world() -> Any:
    return generate_world(200, 3)


@pytest.fixture
def server(small_world: Any) -> Iterator[SandboxServer]:
    """A fresh emulator per test (tests write to it), rate limits off."""

    with serve(private_copy(small_world)) as running:
        yield running


@pytest.fixture
def connector_for(server: SandboxServer) -> Iterator[Any]:
    """Connectors whose every response is checked against the spec at teardown (acceptance 1)."""
    made: list[ActiveCampaignConnector] = []
    log = ContractLog()

    def make(
        target: SandboxServer | None = None, *, token: str = SANDBOX_API_TOKEN, **options: Any
    ) -> ActiveCampaignConnector:
        connector = ActiveCampaignConnector(
            make_settings(api_url(target or server), token, {**FAST, **options})
        )
        record_responses(connector.client, log)
        made.append(connector)
        return connector

    yield make
    for connector in made:
        connector.close()
    if SPECS_DIR.is_dir():
        problems = log.problems(load_validator())
        assert not problems, "responses that do not match the spec:\n" + "\n".join(problems[:20])


def admin(server: SandboxServer, method: str, path: str, **kwargs: Any) -> Any:
    response = httpx.request(method, server.base_url("activecampaign") + path, timeout=120, **kwargs)
    response.raise_for_status()
    return response.json()


def pull_all(
    connector: ActiveCampaignConnector, cursors: dict[str, Any] | None = None, *, full: bool = False
) -> tuple[dict[str, list[PullBatch]], dict[str, Any]]:
    """Every stream once; returns the batches per stream and the last cursor per stream."""
    cursors = dict(cursors or {})
    out: dict[str, list[PullBatch]] = {}
    for stream in connector.streams():
        batches = list(connector.pull(stream, cursors.get(stream), full=full))
        out[stream] = batches
        if batches and batches[-1].cursor is not None:
            cursors[stream] = batches[-1].cursor
    return out, cursors
