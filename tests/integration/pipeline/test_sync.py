"""End to end through the CLI: change-only write-back, the audit table, --dry-run, status.

Issue "pipeline", acceptance 2 (a second sync with nothing changed writes nothing) and 3 (after a
clock advance with new activity, only persons whose values changed are pushed).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select

from leadsync.sync.store.models import Identity, Person, Score, SyncRun, WritebackAudit, WritebackState
from leadsync.sync.writeback import TRIGGER_FIELDS, VALUE_FIELDS, desired_values
from tests.integration.pipeline.harness import Leadsync, full_view, new_writes, routes, serve, writes


def _json(done: Any) -> Any:
    return json.loads(done.stdout)


def _count(lead: Leadsync, model: Any, *where: Any) -> int:
    engine = lead.engine()
    try:
        with engine.connect() as connection:
            return connection.execute(select(func.count()).select_from(model).where(*where)).scalar_one()
    finally:
        engine.dispose()


def _wanted(lead: Leadsync) -> dict[tuple[str, str], dict[str, str]]:
    """Per identity, the values whose change is written (a new reason alone is not), as the current
    scores say they should be."""
    engine = lead.engine()
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                select(Identity.source, Identity.remote_id, Score).join(
                    Score, Score.person_id == Identity.person_id
                )
            ).all()
    finally:
        engine.dispose()
    now = datetime.now(UTC)
    return {
        (row.source, row.remote_id): {
            k: v for k, v in desired_values(row, scored_at=now).items() if k in TRIGGER_FIELDS
        }
        for row in rows
    }


def test_change_only_writeback_audit_dry_run_and_status(world: Any, tmp_path: Path) -> None:
    score_now = datetime.now(UTC).isoformat()  # one scoring time for every run of this test
    with serve(world) as server:
        lead = Leadsync.create(server, tmp_path / "a", score_now=score_now)

        first = _json(lead.run("sync", "--json"))
        assert first["ok"], first
        planned = {r["source"]: r["planned"] for r in first["push"]}
        assert all(r["written"] == r["planned"] > 0 for r in first["push"]), first["push"]
        # The audit table holds every write: one row per (identity, field) the state now remembers.
        state_rows = _count(lead, WritebackState)
        assert _count(lead, WritebackAudit, WritebackAudit.status == "written") == state_rows
        assert state_rows >= sum(planned.values()) * len(VALUE_FIELDS)
        for source, count in planned.items():
            engine = lead.engine()
            with engine.connect() as connection:
                audited = connection.execute(
                    select(func.count(func.distinct(WritebackAudit.remote_id))).where(
                        WritebackAudit.source == source
                    )
                ).scalar_one()
            engine.dispose()
            assert audited == count

        # Acceptance 2: nothing changed, so a second sync writes nothing (sandbox stats).
        before = writes(server)
        second = _json(lead.run("sync", "--json"))
        assert second["ok"], second
        assert [r["planned"] for r in second["push"]] == [0, 0, 0]
        assert writes(server) == before, "the second sync made write requests"

        # status: per source the last run, its result, the next run, cursors, counts, pending writes.
        status = _json(lead.run("status", "--json"))
        assert [s["source"] for s in status] == ["hubspot", "mailchimp", "activecampaign"]
        for item in status:
            assert item["last_run"]["status"] == "ok" and item["last_run"]["step"] in {"pull", "push"}
            # no daemon runs: no next run; the cursors in words (the raw ones only with --verbose)
            assert item["next_run"] is None and item["daemon"] is False and item["streams"], item
            assert "cursors" not in item and item["last_success"] is not None, item
            assert item["identities"] == planned[item["source"]] and item["events"] > 0
            assert item["pending_writes"] == 0 and item["lease"] is None
        text = lead.run("status").stdout
        for word in ("hubspot", "mailchimp", "activecampaign", "last run", "next run", "to write"):
            assert word in text, text
        assert "No daemon is running" in " ".join(text.split()), text
        verbose = _json(lead.run("status", "--json", "--verbose"))
        assert all(item["cursors"] for item in verbose), verbose

        # Acceptance 3: the world moves on; only persons whose values changed are pushed.
        advanced = httpx.post(server.base_url("hubspot") + "/_sandbox/clock/advance", json={"days": 3}).json()
        assert advanced["now"].startswith("2026-11-04"), advanced
        lead.run("pull", "--json")
        lead.run("score", "--json")
        wanted = _wanted(lead)
        engine = lead.engine()
        with engine.connect() as connection:
            pushed_state: dict[tuple[str, str], dict[str, str | None]] = {}
            for row in connection.execute(select(WritebackState)):
                pushed_state.setdefault((row.source, row.remote_id), {})[row.field] = row.value
        engine.dispose()
        changed = {
            key
            for key, values in wanted.items()
            if any(pushed_state.get(key, {}).get(k) != v for k, v in values.items())
        }
        assert changed, "three days of new activity changed nobody's scores"
        assert len(changed) < len(wanted), "every identity changed: the test proves nothing"

        # --dry-run shows exactly that diff and writes nothing: no request, no state, no audit.
        audit_before = _count(lead, WritebackAudit)
        calls = routes(server)
        dry = _json(lead.run("push", "--dry-run", "--json"))
        assert new_writes(calls, routes(server)) == {}
        assert _count(lead, WritebackAudit) == audit_before
        diffed = {(r["source"], d["remote_id"]) for r in dry["push"] for d in r["diff"]}
        assert diffed == changed
        dry_text = lead.run("push", "--dry-run").stdout
        assert "would write" in dry_text and "->" in dry_text, dry_text
        assert new_writes(calls, routes(server)) == {}

        emails = sorted({p.email.strip().lower() for p in world.persons})
        seen_before = full_view(server, emails)
        last_run_before = _count(lead, SyncRun)
        pushed = _json(lead.run("push", "--json"))
        assert pushed["ok"]
        assert {r["source"]: r["written"] for r in pushed["push"]} == {
            s: sum(1 for key in changed if key[0] == s) for s in ("hubspot", "mailchimp", "activecampaign")
        }
        engine = lead.engine()
        with engine.connect() as connection:
            last_push = {
                (row.source, row.remote_id)
                for row in connection.execute(
                    select(WritebackAudit.source, WritebackAudit.remote_id).where(
                        WritebackAudit.run_id > last_run_before, WritebackAudit.status == "written"
                    )
                )
            }
            remote_to_email = {
                (row.source, row.remote_id): row.email
                for row in connection.execute(
                    select(Identity.source, Identity.remote_id, Person.email).join(
                        Person, Person.id == Identity.person_id
                    )
                )
            }
        engine.dispose()
        assert last_push == changed  # the audit names exactly the identities that changed
        # Persons with no changed identity are untouched on every platform (scored-at included).
        seen_after = full_view(server, emails)
        touched = {remote_to_email[key] for key in changed}
        for email in emails:
            if email not in touched and email in seen_before:
                assert _strip_volatile(seen_after[email]) == _strip_volatile(seen_before[email]), email
        # And a sync right after writes nothing again.
        before = writes(server)
        assert [r["planned"] for r in _json(lead.run("sync", "--json"))["push"]] == [0, 0, 0]
        assert writes(server) == before


def _strip_volatile(platforms: dict[str, Any]) -> dict[str, Any]:
    """Drop what the sandbox itself moves when the world advances (activity counters, update times)."""
    kept: dict[str, Any] = {}
    for name, held in platforms.items():
        if name == "hubspot":
            kept[name] = {
                k: v
                for k, v in held["properties"].items()
                if k.startswith("leadsync_") or k == "lifecyclestage"
            }
        elif name == "mailchimp":
            kept[name] = {
                lid: {
                    "merge": {k: v for k, v in m["merge_fields"].items() if k.startswith("LEAD")},
                    "tags": m["tags"],
                }
                for lid, m in held["lists"].items()
            }
        else:
            kept[name] = {
                "fields": {k: v for k, v in held["fields"].items() if k.startswith("LEADSYNC_")},
                "tags": held["tags"],
            }
    return kept
