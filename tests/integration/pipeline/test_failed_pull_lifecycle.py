"""Issue 20, point 6: when a source's pull fails, nobody whose data comes from that source gets a
lifecycle promotion in that run (HubSpot's lifecycle stage only moves forward, so a promotion made
without, say, Mailchimp's unsubscribes could never be taken back); their other fields are pushed.
The promotion comes with the next run whose pull succeeds."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import httpx
import tomli_w

from tests.integration.pipeline.harness import Leadsync, platform_view, serve


def _configure(lead: Leadsync, *, lifecycle: bool) -> None:
    """One attempt per Mailchimp request (an injected 500 fails its pull at once); lifecycle
    write-back on or off."""
    document = tomllib.loads(lead.config.read_text(encoding="utf-8"))
    for entry in document["sources"]:
        if entry["name"] == "mailchimp":
            entry.setdefault("options", {})["max_attempts"] = 1
    document.setdefault("writeback", {})["lifecycle"] = lifecycle
    lead.config.write_text(tomli_w.dumps(document), encoding="utf-8")


def _break_mailchimp(server: Any, broken: bool) -> None:
    base = server.base_url("mailchimp")
    if broken:
        answer = httpx.post(f"{base}/_sandbox/faults", json={"rates": {"server_error": 1.0}}, timeout=10)
        assert answer.status_code == 200, answer.text
    else:
        httpx.delete(f"{base}/_sandbox/faults", timeout=10).raise_for_status()


def _hubspot(server: Any, emails: set[str]) -> dict[str, Any]:
    return {
        email: held["hubspot"]
        for email, held in platform_view(server, sorted(emails)).items()
        if "hubspot" in held
    }


def _sync_with_mailchimp_down(lead: Leadsync) -> None:
    done = lead.run("sync", "--json", check=False)
    assert done.returncode == 1, done.stdout + done.stderr  # a failed source: exit 1
    report = json.loads(done.stdout)
    assert not next(p for p in report["pull"] if p["source"] == "mailchimp")["ok"]


def _promoted(before: dict[str, Any], after: dict[str, Any]) -> set[str]:
    return {e for e in after if after[e]["lifecyclestage"] != before[e]["lifecyclestage"]}


def test_a_failed_pull_holds_back_the_lifecycle_promotion_of_its_persons_only(
    world: Any, tmp_path: Path
) -> None:
    on_mailchimp = {p.email for p in world.persons if "mailchimp" in p.platforms}
    on_hubspot = {p.email for p in world.persons if "hubspot" in p.platforms}
    both = on_hubspot & on_mailchimp
    with serve(world) as server:
        lead = Leadsync.create(server, tmp_path / "held")
        start = _hubspot(server, on_hubspot)

        # 1. The first sync, Mailchimp down: who is on Mailchimp is not known yet, so nobody is
        # promoted; the other fields are written.
        _configure(lead, lifecycle=True)
        _break_mailchimp(server, True)
        _sync_with_mailchimp_down(lead)
        first = _hubspot(server, on_hubspot)
        assert _promoted(start, first) == set()
        assert any(first[e]["fields"] for e in first), "no fields were written to HubSpot"

        # 2. Mailchimp back, lifecycle write-back off: every source pulled once, nothing promoted.
        _break_mailchimp(server, False)
        _configure(lead, lifecycle=False)
        lead.run("sync", "--json")
        assert _promoted(start, _hubspot(server, on_hubspot)) == set()

        # 3. Lifecycle on, Mailchimp down: persons also on Mailchimp are held back, others promoted.
        _configure(lead, lifecycle=True)
        _break_mailchimp(server, True)
        _sync_with_mailchimp_down(lead)
        third = _hubspot(server, on_hubspot)
        promoted = _promoted(start, third)
        assert promoted & both == set(), sorted(promoted & both)[:5]
        assert promoted - on_mailchimp, "no HubSpot-only person was promoted: nothing was tested"

        # 4. Mailchimp answers again: the held-back promotions are written.
        _break_mailchimp(server, False)
        lead.run("sync", "--json")
        assert _promoted(start, _hubspot(server, both)), "the held-back promotions were never written"
