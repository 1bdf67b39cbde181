"""Secrets: marker tokens and keys planted in the sandbox's accounts never appear in any log level,
text or JSON logs, --json output, exception text, or the store (every table, audit included); a
literal secret for a source off loopback is refused; the store file is its owner's only.

Issue "reliability" (Build: Secrets; acceptance 1 counts "secrets leaked").
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest

from tests.reliability.figures import Figures
from tests.reliability.harness import (
    AC_TOKEN,
    HUBSPOT_TOKEN,
    MARKERS,
    Cli,
    count_faults,
    leaks,
    marker_sandbox,
    set_faults,
    store_texts,
)

# Every log format and level the CLI has, on the commands that talk to the platforms and read the store.
LOGGINGS = (("--log-level", "DEBUG"), ("--log-json", "--log-level", "DEBUG"))


def _scan(cli: Cli, figures: Figures, *extra: str | bytes) -> list[str]:
    found = leaks([*cli.outputs, *store_texts(cli.db), *extra])
    figures.add("secrets leaked", len(found))
    return found


def _every_command(cli: Cli, email: str) -> None:
    # Text logs with --json output, then JSON logs with the readable output: each once (1 s a run).
    for logging, as_json in zip(LOGGINGS, (("--json",), ()), strict=True):
        cli.run(*logging, "check", *as_json, check=False)
        cli.run(*logging, "sync", "--json")
        for command in (("status",), ("leads",), ("quarantine",), ("explain", email)):
            cli.run(*logging, *command, *as_json)


@pytest.mark.parametrize("where", ["environment", "inline"])
def test_planted_secrets_never_appear_in_logs_output_errors_or_the_store(
    world: Any, tmp_path: Path, figures: Figures, where: str
) -> None:
    email = next(p.email for p in world.persons if "hubspot" in p.platforms)
    with marker_sandbox(world) as server:
        # inline: HubSpot through OAuth (client secret, refresh token and the access tokens it mints).
        cli = Cli.make(server, tmp_path, figures, env_secrets=where == "environment", oauth=where == "inline")
        # Faults whose retries log at DEBUG with the failing request: 5xx, reset mid-body, malformed, 429.
        for platform in ("hubspot", "mailchimp", "activecampaign"):
            set_faults(
                server,
                platform,
                queue=[
                    {"kind": "server_error", "count": 2},
                    {"kind": "reset"},
                    {"kind": "malformed"},
                    {"kind": "rate_limit"},
                ],
            )
        _every_command(cli, email)

        # Exception text: every platform now refuses the credentials (401s with the error named).
        server.state.hosts["hubspot"].emulator.private_app_token = "pat-na1-rotated"
        server.state.hosts["hubspot"].emulator.oauth_app = {
            **server.state.hosts["hubspot"].emulator.oauth_app,
            "refresh_token": "x",
        }
        server.state.hosts["hubspot"].emulator.expire_tokens()
        server.state.hosts["mailchimp"].emulator.api_key = "0000-us6"
        server.state.hosts["activecampaign"].emulator.api_token = "rotated"
        for logging, command in zip(LOGGINGS, ("sync", "check"), strict=True):
            refused = cli.run(*logging, command, "--json", check=False)
            assert refused.returncode != 0, refused.stdout
        count_faults(server, figures)

    store = cli.db
    assert stat.S_IMODE(os.stat(store).st_mode) == 0o600, oct(os.stat(store).st_mode)
    for side in store.parent.glob(store.name + "-*"):
        assert stat.S_IMODE(os.stat(side).st_mode) == 0o600, side
    config = cli.config.read_text(encoding="utf-8")
    if where == "environment":  # the config names variables only
        assert not leaks([config]), "the config file holds a secret"
    else:  # the scan finds what is there: the sandbox config holds them inline, on purpose
        assert len(leaks([config])) >= 3
    assert len(cli.outputs) >= 2 * 14
    found = _scan(cli, figures)
    assert found == [], "\n".join(found)


def test_a_literal_secret_for_a_source_off_loopback_is_refused_with_a_hint(
    tmp_path: Path, figures: Figures
) -> None:
    config = tmp_path / "leadsync.toml"
    config.write_text(
        f'[store]\nurl = "sqlite:///{tmp_path / "s.db"}"\n\n[[sources]]\nname = "hubspot"\nplatform = "hubspot"\n'
        f'base_url = "https://api.hubapi.com"\n\n[sources.inline_secrets]\ntoken = "{HUBSPOT_TOKEN}"\n\n'
        f'[[sources]]\nname = "ac"\nplatform = "activecampaign"\nbase_url = "https://acme.api-us1.com/api/3"\n'
        f'[sources.secrets]\napi_token = "{AC_TOKEN}"\n',  # a value where a variable name belongs
        encoding="utf-8",
    )
    cli = Cli(server=None, folder=tmp_path, figures=figures)  # type: ignore[arg-type]
    outputs = []
    for command in (("check", "--json"), ("sync",)):
        done = cli.run("--log-level", "DEBUG", *command, check=False)
        outputs += [done.stdout, done.stderr]
        assert done.returncode == 2, (command, done.stdout, done.stderr)
        assert "environment variable" in done.stderr, done.stderr
        assert "Traceback" not in done.stderr
    assert not (tmp_path / "s.db").exists(), "a refused config created the store"
    found = leaks(outputs, MARKERS)
    figures.add("secrets leaked", len(found))
    assert found == [], "\n".join(found)
