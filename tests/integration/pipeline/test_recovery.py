"""Issue 19, acceptance 8: the platform is the truth for leadsync's own fields and tags.

A store rebuilt from nothing (a lost disk, a move) syncing the same accounts converges: every member
ends with exactly one stage tag and one lifecycle tag, and every owned field equals the new scores,
read back through the platforms' APIs. A value another writer changes on the platform is detected
by the next sync and written again, or only reported with ``[writeback] on_drift = "report"``.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import httpx
import tomli_w
from sqlalchemy import select

from leadsync.config.settings import load_config, resolve_source
from leadsync.connectors.registry import connector_class
from leadsync.sync.observed import TRIGGER_FIELDS, same_value
from leadsync.sync.store.models import Identity, Score
from leadsync.sync.writeback import desired_values, tag_name
from tests.integration.pipeline.harness import Leadsync, serve
from tests.integration.pipeline.otherwriter import OtherWriter

TAGGED = ("mailchimp", "activecampaign")


def _sync(lead: Leadsync) -> dict[str, Any]:
    result = json.loads(lead.run("sync", "--json").stdout)
    assert result["ok"], result
    return result


def _advance(server: Any, days: float, activity: bool) -> None:
    httpx.post(
        server.base_url("hubspot") + "/_sandbox/clock/advance", json={"days": days, "activity": activity}
    ).raise_for_status()


def _wanted(lead: Leadsync) -> dict[tuple[str, str], dict[str, str]]:
    """Per identity, what the store's scores say the platform should hold (score fields and tags)."""
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
    wanted = {}
    for row in rows:
        values = desired_values(row, scored_at=row.scored_at)
        want = {name: values[name] for name in TRIGGER_FIELDS}
        want["tag:stage"] = tag_name("leadsync_", "stage", row.stage)
        want["tag:lifecycle"] = tag_name("leadsync_", "lifecycle", row.lifecycle)
        wanted[(row.source, row.remote_id)] = want
    return wanted


def _held(lead: Leadsync) -> dict[tuple[str, str], dict[str, Any]]:
    """What every platform holds in leadsync's fields and tags, through its API."""
    config = load_config(lead.config)
    engine = lead.engine()
    try:
        with engine.connect() as connection:
            ids = connection.execute(select(Identity.source, Identity.remote_id)).all()
    finally:
        engine.dispose()
    held: dict[tuple[str, str], dict[str, Any]] = {}
    for source in config.sources:
        settings = resolve_source(config, source)
        with connector_class(settings.platform)(settings) as connector:
            found = connector.read_owned(sorted(rid for name, rid in ids if name == source.name))
        held.update({(source.name, rid): values for rid, values in found.items()})
    return held


def _family(tags: list[str], kind: str) -> list[str]:
    return sorted(tag for tag in tags if tag.startswith(f"leadsync_{kind}_"))


def _mismatches(lead: Leadsync) -> list[tuple[Any, ...]]:
    wanted, held = _wanted(lead), _held(lead)
    assert set(wanted) == set(held)
    wrong = []
    for key, want in wanted.items():
        for name in TRIGGER_FIELDS:
            if not same_value(name, held[key].get(name), want[name]):
                wrong.append((key, name, held[key].get(name), want[name]))
        if key[0] in TAGGED:
            for kind in ("stage", "lifecycle"):
                if _family(held[key]["tags"], kind) != [want[f"tag:{kind}"]]:
                    wrong.append((key, kind, held[key]["tags"], want[f"tag:{kind}"]))
    return wrong


def test_a_rebuilt_store_converges_and_other_writers_are_rewritten_or_reported(
    world: Any, tmp_path: Path
) -> None:
    with serve(world) as server:
        lead = Leadsync.create(server, tmp_path / "store")
        _sync(lead)
        assert _mismatches(lead) == []
        before = _held(lead)

        # The disk is lost; meanwhile the contacts keep engaging, so the new scores differ.
        lead.lose_store()
        _advance(server, 3, activity=True)
        lead.score_now = "2026-11-05T00:00:00+00:00"
        _sync(lead)
        assert _mismatches(lead) == []
        after = _held(lead)
        moved = [
            key
            for key in after
            if key[0] in TAGGED
            and key in before
            and _family(after[key]["tags"], "stage") != _family(before[key]["tags"], "stage")
        ]
        assert moved, "no stage tag changed: the test did not exercise tag replacement by a rebuilt store"

        # Another writer changes leadsync's values on each platform.
        _advance(server, 0.005, activity=False)
        writer = OtherWriter(lead.config)
        by_source: dict[str, list[str]] = {}
        for source, remote_id in sorted(after):
            by_source.setdefault(source, []).append(remote_id)
        wanted = _wanted(lead)
        hub, chimp, camp = by_source["hubspot"][0], by_source["mailchimp"][0], by_source["activecampaign"][0]
        writer.hubspot_properties(hub, {"leadsync_affinity": "3"})
        extra = next(
            tag_name("leadsync_", "stage", stage)
            for stage in ("awareness", "investigation", "decision", "action")
            if tag_name("leadsync_", "stage", stage) != wanted[("mailchimp", chimp)]["tag:stage"]
        )
        writer.mailchimp_tags(chimp, {extra: "active"})
        writer.activecampaign_contact(camp, fields={"LEADSYNC_AFFINITY": "3"})

        fixed = _sync(lead)
        drift = {
            (r["source"], d["remote_id"], d["field"], d["action"]) for r in fixed["push"] for d in r["drift"]
        }
        assert {
            ("hubspot", hub, "affinity", "rewrite"),
            ("mailchimp", chimp, "tag:stage", "rewrite"),
            ("activecampaign", camp, "affinity", "rewrite"),
        } <= drift, drift
        assert _mismatches(lead) == []

        # With on_drift = "report", the next change is reported and left as the other writer set it.
        document = tomllib.loads(lead.config.read_text())
        document["writeback"] = {"on_drift": "report"}
        lead.config.write_text(tomli_w.dumps(document))
        _advance(server, 0.005, activity=False)
        writer.hubspot_properties(hub, {"leadsync_affinity": "4"})
        writer.activecampaign_contact(camp, fields={"LEADSYNC_AFFINITY": "4"})
        reported = _sync(lead)
        drift = {
            (r["source"], d["remote_id"], d["field"], d["action"])
            for r in reported["push"]
            for d in r["drift"]
        }
        assert {
            ("hubspot", hub, "affinity", "report"),
            ("activecampaign", camp, "affinity", "report"),
        } <= drift
        held = _held(lead)
        assert held[("hubspot", hub)]["affinity"] == "4" and held[("activecampaign", camp)]["affinity"] == "4"
        assert {(key[0], key[1], name) for key, name, *_ in _mismatches(lead)} == {
            ("hubspot", hub, "affinity"),
            ("activecampaign", camp, "affinity"),
        }
        text = lead.run("sync").stdout
        assert "left as it is (on_drift = report)" in text, text
