"""Faults through the real CLI, compared with a clean run of the same world: a storm of every fault
kind on all three platforms (429s with and without Retry-After, HubSpot's policyName body,
Mailchimp's bodiless ones, 5xx bursts, timeouts, resets mid-body, malformed JSON, dropped
connections, an OAuth token expired mid-run, a 207 partial failure, ActiveCampaign's bulk-import
400); a platform down for a whole run; items HubSpot keeps refusing. Each ends equal to the clean
run (store and platforms), and the lost/duplicated figures are counted from the stores.

Issue "reliability" (Build: Faults; acceptance 1 and 2).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.pipeline.harness import platform_view, store_state
from tests.reliability.figures import Figures
from tests.reliability.harness import Cli, clear_faults, count_faults, losses, marker_sandbox, set_faults
from tests.worlds import private_copy

TIMEOUT_S = 2.0  # the faulted configs' client timeout; a "slow" fault outlasts it
HUBSPOT_API = r"^/(crm|email|events|account-info)/"  # not the OAuth token endpoint


@pytest.fixture(scope="module")
def clean(reliability_world: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One uninterrupted sync of the world: what every faulted run must end equal to."""
    with marker_sandbox(private_copy(reliability_world)) as server:
        cli = Cli.make(server, tmp_path_factory.mktemp("clean"), Figures())
        assert cli.json("sync")["ok"]
        emails = sorted(store_state(cli)["persons"])
        return {
            "db": cli.db,
            "store": store_state(cli),
            "platforms": platform_view(server, emails),
            "emails": emails,
        }


def _assert_equal_to_clean(cli: Cli, server: Any, clean: dict[str, Any], figures: Figures) -> None:
    lost, duplicated = losses(cli.db, clean["db"])
    figures.add("records lost", lost)
    figures.add("records duplicated", duplicated)
    assert (lost, duplicated) == (0, 0)
    state = store_state(cli)
    for key, want in clean["store"].items():
        assert state[key] == want, f"store differs from the clean run in {key}"
    assert platform_view(server, clean["emails"]) == clean["platforms"], "platforms differ from the clean run"


def _pulls(result: dict[str, Any]) -> dict[str, Any]:
    return {row["source"]: row for row in result["pull"]}


def test_a_storm_of_every_fault_kind_ends_equal_to_a_clean_run(
    world: Any, tmp_path: Path, clean: dict[str, Any], figures: Figures
) -> None:
    with marker_sandbox(world) as server:
        # Up to 9 faults in a row meet the same request: allow 12 attempts (the default is 6).
        cli = Cli.make(
            server,
            tmp_path,
            figures,
            oauth=True,
            options={"timeout_s": TIMEOUT_S, "max_attempts": 12, "backoff_max_s": 1.0, "max_elapsed_s": 60.0},
        )
        slow = {"kind": "slow", "seconds": TIMEOUT_S + 1}
        storm = {"server_error": 0.03, "reset": 0.02, "malformed": 0.02, "seed": 3}
        set_faults(
            server,
            "hubspot",
            paths=HUBSPOT_API,
            rate_limit=0.02,
            **storm,
            queue=[
                {"kind": "rate_limit", "retry_after": 1},
                {"kind": "rate_limit"},  # with and without Retry-After
                {"kind": "server_error", "status": 502, "count": 2},
                slow,
                {"kind": "expire_token"},
                {"kind": "reset"},
                {"kind": "malformed"},
                {"kind": "drop"},
            ],
        )
        set_faults(
            server,
            "mailchimp",
            bodiless_rate_limit=0.03,
            **storm,
            queue=[
                {"kind": "bodiless_rate_limit", "count": 2},
                {"kind": "rate_limit", "retry_after": 1},
                {"kind": "server_error", "status": 503, "count": 2},
                slow,
                {"kind": "reset"},
                {"kind": "malformed"},
                {"kind": "drop"},
            ],
        )
        set_faults(
            server,
            "activecampaign",
            rate_limit=0.02,
            retry_after=1,
            **storm,
            queue=[
                {"kind": "rate_limit", "retry_after": 1},
                {"kind": "server_error", "count": 2},
                slow,
                {"kind": "reset"},
                {"kind": "malformed"},
                {"kind": "drop"},
            ],
        )
        pulled = cli.json("pull")
        assert all(row["ok"] for row in pulled["pull"]), pulled
        cli.run("score")

        # The push meets its own faults: a 207 with failed items (once), the bulk-import 400, 5xx.
        clear_faults(server)
        hubspot_ids = sorted(server.state.hosts["hubspot"].emulator.state.objects["contacts"])[:3]
        httpx.post(
            f"{server.base_url('hubspot')}/_sandbox/hubspot/item-failures",
            json={"ids": hubspot_ids, "times": 1},
        ).raise_for_status()
        set_faults(
            server, "hubspot", paths=r"batch/(update|upsert)", queue=[{"kind": "server_error", "status": 503}]
        )
        set_faults(
            server, "activecampaign", paths=r"import/bulk_import", queue=[{"kind": "bulk_import_limit"}]
        )
        set_faults(
            server,
            "mailchimp",
            paths=r"/lists/",
            queue=[{"kind": "server_error", "count": 2}, {"kind": "reset"}],
        )
        pushed = cli.json("push")
        assert pushed["ok"], pushed
        # A 207 item error is the platform refusing that record: quarantined with its reason, then
        # written by `quarantine retry` (the refusal was once only).
        held = [row for row in cli.json("quarantine") if row["source"] == "hubspot"]
        assert sorted(row["remote_id"] for row in held) == hubspot_ids, held
        assert cli.json("quarantine", "retry")["resolved"] == 3
        injected = count_faults(server, figures)
        kinds = {kind for platform in server.stats().values() for kind in platform["faults_injected"]}
        assert kinds >= {
            "rate_limit",
            "bodiless_rate_limit",
            "server_error",
            "slow",
            "reset",
            "malformed",
            "drop",
            "expire_token",
            "bulk_import_limit",
        }, kinds
        assert injected >= 30
        token_calls = server.stats()["hubspot"]["by_route"].get("POST /oauth/2026-03/token", 0)
        assert token_calls >= 2, "the expired OAuth token was not refreshed"
        _assert_equal_to_clean(cli, server, clean, figures)


def test_a_platform_down_for_a_whole_run_lets_the_others_sync_and_catches_up_next_run(
    world: Any, tmp_path: Path, clean: dict[str, Any], figures: Figures
) -> None:
    with marker_sandbox(world) as server:
        cli = Cli.make(server, tmp_path, figures)
        set_faults(server, "mailchimp", server_error=1.0, server_error_status=503)
        down = cli.run("sync", "--json", check=False)
        assert down.returncode == 1, down.stdout + down.stderr
        result = json.loads(down.stdout)
        pulls = _pulls(result)
        assert not pulls["mailchimp"]["ok"] and "503" in pulls["mailchimp"]["error"], pulls["mailchimp"]
        assert pulls["hubspot"]["ok"] and pulls["activecampaign"]["ok"]
        pushed = {row["source"]: row for row in result["push"]}
        assert pushed["hubspot"]["written"] > 0 and pushed["activecampaign"]["written"] > 0, pushed
        status = {row["source"]: row for row in cli.json("status")}
        assert status["mailchimp"]["last_run"]["status"] != "ok", status["mailchimp"]
        count_faults(server, figures)

        clear_faults(server)
        assert cli.json("sync")["ok"]
        _assert_equal_to_clean(cli, server, clean, figures)


def test_items_hubspot_keeps_refusing_go_to_quarantine_and_retry_writes_them_once_fixed(
    world: Any, tmp_path: Path, figures: Figures
) -> None:
    with marker_sandbox(world) as server:
        cli = Cli.make(server, tmp_path, figures)
        refused = sorted(server.state.hosts["hubspot"].emulator.state.objects["contacts"])[:2]
        admin = f"{server.base_url('hubspot')}/_sandbox/hubspot/item-failures"
        httpx.post(
            admin, json={"ids": refused, "times": -1, "message": "Property values were not valid"}
        ).raise_for_status()
        result = json.loads(cli.run("sync", "--json", check=False).stdout)
        pushed = {row["source"]: row for row in result["push"]}
        assert pushed["hubspot"]["written"] == pushed["hubspot"]["planned"] - 2, pushed["hubspot"]
        assert pushed["mailchimp"]["ok"] and pushed["activecampaign"]["ok"]
        listed = [row for row in cli.json("quarantine") if row["source"] == "hubspot"]
        assert sorted(row["remote_id"] for row in listed) == refused, listed
        assert all("not valid" in row["reason"] for row in listed), listed
        status = {row["source"]: row for row in cli.json("status")}
        assert status["hubspot"]["quarantined"] == 2

        httpx.post(admin, json={"ids": refused, "times": 0}).raise_for_status()  # fixed on the platform
        retried = cli.json("quarantine", "retry")
        assert (retried["resolved"], retried["still_bad"]) == (2, 0), retried
        assert cli.json("quarantine") == []
        for remote_id in refused:
            held = server.state.hosts["hubspot"].emulator.state.objects["contacts"][remote_id].properties
            assert held.get("leadsync_grade"), f"contact {remote_id} was never written"
