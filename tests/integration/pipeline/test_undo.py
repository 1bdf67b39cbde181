"""Issue 19, acceptance 3 (and 2, 7 for undo): ``leadsync undo RUN_ID`` end to end against the sandbox.

After an undo, every field and tag leadsync changed in that run holds its previous value on the
platform (read back through the platform's API), except a value another writer changed since the
run: that one stays as the other writer left it and is reported. The lifecycle stage is never
moved back.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import desc, select

from leadsync.config.settings import load_config, resolve_source
from leadsync.connectors.registry import connector_class
from leadsync.sync.observed import same_value
from leadsync.sync.store.models import SyncRun, WritebackAudit
from tests.integration.pipeline.harness import Leadsync, serve
from tests.integration.pipeline.otherwriter import OtherWriter

TAG_FIELDS = ("tag:stage", "tag:lifecycle")


def _last_push_runs(lead: Leadsync) -> dict[str, int]:
    engine = lead.engine()
    try:
        with engine.connect() as connection:
            runs: dict[str, int] = {}
            for source, run_id in connection.execute(
                select(SyncRun.source, SyncRun.id).where(SyncRun.command == "push").order_by(desc(SyncRun.id))
            ):
                runs.setdefault(source, run_id)
            return runs
    finally:
        engine.dispose()


def _audit(lead: Leadsync, run_id: int) -> list[Any]:
    engine = lead.engine()
    try:
        with engine.connect() as connection:
            return connection.execute(
                select(WritebackAudit).where(
                    WritebackAudit.run_id == run_id, WritebackAudit.status == "written"
                )
            ).all()
    finally:
        engine.dispose()


def _held(lead: Leadsync, source: str, remote_ids: list[str]) -> dict[str, dict[str, Any]]:
    """What the platform holds now in leadsync's fields and tags, through its API."""
    config = load_config(lead.config)
    settings = resolve_source(config, config.source(source))
    with connector_class(settings.platform)(settings) as connector:
        return connector.read_owned(remote_ids)


def _tags_of(held: dict[str, Any], field: str) -> str | None:
    family = "leadsync_stage_" if field == "tag:stage" else "leadsync_lifecycle_"
    return ",".join(sorted(t for t in held["tags"] if t.startswith(family))) or None


def _change_by_someone_else(writer: OtherWriter, source: str, remote_id: str) -> None:
    """Another writer sets leadsync's engagement field of one contact to 97."""
    if source == "hubspot":
        writer.hubspot_properties(remote_id, {"leadsync_engagement": "97"})
    elif source == "mailchimp":
        writer.mailchimp_merge_fields(remote_id, {"LEADENGAGE": 97})
    else:
        writer.activecampaign_contact(remote_id, fields={"LEADSYNC_ENGAGEMENT": "97"})


def test_undo_restores_what_a_push_replaced_and_leaves_other_writers_values(
    world: Any, tmp_path: Path
) -> None:
    with serve(world) as server:
        lead = Leadsync.create(server, tmp_path / "store")
        assert json.loads(lead.run("sync", "--json").stdout)["ok"]
        # three days of new activity: the next push changes some scores, stages and tags
        httpx.post(
            server.base_url("hubspot") + "/_sandbox/clock/advance", json={"days": 3}
        ).raise_for_status()
        lead.score_now = "2026-11-05T00:00:00+00:00"
        second = json.loads(lead.run("sync", "--json").stdout)
        assert second["ok"] and all(r["written"] > 0 for r in second["push"]), second["push"]
        runs = _last_push_runs(lead)
        writer = OtherWriter(lead.config)
        forward_only = tags_restored = 0
        for source, run_id in runs.items():
            rows = _audit(lead, run_id)
            assert rows, f"{source}: run {run_id} wrote nothing"
            victim = next(row.remote_id for row in rows if row.field == "engagement")
            _change_by_someone_else(writer, source, victim)

            dry = json.loads(lead.run("undo", str(run_id), "--dry-run", "--json").stdout)
            assert {item["action"] for item in dry["items"]} <= {"restore", "changed_since", "forward_only"}
            assert _held(lead, source, [victim])[victim]["engagement"] == "97", "the dry run wrote"

            done = json.loads(lead.run("undo", str(run_id), "--json").stdout)
            items = {(item["remote_id"], item["field"]): item for item in done["items"]}
            # the other writer's value: left alone, and reported
            assert items[(victim, "engagement")]["action"] == "changed_since"
            assert items[(victim, "engagement")]["now"] == "97"
            restorable = [
                row
                for row in rows
                if row.field != "platform_lifecycle" and (row.remote_id, row.field) != (victim, "engagement")
            ]
            assert all(items[(row.remote_id, row.field)]["action"] == "restored" for row in restorable), [
                items[(row.remote_id, row.field)]
                for row in restorable
                if items[(row.remote_id, row.field)]["action"] != "restored"
            ]
            held = _held(lead, source, sorted({row.remote_id for row in rows}))
            assert held[victim]["engagement"] == "97"
            for row in restorable:
                now = (
                    _tags_of(held[row.remote_id], row.field)
                    if row.field in TAG_FIELDS
                    else held[row.remote_id][row.field]
                )
                assert same_value(row.field, now, row.old_value), (
                    source,
                    row.remote_id,
                    row.field,
                    now,
                    row.old_value,
                )
            tags_restored += sum(1 for row in restorable if row.field in TAG_FIELDS)
            lifecycle = [item for item in done["items"] if item["field"] == "platform_lifecycle"]
            assert all(item["action"] == "forward_only" for item in lifecycle)
            forward_only += len(lifecycle)
        assert forward_only > 0, (
            "no lifecycle stage moved in the undone runs: the forward-only rule went untested"
        )

        # bad input: an unknown run, and a run that is not a push, are exit 2 with the choices named
        for bad in ("999999", str(_first_pull_run(lead))):
            done = lead.run("undo", bad, check=False)
            assert done.returncode == 2, done
            assert "push run" in done.stderr and "Traceback" not in done.stderr, done.stderr


def _first_pull_run(lead: Leadsync) -> int:
    engine = lead.engine()
    try:
        with engine.connect() as connection:
            return connection.execute(
                select(SyncRun.id).where(SyncRun.command == "pull").limit(1)
            ).scalar_one()
    finally:
        engine.dispose()
