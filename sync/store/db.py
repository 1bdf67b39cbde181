"""The store's engine: one per process, migrated on start.

SQLite runs in WAL mode (readers do not block the writer, so `leadsync status` works while a
sync runs) with a busy timeout; the database file is created readable by its owner only, since it
holds contact data. Any other SQLAlchemy URL (PostgreSQL) works the same way.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Engine, event
from sqlalchemy.engine import make_url
from sqlmodel import create_engine

__all__ = ["make_engine", "migrate", "sqlite_path"]

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def sqlite_path(url: str) -> Path | None:
    """The file behind a SQLite URL, or None for memory databases and other dialects."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database)


def _create_private_file(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    os.chmod(path, 0o600)


def json_text(value: Any) -> str:
    """JSON columns' serialiser: orjson, about ten times faster than ``json.dumps``, which every
    ingested event and every stored score pays; ``json.dumps`` for what orjson refuses (keys that
    are not strings, integers beyond 64 bits). Reading back gives the same values either way."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return json.dumps(value)


def make_engine(url: str, *, migrate_schema: bool = True) -> Engine:
    path = sqlite_path(url)
    if path is not None:
        _create_private_file(path)
    is_sqlite = make_url(url).get_backend_name() == "sqlite"
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": 30} if is_sqlite else {},
        json_serializer=json_text,
    )
    if is_sqlite:

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection, _record):  # type: ignore[no-untyped-def]
            cursor = dbapi_connection.cursor()
            if path is not None:
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

    if migrate_schema:
        migrate(engine)
    if path is not None:
        for suffix in ("-wal", "-shm"):  # WAL side files hold data too
            side = path.with_name(path.name + suffix)
            if side.exists():
                os.chmod(side, 0o600)
    return engine


def migrate(engine: Engine) -> None:
    """Bring the schema to the latest Alembic revision."""
    # imported here: a process that opens an existing store (a re-score worker) does without
    from alembic import command
    from alembic.config import Config as AlembicConfig

    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
