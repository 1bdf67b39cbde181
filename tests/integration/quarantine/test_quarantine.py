"""A record that cannot be normalised goes to quarantine with its reason, the rest of the sync goes
on, and `leadsync quarantine retry` resolves it once the data is fixed on the platform."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import httpx
import pytest

from leadsync.sandbox.configfile import write_sandbox_config
from leadsync.sandbox.server import SandboxServer
from leadsync.sandbox.world import generate_world
from tests import forkcli


def leadsync(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return forkcli.run(
        [sys.executable, "-m", "leadsync", "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=config.parent,
    )


@pytest.fixture
def sandbox(tmp_path):
    world = generate_world(40, 11)
    server = SandboxServer.for_world(
        world, ports={"hubspot": 0, "mailchimp": 0, "activecampaign": 0}, rate_limits=False
    )
    with server:
        config = tmp_path / "sb.toml"
        write_sandbox_config(server, config, store_url=f"sqlite:///{tmp_path / 'store.db'}")
        yield server, config


def test_a_contact_without_email_is_quarantined_and_resolved_by_retry_after_the_fix(sandbox):
    server, config = sandbox
    token = tomllib.loads(config.read_text())["sources"][0]["inline_secrets"]["token"]
    hubspot = httpx.Client(base_url=server.base_url("hubspot"), headers={"Authorization": f"Bearer {token}"})
    created = hubspot.post(
        "/crm/v3/objects/contacts", json={"properties": {"firstname": "Nomail", "lastname": "Person"}}
    )
    assert created.status_code == 201, created.text
    contact_id = created.json()["id"]

    pulled = leadsync(config, "pull", "--json")
    assert pulled.returncode == 0, pulled.stdout + pulled.stderr
    summary = {r["source"]: r for r in json.loads(pulled.stdout)["pull"]}
    assert summary["hubspot"]["quarantined"] == 1
    assert summary["hubspot"]["contacts"] > 0  # the rest of the sync went on

    listed = json.loads(leadsync(config, "quarantine", "--json").stdout)
    assert [(row["source"], row["remote_id"], row["reason"]) for row in listed] == [
        ("hubspot", contact_id, "no email address")
    ]
    status = {row["source"]: row for row in json.loads(leadsync(config, "status", "--json").stdout)}
    assert status["hubspot"]["quarantined"] == 1

    # Retrying before the fix keeps it in quarantine, counting the attempt.
    again = json.loads(leadsync(config, "quarantine", "retry", "--source", "hubspot", "--json").stdout)
    assert (again["retried"], again["resolved"], again["still_bad"]) == (1, 0, 1)
    assert json.loads(leadsync(config, "quarantine", "--json").stdout)[0]["attempts"] == 2

    fixed = hubspot.patch(
        f"/crm/v3/objects/contacts/{contact_id}", json={"properties": {"email": "nomail@fixed.example.com"}}
    )
    assert fixed.status_code == 200, fixed.text
    retried = json.loads(leadsync(config, "quarantine", "retry", "--json").stdout)
    assert (retried["retried"], retried["resolved"], retried["still_bad"]) == (1, 1, 0)
    assert json.loads(leadsync(config, "quarantine", "--json").stdout) == []
    assert leadsync(config, "score").returncode == 0  # explain shows stored scores: score it first
    explained = leadsync(config, "explain", "nomail@fixed.example.com")
    assert explained.returncode == 0, explained.stderr
