"""PostgreSQL databases of their own for the scale-out tests, dropped afterwards.

The server comes from ``LEADSYNC_TEST_POSTGRES_URL`` (a SQLAlchemy URL to any database on it), else
the local one on 127.0.0.1:5432. Where no server answers, the tests skip and say why.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy.engine import make_url

DEFAULT_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def _admin_conninfo(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture
def new_database() -> Iterator[Callable[[], str]]:
    """Call it for the URL of a new, empty database; every one is dropped after the test."""
    psycopg = pytest.importorskip(
        "psycopg", reason="psycopg is not installed: pip install 'leadsync[postgres]'"
    )
    server = os.environ.get("LEADSYNC_TEST_POSTGRES_URL", DEFAULT_SERVER)
    try:
        psycopg.connect(_admin_conninfo(server), autocommit=True, connect_timeout=3).close()
    except psycopg.OperationalError as exc:
        pytest.skip(f"no PostgreSQL server answers at {make_url(server).render_as_string()}: {exc}".strip())
    made: list[str] = []

    def create() -> str:
        name = f"leadsync_scaleout_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(_admin_conninfo(server), autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        made.append(name)
        url = make_url(server).set(drivername="postgresql+psycopg", database=name)
        return url.render_as_string(hide_password=False)

    yield create
    with psycopg.connect(_admin_conninfo(server), autocommit=True) as admin:
        for name in made:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def pg_url(new_database: Callable[[], str]) -> str:
    return new_database()
