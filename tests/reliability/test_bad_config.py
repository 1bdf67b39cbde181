"""Bad config through the real CLI: a wrong token (401 naming the source and its variable), a token
without a scope (403 naming the scope), an unreachable base URL, a scoring model with errors. Each
gives a clear message and a non-zero exit, and nothing is written for what failed: not in the store,
not on the platform.

Issue "reliability" (Build: Bad config).
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

from tests.integration.pipeline.harness import serve, writes
from tests.reliability.figures import Figures
from tests.reliability.harness import ENV_NAMES, Cli, leaks, marker_sandbox, store_rows

PLATFORMS = ("hubspot", "mailchimp", "activecampaign")


def _stored(cli: Cli, source: str | None = None) -> int:
    """Rows leadsync holds for a source (or at all): identities, events, persons."""
    if not cli.db.exists():
        return 0
    where = f" WHERE source = '{source}'" if source else ""
    rows = store_rows(cli.db, f"SELECT count(*) FROM identity{where}")[0][0]
    rows += store_rows(cli.db, f"SELECT count(*) FROM event{where}")[0][0]
    if source is None:
        rows += store_rows(cli.db, "SELECT count(*) FROM person")[0][0]
    return rows


def _by_source(result: Any) -> dict[str, Any]:
    return {row["source"]: row for row in result["pull"]}


def test_a_wrong_token_names_the_source_and_its_variable_and_writes_nothing(
    world: Any, tmp_path: Path, figures: Figures
) -> None:
    with marker_sandbox(world) as server:
        cli = Cli.make(server, tmp_path, figures, env_secrets=True)
        cli.extra_env = {variable: "wrong-" + value for variable, value in cli.extra_env.items()}
        cli.extra_env["LSREL_MAILCHIMP_API_KEY"] = (
            "0123456789abcdef0123456789abcdef-us6"  # a well-formed wrong key
        )
        before = writes(server)

        checked = cli.run("check", "--json", check=False)
        assert checked.returncode == 1, checked.stdout + checked.stderr
        details = {row["source"]: row for row in cli.json("check", check=False)["checks"]}
        synced = cli.run("sync", "--json", check=False)
        assert synced.returncode == 1, synced.stdout + synced.stderr
        pulls = _by_source(json.loads(synced.stdout))
        for platform in PLATFORMS:
            (variable,) = ENV_NAMES[platform].values()
            assert not details[platform]["ok"]
            for said in (details[platform]["detail"], pulls[platform]["error"]):
                assert variable in said and platform in said, said
                # HubSpot and Mailchimp answer 401; ActiveCampaign answers 403 to an unknown token.
                assert any(word in said for word in ("401", "403", "refused")), said
        assert writes(server) == before, "a refused run wrote to a platform"
        assert _stored(cli) == 0
    found = leaks(cli.outputs)
    figures.add("secrets leaked", len(found))
    assert found == []


def test_a_token_without_a_scope_is_told_which_scope_and_the_other_platforms_sync(
    world: Any, tmp_path: Path, figures: Figures
) -> None:
    with serve(world, extra={"hubspot": {"missing_scopes": ["crm.objects.contacts.read"]}}) as server:
        cli = Cli.make(server, tmp_path, figures)
        before = writes(server)
        synced = cli.run("sync", "--json", check=False)
        assert synced.returncode == 1, synced.stdout + synced.stderr
        pulls = _by_source(json.loads(synced.stdout))
        error = pulls["hubspot"]["error"]
        assert "crm.objects.contacts.read" in error and "hubspot" in error and "403" in error, error
        assert pulls["mailchimp"]["ok"] and pulls["activecampaign"]["ok"], pulls
        assert writes(server)["hubspot"] == before["hubspot"], "nothing may be written to HubSpot"
        # no HubSpot contact was read; streams of other scopes, pulled beside it, may have stored events
        assert store_rows(cli.db, "SELECT count(*) FROM identity WHERE source = 'hubspot'")[0][0] == 0
        assert _stored(cli, "mailchimp") > 0 and _stored(cli, "activecampaign") > 0


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_an_unreachable_base_url_is_reported_quickly_and_the_other_platforms_sync(
    world: Any, tmp_path: Path, figures: Figures
) -> None:
    with serve(world) as server:
        cli = Cli.make(server, tmp_path, figures, options={"max_elapsed_s": 3.0})
        document = cli.document()
        document["sources"][0]["base_url"] = f"http://127.0.0.1:{_closed_port()}"
        cli.write_config(document)
        before = writes(server)

        checked = cli.json("check", check=False)
        hubspot = next(row for row in checked["checks"] if row["source"] == "hubspot")
        assert not checked["ok"] and not hubspot["ok"]
        assert "reachable" in hubspot["detail"], hubspot
        synced = cli.run("sync", "--json", check=False)
        assert synced.returncode == 1
        pulls = _by_source(json.loads(synced.stdout))
        assert not pulls["hubspot"]["ok"] and pulls["hubspot"]["error"], pulls["hubspot"]
        assert pulls["mailchimp"]["ok"] and pulls["activecampaign"]["ok"]
        assert _stored(cli, "hubspot") == 0
        assert writes(server)["hubspot"] == before["hubspot"]


def test_a_model_file_with_errors_names_file_and_key_and_nothing_is_read_or_written(
    world: Any, tmp_path: Path, figures: Figures
) -> None:
    model = tmp_path / "model.toml"
    default = (Path(__file__).resolve().parents[2] / "config" / "models" / "default.toml").read_text(
        encoding="utf-8"
    )
    model.write_text(default.replace("base = 0", 'base = "lots"', 1), encoding="utf-8")
    with serve(world) as server:
        cli = Cli.make(server, tmp_path, figures)
        document = cli.document()
        document["scoring"] = {"model": str(model)}
        cli.write_config(document)
        requests = sum(stats["requests"] for stats in server.stats().values())
        for command in ("sync", "score"):
            done = cli.run(command, check=False)
            assert done.returncode == 2, done.stdout + done.stderr
            assert str(model.name) in done.stderr and "affinity.base" in done.stderr, done.stderr
            assert "Traceback" not in done.stderr
        assert sum(stats["requests"] for stats in server.stats().values()) == requests, (
            "platforms were called"
        )
        assert _stored(cli) == 0
