"""``sandbox serve --accounts N``: independent accounts on each platform's one port, each named by
its credential, with its own world and its own rate-limit budget; the written config has one source
per account."""

from __future__ import annotations

import tomllib
from datetime import UTC, datetime
from pathlib import Path

import httpx

from leadsync.config.settings import load_config
from leadsync.sandbox.accounts import ACCOUNT_HEADER
from leadsync.sandbox.configfile import write_sandbox_config
from leadsync.sandbox.server import SandboxServer
from leadsync.sandbox.world import generate_world

NOW = datetime(2026, 11, 1, tzinfo=UTC)
PLATFORMS = ("hubspot", "mailchimp", "activecampaign")


def _serve(count: int, contacts: int = 20, **kwargs: object) -> SandboxServer:
    worlds = [generate_world(contacts, 7 + index, now=NOW) for index in range(count)]
    return SandboxServer.for_accounts(worlds, ports={name: 0 for name in PLATFORMS}, **kwargs)  # type: ignore[arg-type]


def _hubspot_emails(base_url: str, token: str) -> set[str]:
    answer = httpx.get(
        f"{base_url}/crm/v3/objects/contacts",
        params={"limit": 100, "properties": "email"},
        headers={"Authorization": f"Bearer {token}"},
    )
    answer.raise_for_status()
    return {row["properties"]["email"] for row in answer.json()["results"]}


def test_each_account_answers_its_own_token_with_its_own_world(tmp_path: Path) -> None:
    with _serve(3, rate_limits=False) as server:
        path = tmp_path / "leadsync.toml"
        write_sandbox_config(
            server, path, store_url="postgresql://postgres@127.0.0.1:5432/x", engine="procrastinate"
        )
        written = tomllib.loads(path.read_text())
        config = load_config(path)
        assert written["engine"] == {"kind": "procrastinate"}
        names = [source.name for source in config.sources]
        assert names == [f"{p}-{i:03d}" for i in (1, 2, 3) for p in PLATFORMS]
        tokens = [s["inline_secrets"]["token"] for s in written["sources"] if s["platform"] == "hubspot"]
        assert len(set(tokens)) == 3
        seen = [_hubspot_emails(server.base_url("hubspot"), token) for token in tokens]
        assert all(seen) and seen[0] != seen[1] != seen[2]
        # each account's own world: the persons of the world generated for that account
        for index, state in enumerate(server.accounts):
            on_hubspot = {p.email for p in state.world.persons if "hubspot" in [str(x) for x in p.platforms]}
            assert seen[index] == on_hubspot
        refused = httpx.get(
            f"{server.base_url('hubspot')}/crm/v3/objects/contacts",
            headers={"Authorization": "Bearer pat-na1-nobody"},
        )
        assert refused.status_code == 401
        keys = [s["inline_secrets"]["api_key"] for s in written["sources"] if s["platform"] == "mailchimp"]
        for key in keys:
            lists = httpx.get(f"{server.base_url('mailchimp')}/3.0/lists", auth=("any", key))
            assert lists.status_code == 200, lists.text
        per_account = [server.stats(account)["mailchimp"]["requests"] for account in (1, 2, 3)]
        assert per_account == [1, 1, 1]
        admin = httpx.get(f"{server.base_url('hubspot')}/_sandbox/stats", headers={ACCOUNT_HEADER: "2"})
        assert admin.json()["requests"] == 1  # account 2's one list request


def test_each_account_has_its_own_rate_limit_budget() -> None:
    # ActiveCampaign fact sheet §8: 5 requests a second per account.
    with _serve(2, contacts=5) as server:
        tokens = [state.hosts["activecampaign"].emulator.account_key() for state in server.accounts]
        url = f"{server.base_url('activecampaign')}/api/3/contacts"
        with httpx.Client() as client:
            first = [client.get(url, headers={"Api-Token": tokens[0]}).status_code for _ in range(8)]
            second = [client.get(url, headers={"Api-Token": tokens[1]}).status_code for _ in range(3)]
        assert 429 in first
        assert second == [200, 200, 200]
