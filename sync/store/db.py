"""The store's engine: one per process, migrated on start.

SQLite runs in WAL mode (readers do not block the writer, so `leadsync status` works while a
sync runs) with a busy timeout; the database file is created readable by its owner only, since it
holds contact data. Any other SQLAlchemy URL (PostgreSQL) works the same way.
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Engine, event, inspect
from sqlalchemy.engine import make_url
from sqlmodel import create_engine

from leadsync.sync.store.faults import BUSY_TIMEOUT_S, StoreError, store_error, store_name

__all__ = ["head_revision", "inspect_store", "make_engine", "migrate", "sqlite_path"]

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def sqlite_path(url: str) -> Path | None:
    """The file behind a SQLite URL, or None for memory databases and other dialects."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database)


def _create_private_file(path: Path) -> None:
    """Create the store file readable by its owner only; an existing one loses any group and other
    permission bits, and keeps its owner's (a file made read-only stays read-only: a store fault)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        return
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        try:
            os.chmod(path, mode & 0o700)
        except PermissionError:  # not the owner, or an immutable file: SQLite says what it can do
            pass


def json_text(value: Any) -> str:
    """JSON columns' serialiser: orjson, about ten times faster than ``json.dumps``, which every
    ingested event and every stored score pays; ``json.dumps`` for what orjson refuses (keys that
    are not strings, integers beyond 64 bits). Reading back gives the same values either way."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return json.dumps(value)


def make_engine(url: str, *, migrate_schema: bool = True, lock_timeout: float = BUSY_TIMEOUT_S) -> Engine:
    """The store's engine. A store fault (read-only, damaged, not a database, unwritable folder, full
    disk, locked past ``lock_timeout`` seconds) raises ``StoreError`` here or at any later statement
    (``sync.store.faults``)."""
    path = sqlite_path(url)
    if path is not None:
        try:
            _create_private_file(path)
        except OSError as exc:
            raise (store_error(exc, url) or exc) from exc
    is_sqlite = make_url(url).get_backend_name() == "sqlite"
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": lock_timeout} if is_sqlite else {},
        json_serializer=json_text,
    )

    @event.listens_for(engine, "handle_error")
    def _store_fault(context):  # type: ignore[no-untyped-def]
        fault = store_error(context.original_exception, url, lock_timeout=lock_timeout)
        if fault is not None:
            raise fault from context.original_exception

    if is_sqlite:

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection, _record):  # type: ignore[no-untyped-def]
            cursor = dbapi_connection.cursor()
            if path is not None:
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={int(lock_timeout * 1000)}")
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


PROBE_BYTES = 1 << 20  # ``inspect_store`` writes this much beside the store to prove the disk has room


def head_revision() -> str:
    """The schema revision this leadsync migrates to."""
    from alembic.config import Config as AlembicConfig
    from alembic.script import ScriptDirectory

    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    return str(ScriptDirectory.from_config(config).get_current_head())


def _probe_folder(folder: Path) -> None:
    """Create, fill and remove a file beside the store: raises OSError (EACCES, EROFS, ENOSPC) when
    the folder cannot be written or the disk has no room."""
    while not folder.exists() and folder.parent != folder:  # created on first run: probe its parent
        folder = folder.parent
    with tempfile.NamedTemporaryFile(dir=folder, prefix=".leadsync-check-") as probe:
        probe.write(b"\0" * PROBE_BYTES)
        probe.flush()
        os.fsync(probe.fileno())


def inspect_store(url: str, *, lock_timeout: float = BUSY_TIMEOUT_S) -> tuple[bool, str]:
    """What ``leadsync check`` says of the store: open it, read its schema version, check its pages
    (SQLite's ``quick_check``), make a write that is rolled back, and prove its folder and disk take
    a write. ``(ok, detail)``; a fault's detail is the one line a command would fail with."""
    path = sqlite_path(url)
    name = store_name(url)
    try:
        if path is not None:
            try:
                _probe_folder(path.parent)
            except OSError as exc:
                raise (store_error(exc, url) or exc) from exc
            if not path.exists():
                return True, f"SQLite at {path} (created on first run)"
        engine = make_engine(url, migrate_schema=False, lock_timeout=lock_timeout)
        try:
            with engine.connect() as connection:
                if path is not None:
                    found = [row[0] for row in connection.exec_driver_sql("PRAGMA quick_check").all()]
                    if found != ["ok"]:
                        raise StoreError(
                            f"store {name} is damaged (SQLite's quick_check: {'; '.join(found[:3])}): "
                            "restore it from a backup, or move it aside and run `leadsync sync` to rebuild "
                            "the store from the platforms",
                            kind="damaged",
                            store=name,
                        )
                tables = set(inspect(connection).get_table_names())
                version = (
                    connection.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
                    if "alembic_version" in tables
                    else None
                )
            if version is not None:
                with engine.connect() as connection, connection.begin() as transaction:
                    connection.exec_driver_sql("UPDATE alembic_version SET version_num = version_num")
                    transaction.rollback()
        finally:
            engine.dispose()
    except StoreError as exc:
        return False, str(exc)
    head = head_revision()
    where = f"SQLite at {path}" if path is not None else name
    if version is None:
        return True, f"{where}: empty (the schema is created on first run)"
    if version == head:
        return True, f"{where}: schema version {version} (current), readable and writable"
    return True, f"{where}: schema version {version}; this leadsync upgrades it to {head} on its next run"
