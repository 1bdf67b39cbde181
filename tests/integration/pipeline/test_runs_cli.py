"""``leadsync runs`` and ``runs show`` end to end against the sandbox, through the CLI (issue 19,
acceptance 2 and 7): the runs a sync made, filtered and limited, one run with the writes it made
(from the audit, as the platform now holds them), pruning by age, and the bad input of each."""

from __future__ import annotations

import json
import subprocess
import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import tomli_w
from sqlalchemy import func, select, update

from leadsync.sync.lease import acquire, release
from leadsync.sync.store import make_engine
from leadsync.sync.store.models import SyncRun, WritebackAudit
from tests.integration.pipeline.harness import Leadsync, platform_view, serve


def _json(done: subprocess.CompletedProcess[str]) -> Any:
    return json.loads(done.stdout)


def _bad(done: subprocess.CompletedProcess[str], *words: str) -> None:
    text = done.stdout + done.stderr
    assert done.returncode == 2, (done.returncode, text)
    assert "Traceback" not in text, text
    flat = " ".join(text.split())
    for word in words:
        assert word in flat, (word, text)


def test_runs_lists_a_syncs_runs_and_runs_show_gives_one_with_the_writes_it_made(
    world: Any, tmp_path: Path
) -> None:
    with serve(world) as server:
        lead = Leadsync.create(server, tmp_path / "store")
        assert "No runs recorded yet" in lead.run("runs").stdout
        synced = _json(lead.run("sync", "--json"))
        assert synced["ok"]

        listed = _json(lead.run("runs", "--json"))
        assert [(r["step"], r["status"], r["trigger"]) for r in listed].count(("pull", "ok", "command")) == 3
        assert sorted((r["source"], r["step"]) for r in listed) == sorted(
            [(s, step) for s in ("hubspot", "mailchimp", "activecampaign") for step in ("pull", "push")]
            + [("*", "score")]
        )
        assert [r["id"] for r in listed] == sorted((r["id"] for r in listed), reverse=True)  # newest first
        pulled = {r["source"]: r for r in synced["pull"]}
        for run in listed:
            if run["step"] == "pull":
                assert run["counts"]["contacts"] == pulled[run["source"]]["contacts"]
                assert run["counts"]["requests"] > 0 and run["counts"]["streams"]

        only = _json(lead.run("runs", "--source", "hubspot", "--json"))
        assert [(r["source"], r["step"]) for r in only] == [("hubspot", "push"), ("hubspot", "pull")]
        assert len(_json(lead.run("runs", "--limit", "2", "--json"))) == 2
        assert _json(lead.run("runs", "--failed", "--json")) == []
        text = lead.run("runs").stdout
        assert "hubspot" in text and "requests" in text and "(all)" in text, text

        # A pull whose credentials the platform refuses is a failed run that --failed shows; an
        # attempt refused by another process's lease did nothing and records no run.
        engine = make_engine(lead.store_url)
        acquire(engine, "source:mailchimp", "otherhost:4242:abcdef", ttl=timedelta(minutes=5))
        assert lead.run("pull", "mailchimp", check=False).returncode == 1
        release(engine, "source:mailchimp", "otherhost:4242:abcdef")
        assert _json(lead.run("runs", "--failed", "--json")) == []
        revoke = f"{server.base_url('mailchimp')}/_sandbox/credentials"
        httpx.post(revoke, json={"revoked": True}).raise_for_status()
        assert lead.run("pull", "mailchimp", check=False).returncode == 1
        httpx.post(revoke, json={"revoked": False}).raise_for_status()
        (refused,) = _json(lead.run("runs", "--failed", "--json"))
        assert refused["source"] == "mailchimp" and refused["status"] == "failed"
        assert "API" in refused["error"] or "401" in refused["error"], refused["error"]

        # runs show: the writes of one push run, as the audit holds them and the platform now has them
        push = next(r for r in listed if r["step"] == "push" and r["source"] == "activecampaign")
        shown = _json(lead.run("runs", "show", str(push["id"]), "--json"))
        with engine.connect() as connection:
            audited = connection.execute(
                select(WritebackAudit.remote_id, WritebackAudit.field, WritebackAudit.new_value).where(
                    WritebackAudit.run_id == push["id"]
                )
            ).all()
        engine.dispose()
        assert shown["id"] == push["id"] and shown["step"] == "push" and shown["status"] == "ok"
        assert shown["writes_total"] == len(shown["writes"]) == len(audited) > 0
        assert {(w["remote_id"], w["field"], w["new"]) for w in shown["writes"]} == set(audited)
        assert (
            len({w["remote_id"] for w in shown["writes"] if w["status"] == "written"})
            == (shown["counts"]["written"])
        )
        assert all(w["email"] for w in shown["writes"])
        held = platform_view(server, sorted({w["email"] for w in shown["writes"]})[:10])
        for write in shown["writes"]:
            if write["email"] in held and write["field"].startswith("LEADSYNC_"):
                fields = held[write["email"]]["activecampaign"]["fields"]
                assert str(fields[write["field"]]) == str(write["new"]), (write, fields)
        said = lead.run("runs", "show", str(push["id"])).stdout
        assert f"run {push['id']}: push of activecampaign" in said and "writes" in said, said
        pull_run = next(r for r in listed if r["step"] == "pull" and r["source"] == "hubspot")
        said = lead.run("runs", "show", str(pull_run["id"])).stdout
        assert "per stream" in said and "contacts" in said, said


def test_old_runs_are_pruned_by_age_and_their_audit_stays(world: Any, tmp_path: Path) -> None:
    with serve(world) as server:
        lead = Leadsync.create(server, tmp_path / "store")
        document = tomllib.loads(lead.config.read_text())
        document["history"] = {"keep_days": 30}
        lead.config.write_text(tomli_w.dumps(document))
        lead.run("sync", "hubspot")
        engine = make_engine(lead.store_url)
        try:
            with engine.begin() as connection:
                audit = connection.execute(select(func.count()).select_from(WritebackAudit)).scalar_one()
                old = datetime.now(UTC) - timedelta(days=31)
                connection.execute(update(SyncRun).values(started_at=old, finished_at=old))
                aged = connection.execute(select(func.count()).select_from(SyncRun)).scalar_one()
            assert aged == 3 and audit > 0
            lead.run("pull", "hubspot")
            with engine.connect() as connection:
                left = connection.execute(select(SyncRun.started_at)).scalars().all()
                assert (
                    connection.execute(select(func.count()).select_from(WritebackAudit)).scalar_one() == audit
                )
            assert len(left) == 1  # only the new pull
        finally:
            engine.dispose()


def test_runs_bad_input_is_one_clear_line_and_exit_2(world: Any, tmp_path: Path) -> None:
    with serve(world) as server:
        lead = Leadsync.create(server, tmp_path / "store")
        lead.run("pull", "hubspot")
        _bad(lead.run("runs", "show", "99999", check=False), "no run 99999", "recent runs: 1")
        _bad(lead.run("runs", "show", "abc", check=False), "'abc'")
        _bad(lead.run("runs", "--limit", "0", check=False), "--limit", "0: use 1 or more")
        _bad(lead.run("runs", "--limit", "-3", check=False), "--limit", "-3: use 1 or more")
        _bad(lead.run("runs", "--source", "nosuch", check=False), "'nosuch'", "hubspot")
        document = tomllib.loads(lead.config.read_text())
        document["history"] = {"keep_days": 0}
        lead.config.write_text(tomli_w.dumps(document))
        _bad(lead.run("runs", check=False), "history.keep_days")
