"""The sandbox's ``/_sandbox/credentials``: revoked credentials are refused in each platform's own
shape (HubSpot 401 INVALID_AUTHENTICATION, Mailchimp 401 "API Key Invalid", ActiveCampaign 403),
the production connectors' credential check says so, and restoring them makes it pass again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from leadsync.config.settings import load_config
from leadsync.sandbox.configfile import write_sandbox_config
from leadsync.sandbox.server import SandboxServer
from leadsync.sandbox.world import generate_world
from leadsync.sync.alerts import probe_credentials

PLATFORMS = ("hubspot", "mailchimp", "activecampaign")


def _revoke(server: SandboxServer, platform: str, revoked: bool) -> Any:
    answer = httpx.post(
        f"{server.base_url(platform)}/_sandbox/credentials", json={"revoked": revoked}, timeout=10
    )
    answer.raise_for_status()
    return answer.json()


def test_revoked_credentials_are_refused_in_each_platforms_shape_and_restored(tmp_path: Path) -> None:
    world = generate_world(5, 1)
    with SandboxServer.for_world(world, ports={name: 0 for name in PLATFORMS}, rate_limits=False) as server:
        write_sandbox_config(server, tmp_path / "leadsync.toml", store_url=f"sqlite:///{tmp_path / 's.db'}")
        config = load_config(tmp_path / "leadsync.toml")
        secrets = {value for source in config.sources for value in source.inline_secrets.values()}
        for source in config.sources:
            assert probe_credentials(config, source) is None

        for platform in PLATFORMS:
            assert _revoke(server, platform, True) == {"platform": platform, "revoked": True}
        hubspot = httpx.get(
            f"{server.base_url('hubspot')}/crm/v3/objects/contacts",
            headers={"Authorization": "Bearer pat-na1-sandbox-0000-hubspot"},
        )
        assert hubspot.status_code == 401 and hubspot.json()["category"] == "INVALID_AUTHENTICATION"
        mailchimp = httpx.get(
            f"{server.base_url('mailchimp')}/3.0/ping", auth=("any", "0123456789abcdef0123456789abcdef-us6")
        )
        assert mailchimp.status_code == 401 and mailchimp.json()["title"] == "API Key Invalid"
        refusals = {source.name: probe_credentials(config, source) for source in config.sources}
        assert all(refusals.values()), refusals
        assert (
            "401" in refusals["hubspot"]
            and "401" in refusals["mailchimp"]
            and "403" in refusals["activecampaign"]
        )
        assert not any(secret in refusal for secret in secrets for refusal in refusals.values())

        for platform in PLATFORMS:
            _revoke(server, platform, False)
        for source in config.sources:
            assert probe_credentials(config, source) is None
        bad = httpx.post(f"{server.base_url('hubspot')}/_sandbox/credentials", json={"revoked": "yes"})
        assert bad.status_code == 400
