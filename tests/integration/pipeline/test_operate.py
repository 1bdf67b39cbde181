"""Issue 19 end to end against the sandbox, through the CLI: ``push --limit``, the dry run from the
store, ``streams`` and stream selection, ``state`` and ``state reset``, ``fields``, and the bad input
of each (acceptance 2, 4, 5, 7)."""

from __future__ import annotations

import json
import subprocess
import tomllib
from datetime import timedelta
from pathlib import Path
from typing import Any

import tomli_w
from sqlalchemy import func, select

from leadsync.sync.lease import acquire, release
from leadsync.sync.store.models import Event, Identity, SyncCursor, WritebackAudit
from tests.integration.pipeline.harness import ROOT, Leadsync, routes, serve


def _json(done: subprocess.CompletedProcess[str]) -> Any:
    return json.loads(done.stdout)


def _set_sources(lead: Leadsync, **per_source: dict[str, Any]) -> None:
    """Change keys of sources in the config file (e.g. ``hubspot={"streams": [...]}``)."""
    document = tomllib.loads(lead.config.read_text())
    for source in document["sources"]:
        source.update(per_source.get(source["name"], {}))
    lead.config.write_text(tomli_w.dumps(document))


def _persons_written(lead: Leadsync, after_audit_id: int) -> set[int]:
    engine = lead.engine()
    try:
        with engine.connect() as connection:
            return set(
                connection.execute(
                    select(Identity.person_id)
                    .join(
                        WritebackAudit,
                        (WritebackAudit.source == Identity.source)
                        & (WritebackAudit.remote_id == Identity.remote_id),
                    )
                    .where(WritebackAudit.id > after_audit_id, WritebackAudit.status == "written")
                ).scalars()
            )
    finally:
        engine.dispose()


def _scalar(lead: Leadsync, query: Any) -> Any:
    engine = lead.engine()
    try:
        with engine.connect() as connection:
            return connection.execute(query).scalar()
    finally:
        engine.dispose()


def _bad(done: subprocess.CompletedProcess[str], *words: str) -> None:
    """Bad input: exit 2, one clear message naming what was wrong, no traceback."""
    text = done.stdout + done.stderr
    assert done.returncode == 2, (done.returncode, text)
    assert "Traceback" not in text, text
    for word in words:
        assert word in text, (word, text)


def test_push_limit_writes_the_largest_changes_first_and_the_next_push_the_rest(
    world: Any, tmp_path: Path
) -> None:
    with serve(world) as server:
        lead = Leadsync.create(server, tmp_path / "store")
        lead.run("pull", "--json")
        lead.run("score", "--json")

        for bad in ("0", "-3"):
            _bad(lead.run("push", "--limit", bad, check=False), "--limit", bad)

        # the dry run works from the store: no request at all, emails, largest change first
        before = server.stats()
        dry = _json(lead.run("push", "--dry-run", "--json"))
        assert {name: s["requests"] for name, s in server.stats().items()} == {
            name: s["requests"] for name, s in before.items()
        }
        rows = dry["diff"]
        assert rows and all("@" in row["email"] for row in rows)
        assert {row["platform"] for row in rows} == {"hubspot", "mailchimp", "activecampaign"}
        changes = [row["change"] for row in rows]
        assert changes == sorted(changes, reverse=True) and changes[0] > changes[-1]
        assert {"email", "platform", "field", "old", "new"} <= set(rows[0])
        text = lead.run("push", "--dry-run").stdout
        assert rows[0]["email"] in text and "->" in text, text
        planned_persons = _persons_planned(lead, rows)

        audit = _scalar(lead, select(func.max(WritebackAudit.id))) or 0
        limited = _json(lead.run("push", "--limit", "10", "--json"))
        assert limited["ok"], limited
        first = _persons_written(lead, audit)
        assert len(first) == 10
        # ... the ten with the largest change (the dry run's order)
        ranked: list[int] = []
        for person in planned_persons:
            if person not in ranked:
                ranked.append(person)
        assert first == set(ranked[:10])
        assert sum(r["held_back"] for r in limited["push"]) > 0

        audit = _scalar(lead, select(func.max(WritebackAudit.id)))
        rest = _json(lead.run("push", "--json"))
        assert rest["ok"]
        second = _persons_written(lead, audit)
        assert second == set(ranked) - first
        assert [r["planned"] for r in _json(lead.run("push", "--json"))["push"]] == [0, 0, 0]


def _persons_planned(lead: Leadsync, rows: list[dict[str, Any]]) -> list[int]:
    engine = lead.engine()
    try:
        with engine.connect() as connection:
            person = {
                (source, remote_id): pid
                for source, remote_id, pid in connection.execute(
                    select(Identity.source, Identity.remote_id, Identity.person_id)
                )
            }
    finally:
        engine.dispose()
    return [person[(row["source"], row["remote_id"])] for row in rows]


def test_a_deselected_stream_makes_no_request_and_streams_shows_the_selection(
    world: Any, tmp_path: Path
) -> None:
    with serve(world) as server:
        lead = Leadsync.create(server, tmp_path / "store")
        _set_sources(
            lead,
            hubspot={"streams": ["contacts", "email_events", "deals"]},
            mailchimp={"streams": ["members", "orders"]},
            activecampaign={"streams": ["contacts", "activities", "deals"]},
        )
        pulled = _json(lead.run("pull", "--json"))
        assert pulled["ok"] and all(r["contacts"] > 0 for r in pulled["pull"])
        called = routes(server)
        assert not [r for r in called["hubspot"] if "/events/v3/events" in r], called["hubspot"]
        assert not [r for r in called["mailchimp"] if "reports" in r or "campaigns" in r], called["mailchimp"]
        assert not [r for r in called["activecampaign"] if "trackingLogs" in r], called["activecampaign"]

        shown = {(row["source"], row["stream"]): row for row in _json(lead.run("streams", "--json"))}
        assert len(shown) == 14
        assert [k for k, row in shown.items() if not row["selected"]] == [
            ("hubspot", "page_views"),
            ("hubspot", "meetings"),
            ("hubspot", "calls"),
            ("mailchimp", "email_activity"),
            ("mailchimp", "carts"),
            ("activecampaign", "tracking_logs"),
        ]
        assert "engagement" in shown[("mailchimp", "email_activity")]["feeds"]
        assert "stage: action" in shown[("hubspot", "deals")]["feeds"]
        assert "affinity" in shown[("activecampaign", "contacts")]["feeds"]
        one = _json(lead.run("streams", "mailchimp", "--json"))
        assert [row["stream"] for row in one] == ["members", "email_activity", "orders", "carts"]
        assert "email_activity" in lead.run("streams").stdout
        # the cost per run is what the last pulls measured; a deselected stream was never measured
        requests = {name: sum(n for route, n in table.items()) for name, table in called.items()}
        measured = {(r["source"], r["stream"]): r for r in _json(lead.run("streams", "--json"))}
        for (source, _stream), row in measured.items():
            if row["selected"]:
                assert row["runs_measured"] == 1 and row["requests_per_run"] >= 1, row
            else:
                assert (
                    row["requests_per_run"] is None and "not measured" in lead.run("streams", source).stdout
                )
        for source, total in requests.items():
            assert sum(r["last_requests"] or 0 for (s, _), r in measured.items() if s == source) == total

        # an unknown stream in the config is a config error naming the value and the choices
        _set_sources(lead, hubspot={"streams": ["contacts", "emails"]})
        _bad(
            lead.run("pull", check=False),
            "'emails'",
            "contacts, email_events, page_views, meetings, calls, deals",
        )
        _bad(lead.run("streams", "nosuch", check=False))


def _cursors(lead: Leadsync, source: str) -> dict[str, Any]:
    engine = lead.engine()
    try:
        with engine.connect() as connection:
            return dict(
                connection.execute(
                    select(SyncCursor.stream, SyncCursor.value).where(SyncCursor.source == source)
                ).all()
            )
    finally:
        engine.dispose()


def _answer(lead: Leadsync, text: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        lead.command(*args), cwd=ROOT, env=lead.env(), input=text, capture_output=True, text=True, timeout=120
    )


def test_state_shows_each_cursor_and_reset_rereads_from_the_start(world: Any, tmp_path: Path) -> None:
    with serve(world) as server:
        lead = Leadsync.create(server, tmp_path / "store")
        assert _json(lead.run("sync", "--json"))["ok"]

        shown = _json(lead.run("state", "--json"))
        assert {row["source"] for row in shown} == {"hubspot", "mailchimp", "activecampaign"}
        contacts = next(r for r in shown if (r["source"], r["stream"]) == ("hubspot", "contacts"))
        assert contacts["since"] and contacts["committed_at"] and contacts["last_success"]
        assert contacts["progress"] == "up to date"
        sweep = next(r for r in shown if r["stream"] == "tracking_logs")
        assert "last complete sweep" in sweep["progress"]
        members = next(r for r in shown if r["stream"] == "members")
        assert "audience" in members["progress"]
        text = lead.run("state", "hubspot").stdout
        assert "email_events" in text and "mailchimp" not in text

        # reset asks first: "no" keeps the cursor
        assert "contacts" in _cursors(lead, "hubspot")
        declined = _answer(lead, "n\n", "state", "reset", "hubspot", "--stream", "contacts")
        assert declined.returncode == 1 and "Nothing reset" in declined.stdout
        assert "contacts" in _cursors(lead, "hubspot")

        # refused while another process holds the source's lease, naming it
        engine = lead.engine()
        acquire(engine, "source:hubspot", "elsewhere:4242:abcdef", ttl=timedelta(minutes=5))
        held = lead.run("state", "reset", "hubspot", "--yes", check=False)
        assert held.returncode == 1 and "elsewhere:4242:abcdef" in held.stderr, held.stderr
        release(engine, "source:hubspot", "elsewhere:4242:abcdef")
        engine.dispose()

        events = _scalar(lead, select(func.count()).select_from(Event))
        identities = _scalar(
            lead, select(func.count()).select_from(Identity).where(Identity.source == "hubspot")
        )
        accepted = _answer(lead, "y\n", "state", "reset", "hubspot", "--stream", "contacts")
        assert accepted.returncode == 0, accepted.stderr
        cursors = _cursors(lead, "hubspot")
        assert "contacts" not in cursors and "email_events" in cursors
        after = next(r for r in _json(lead.run("state", "hubspot", "--json")) if r["stream"] == "contacts")
        assert after["since"] is None and "from the start" in after["progress"]
        again = _json(lead.run("pull", "hubspot", "--json"))
        assert again["pull"][0]["contacts"] == identities  # re-read from the start ...
        assert _scalar(lead, select(func.count()).select_from(Event)) == events  # ... nothing counted twice

        assert lead.run("state", "reset", "mailchimp", "--yes").returncode == 0
        assert _cursors(lead, "mailchimp") == {}

        _bad(lead.run("state", "reset", "nosuch", "--yes", check=False), "'nosuch'", "hubspot")
        _bad(
            lead.run("state", "reset", "hubspot", "--stream", "emails", "--yes", check=False),
            "'emails'",
            "contacts, email_events, page_views, meetings, calls, deals",
        )
        _bad(lead.run("state", "nosuch", check=False), "'nosuch'")


def test_fields_lists_each_platforms_profile_fields_with_type_and_fill_rate(
    world: Any, tmp_path: Path
) -> None:
    with serve(world) as server:
        lead = Leadsync.create(server, tmp_path / "store")
        expected = {"hubspot": "jobtitle", "mailchimp": "JOBTITLE", "activecampaign": "JOB_TITLE"}
        for source, name in expected.items():
            found = {f["name"]: f for f in _json(lead.run("fields", source, "--sample", "100", "--json"))}
            assert name in found, sorted(found)
            field = found[name]
            assert field["type"] and field["sampled"] > 0
            assert 0.5 < field["fill_rate"] <= 1.0, field
            assert field["filled"] == round(field["fill_rate"] * field["sampled"])
            assert not field["owned_by_leadsync"]
        assert "jobtitle" in lead.run("fields", "hubspot").stdout
        _bad(lead.run("fields", "nosuch", check=False), "'nosuch'")
