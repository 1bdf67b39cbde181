"""Every connector reads leadsync's fields back by logical name: what push wrote is what it reads."""

from __future__ import annotations

import pytest

from leadsync.config.settings import load_config, resolve_source
from leadsync.connectors.base import ScoreUpdate
from leadsync.connectors.registry import connector_class
from leadsync.sandbox.configfile import write_sandbox_config
from leadsync.sandbox.server import SandboxServer
from leadsync.sandbox.world import generate_world


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    folder = tmp_path_factory.mktemp("read_fields")
    server = SandboxServer.for_world(
        generate_world(30, 9), ports={"hubspot": 0, "mailchimp": 0, "activecampaign": 0}, rate_limits=False
    )
    with server:
        write_sandbox_config(server, folder / "sb.toml")
        yield load_config(folder / "sb.toml")


@pytest.mark.parametrize("source", ["hubspot", "mailchimp", "activecampaign"])
def test_values_pushed_through_a_connector_read_back_by_logical_name(config, source):
    settings = resolve_source(config, config.source(source))
    with connector_class(settings.platform)(settings) as connector:
        contacts = [
            c
            for stream in ["contacts", "members"]
            if stream in connector.streams()
            for batch in connector.pull(stream, None)
            for c in batch.contacts
        ][:12]
        assert contacts, f"{source} has no contacts in the test world"
        updates = [
            ScoreUpdate(
                remote_id=c.remote_id,
                email=c.email or "",
                fields={"affinity": str(10 + i), "engagement": str(i), "grade": "B2", "stage": "decision"},
            )
            for i, c in enumerate(contacts)
        ]
        connector.ensure_fields()
        report = connector.push(updates)
        assert not report.failed, report.failed
        held = connector.read_fields([c.remote_id for c in contacts])
    for i, contact in enumerate(contacts):
        got = held[contact.remote_id]
        assert (got["affinity"], got["engagement"], got["grade"], got["stage"]) == (
            str(10 + i),
            str(i),
            "B2",
            "decision",
        )
