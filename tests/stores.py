"""Both stores in the tests: one parametrised fixture, ``store_url``, gives each test that takes it a
fresh, empty store, once on SQLite and once on PostgreSQL.

PostgreSQL comes from ``LEADSYNC_TEST_POSTGRES_URL`` (a server URL; any database on it to connect
to first, e.g. ``postgresql://postgres@127.0.0.1:5432/postgres``), else from a server answering on
127.0.0.1:5432 with that URL. Each test session (each xdist worker) creates a database of its own,
named with this machine and the process's pid, and drops it at the end (a run killed before its
end leaves it behind, and the next run on this machine drops it); each test gets a schema of its own
in that database (the URL's ``search_path``), so tests never see each other's rows. Where the
variable is unset and no server answers, the PostgreSQL params skip and say why; where it is set and
the server does not answer, they fail (CI: ``.ci/run`` sets it, so it never skips them). Where
neither answers and pytest-postgresql is installed, its ``postgresql_proc`` fixture starts a
throwaway server from PostgreSQL's binaries (``--postgresql-exec`` names ``pg_ctl``) and the tests
use that.

The session prints how many tests ran on PostgreSQL (``pytest_terminal_summary``).
"""

from __future__ import annotations

import itertools
import os
import re
import secrets
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url

ENV = "LEADSYNC_TEST_POSTGRES_URL"
DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
STORES = ("sqlite", "postgresql")

_schemas = itertools.count(1)
_ran_on_postgres: set[str] = set()
_skipped_on_postgres: dict[str, str] = {}


def _server_url() -> tuple[str | None, str]:
    """(server URL, why not) for the PostgreSQL params."""
    given = os.environ.get(ENV)
    url = given or DEFAULT_URL
    try:
        import psycopg
    except ImportError:
        return None, "psycopg is not installed (pip install 'leadsync[postgres]')"
    try:
        with psycopg.connect(_libpq(url), connect_timeout=3):
            pass
    except psycopg.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if given:
            pytest.fail(f"{ENV} is set but its server does not answer: {first}", pytrace=False)
        return None, f"{ENV} is unset and no PostgreSQL server answers on 127.0.0.1:5432 ({first})"
    return url, ""


def _libpq(url: str) -> str:
    """A SQLAlchemy URL as a libpq connection string (driver suffix dropped)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _this_machine() -> str:
    """This machine in the test databases' names: its host name and its kernel's boot id (machines
    cloned from one image share a host name, containers on one kernel share the boot id), so that a
    run only ever drops its own machine's leftovers."""
    host = re.sub(r"[^a-z0-9]", "", socket.gethostname().lower())[:12] or "host"
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().replace("-", "").strip()[:8]
    except OSError:
        boot = ""
    return f"{host}{boot}"


HOST = _this_machine()
_OURS = re.compile(rf"^leadsync_test_{HOST}_[a-z0-9]+_(\d+)_[0-9a-f]+$")


def leftover_databases(names: list[str], *, alive: Any = None) -> list[str]:
    """Among ``names``, the test databases that an earlier run on this machine left behind: its
    process was killed before it could drop them (their names carry this machine and that process's
    pid, which no longer runs). Other machines' databases, and those of live processes, are kept."""
    alive = alive or _alive
    return [name for name in names if (match := _OURS.match(name)) and not alive(int(match[1]))]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class PostgresSession:
    """The session's own database on the test server; ``schema_url()`` gives a fresh schema in it.
    The databases that killed runs on this machine left behind are dropped first."""

    def __init__(self, server: str) -> None:
        import psycopg

        worker = re.sub(r"[^a-z0-9]", "", os.environ.get("PYTEST_XDIST_WORKER", "main").lower())
        self.name = f"leadsync_test_{HOST}_{worker}_{os.getpid()}_{secrets.token_hex(3)}"
        self.server = server
        with psycopg.connect(_libpq(server), autocommit=True) as connection:
            names = [row[0] for row in connection.execute("SELECT datname FROM pg_database")]
            for name in leftover_databases(names):
                connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            connection.execute(f'CREATE DATABASE "{self.name}"')
        self.url = make_url(server).set(database=self.name)

    def schema_url(self) -> str:
        import psycopg

        schema = f"t{next(_schemas)}"
        with psycopg.connect(_libpq(self.url.render_as_string(hide_password=False)), autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
        return self.url.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
            hide_password=False
        )

    def drop(self) -> None:
        import psycopg

        with psycopg.connect(_libpq(self.server), autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


def _throwaway_server(request: Any) -> str | None:
    """A server started by pytest-postgresql (``postgresql_proc``, from PostgreSQL's binaries) where
    that plugin is installed; None otherwise."""
    try:
        import pytest_postgresql  # noqa: F401
    except ImportError:
        return None
    proc = request.getfixturevalue("postgresql_proc")
    auth = f"{proc.user}:{proc.password}" if proc.password else proc.user
    return f"postgresql://{auth}@{proc.host}:{proc.port}/postgres"


@pytest.fixture(scope="session")
def postgres_session(request: Any) -> Iterator[PostgresSession | str]:
    """The session's PostgreSQL database, or why there is none (a string)."""
    server, why = _server_url()
    if server is None:
        server = _throwaway_server(request)
    if server is None:
        yield why + "; or pip install pytest-postgresql to start a throwaway server"
        return
    session = PostgresSession(server)
    try:
        yield session
    finally:
        session.drop()


def new_store_url(kind: str, folder: Path, postgres: PostgresSession | str) -> str:
    """A fresh, empty store of ``kind``: a SQLite file in ``folder``, or a schema of its own."""
    if kind == "sqlite":
        return f"sqlite:///{folder / 'store.db'}"
    if isinstance(postgres, str):
        pytest.skip(f"PostgreSQL: {postgres}")
    return postgres.schema_url()


@pytest.fixture(params=[pytest.param(kind, marks=getattr(pytest.mark, kind)) for kind in STORES])
def store_url(request: Any, tmp_path: Path, postgres_session: PostgresSession | str) -> str:
    """A fresh store URL, once per supported store (the test's id says which)."""
    return new_store_url(request.param, tmp_path, postgres_session)


@pytest.fixture
def store_kind(store_url: str) -> str:
    return make_url(store_url).get_backend_name()


def pytest_runtest_logreport(report: Any) -> None:
    if "postgresql" not in report.keywords:
        return
    if report.when == "call":
        _ran_on_postgres.add(report.nodeid)
    elif report.when == "setup" and report.skipped:
        _skipped_on_postgres[report.nodeid] = str(report.longrepr[-1]) if report.longrepr else ""


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _ran_on_postgres and not _skipped_on_postgres:
        return
    line = f"tests run on PostgreSQL: {len(_ran_on_postgres)}"
    if _skipped_on_postgres:
        reason = next(iter(_skipped_on_postgres.values()))
        line += f"; skipped there: {len(_skipped_on_postgres)} ({reason})"
    terminalreporter.write_sep("=", line, yellow=bool(_skipped_on_postgres))
