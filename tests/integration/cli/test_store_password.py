"""Issue 20, point 7: no command, log line or error prints the store's password. Every command runs
against a PostgreSQL store whose URL carries a password (the test server trusts loopback, so the
password is accepted and ignored), at INFO level, and its whole output is searched for it; then the
same for a server that cannot be reached (the error path)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import typer.main
from sqlalchemy.engine import make_url

from leadsync.sandbox.configfile import write_sandbox_config
from leadsync.sandbox.world import generate_world
from leadsync.sync.cli.app import app
from tests import forkcli
from tests.integration.pipeline.harness import ROOT, serve
from tests.stores import PostgresSession

PASSWORD = "pw-Leadsync-7f3a9c-secret"
# commands that run a server or a demo of their own (no store of this config) or block until stopped
NOT_HERE = {"demo", "sandbox"}


def _arguments(name: str, email: str) -> list[list[str]]:
    """How each command is run: its usual forms (an unknown command gets its plain form)."""
    return {
        "init": [["init", "--force", "/dev/null"]],
        "check": [["check", "--json"]],
        "pull": [["pull"]],
        "score": [["score"]],
        "push": [["push", "--dry-run"]],
        "sync": [["sync"]],
        "status": [["status"], ["status", "--json"]],
        "leads": [["leads"]],
        "explain": [["explain", email]],
        "backtest": [["backtest"]],
        "report": [["report"]],
        "state": [["state"]],
        "streams": [["streams"]],
        "fields": [["fields", "hubspot"]],
        "undo": [["undo", "999999"]],
        "quarantine": [["quarantine"]],
        "model": [["model", "fit", "--help"]],
        "runs": [["runs"]],
    }.get(name, [[name]])


def _run(config: Path, folder: Path, args: list[str]) -> str:
    done = forkcli.run(
        [sys.executable, "-m", "leadsync.sync.cli", "--config", str(config), "-v", *args],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
        env={"PATH": "/usr/bin:/bin", "COLUMNS": "300", "PYTHONPATH": str(ROOT)},
    )
    return f"$ leadsync {' '.join(args)} (exit {done.returncode})\n{done.stdout}{done.stderr}"


def _daemon(config: Path, folder: Path) -> str:
    process = subprocess.Popen(
        [sys.executable, "-m", "leadsync.sync.cli", "--config", str(config), "-v", "daemon"],
        cwd=folder,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={"PATH": "/usr/bin:/bin", "COLUMNS": "300", "PYTHONPATH": str(ROOT)},
    )
    time.sleep(6)
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=60)
    return f"$ leadsync daemon\n{out}{err}"


@pytest.mark.postgresql
def test_no_command_prints_the_store_password(tmp_path: Path, postgres_session: Any) -> None:
    if isinstance(postgres_session, str):
        pytest.skip(f"PostgreSQL: {postgres_session}")
    assert isinstance(postgres_session, PostgresSession)
    url = make_url(postgres_session.schema_url()).set(password=PASSWORD)
    world = generate_world(40, 3)
    email = world.persons[0].email
    commands = sorted(set(typer.main.get_command(app).commands) - NOT_HERE)  # type: ignore[attr-defined]
    outputs: list[str] = []
    with serve(world) as server:
        config = tmp_path / "leadsync.toml"
        write_sandbox_config(server, config, store_url=url.render_as_string(hide_password=False))
        assert PASSWORD in config.read_text()  # the password really is in the URL leadsync reads
        outputs.append(_run(config, tmp_path, ["sync"]))  # a store with data, runs and writes first
        for name in commands:
            if name == "daemon":
                outputs.append(_daemon(config, tmp_path))
                continue
            for args in _arguments(name, email):
                outputs.append(_run(config, tmp_path, args))
        unreachable = tmp_path / "down.toml"
        write_sandbox_config(
            server, unreachable, store_url=url.set(port=1).render_as_string(hide_password=False)
        )
        for args in (["status"], ["check"], ["sync"], ["leads"]):
            outputs.append(_run(unreachable, tmp_path, args))
    text = "\n".join(outputs)
    assert "(exit 0)" in outputs[0], outputs[0][-3000:]
    assert "postgresql://" in text  # the URL is shown where it helps, with its password hidden
    leaked = [out.splitlines()[0] for out in outputs if PASSWORD in out]
    assert leaked == [], f"the store password was printed by: {leaked}"
    assert "***" in text
