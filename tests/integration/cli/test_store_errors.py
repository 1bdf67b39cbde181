"""Issue 20, points 7 and 9: a store that cannot be used gives one clear line naming the setting and
exit 2 (no traceback); ``check`` connects and reports whether the store is reachable and its schema
version."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from tests import forkcli
from tests.integration.pipeline.harness import ROOT
from tests.stores import PostgresSession


def _leadsync(folder: Path, toml: str, *args: str) -> subprocess.CompletedProcess[str]:
    config = folder / "leadsync.toml"
    config.write_text(toml, encoding="utf-8")
    return forkcli.run(
        [sys.executable, "-m", "leadsync.sync.cli", "--config", str(config), *args],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "COLUMNS": "300", "PYTHONPATH": str(ROOT)},
    )


def _server(postgres_session: Any) -> PostgresSession:
    if isinstance(postgres_session, str):
        pytest.skip(f"PostgreSQL: {postgres_session}")
    return postgres_session


@pytest.mark.postgresql
@pytest.mark.parametrize(
    ("case", "words"),
    [
        ("unreachable", "cannot reach the database server"),
        ("wrong credentials", "refused the credentials"),
        ("no such database", "database does not exist"),
        ("no such schema", "schema on the search path does not exist"),
    ],
)
def test_a_store_that_cannot_be_used_names_store_url_and_exits_2(
    tmp_path: Path, postgres_session: Any, case: str, words: str
) -> None:
    server = _server(postgres_session)
    url = make_url(server.url.render_as_string(hide_password=False)).set(password="s3cret-pw")
    url = {
        "unreachable": url.set(port=1),
        "wrong credentials": url.set(username="no_such_role_leadsync"),
        "no such database": url.set(database="no_such_database_leadsync"),
        "no such schema": url.update_query_dict({"options": "-csearch_path=no_such_schema"}),
    }[case]
    toml = f'[store]\nurl = "{url.render_as_string(hide_password=False)}"\n'
    for command in (["status"], ["sync"], ["leads"]):
        done = _leadsync(tmp_path, toml, *command)
        said = done.stdout + done.stderr
        assert done.returncode == 2, said
        assert "store.url" in said and words in said, said
        assert "Traceback" not in said and "s3cret-pw" not in said, said
        assert len(done.stderr.strip().splitlines()) == 1, said


def test_procrastinate_with_a_sqlite_store_names_engine_kind_and_exits_2(tmp_path: Path) -> None:
    toml = '[store]\nurl = "sqlite:///leadsync.db"\n[engine]\nkind = "procrastinate"\n'
    done = _leadsync(tmp_path, toml, "status")
    assert done.returncode == 2, done.stderr
    assert "engine.kind" in done.stderr and "PostgreSQL" in done.stderr, done.stderr
    done = _leadsync(tmp_path, '[engine]\nkind = "celery"\n', "status")
    assert done.returncode == 2 and "'celery'" in done.stderr and "embedded, procrastinate" in done.stderr


def test_check_reports_the_store_reachable_with_its_schema_version(tmp_path: Path, store_url: str) -> None:
    from leadsync.sync.store import make_engine
    from leadsync.sync.store.db import head_revision

    toml = f'[store]\nurl = "{store_url}"\n'
    fresh = _leadsync(tmp_path, toml, "check", "--json")
    assert '"(store)"' in fresh.stdout
    assert ("no schema yet" in fresh.stdout) or ("created on first run" in fresh.stdout), fresh.stdout
    make_engine(store_url).dispose()
    done = _leadsync(tmp_path, toml, "check", "--json")
    assert f"reachable; schema {head_revision()} (current)" in done.stdout, done.stdout
