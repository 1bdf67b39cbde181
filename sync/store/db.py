"""The store's engine: one per process, migrated on start.

Two stores are supported: SQLite (the embedded default) and PostgreSQL 13 or later through psycopg 3
(``pip install 'leadsync[postgres]'``); any other URL is refused with a config error naming
``store.url``. A ``postgresql://`` URL uses psycopg 3 (SQLAlchemy's default for that scheme would be
psycopg2, which leadsync does not install).

SQLite runs in WAL mode (readers do not block the writer, so `leadsync status` works while a
sync runs) with a busy timeout; the database file is created readable by its owner only, since it
holds contact data. PostgreSQL connections are checked before use (``pool_pre_ping``), so an engine
outlives a server restart or a killed backend.

Migrations take a lock, so that processes starting at once on an empty store wait for each other
instead of creating the same tables twice: a transaction-level advisory lock on PostgreSQL, an
exclusive ``flock`` on ``<file>.lock`` beside a SQLite store (``_file_lock``).

Whatever goes wrong reaching the store (no server, wrong credentials, no such database, no right to
create the tables, a schema newer than this leadsync) is a ``StoreSettingError``: a ``ConfigError`` naming
``store.url``, shown as one line with the URL's password hidden (exit 2). A fault of the store
itself (a read-only, truncated or foreign SQLite file, an unwritable folder, a full disk, a store
locked past ``store.lock_timeout``) is a ``sync.store.faults.StoreError`` raised at any statement
through SQLAlchemy's ``handle_error`` event; ``inspect_store`` is what ``leadsync check`` reports.
"""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import tempfile
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Engine, event, inspect
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError
from sqlmodel import create_engine

from leadsync.connectors.errors import ConfigError
from leadsync.sync.store.faults import BUSY_TIMEOUT_S, StoreError, store_error, store_name

__all__ = [
    "SUPPORTED",
    "StoreSettingError",
    "inspect_store",
    "describe_store_error",
    "head_revision",
    "is_lost_connection",
    "retry_lost_connection",
    "make_engine",
    "migrate",
    "public_url",
    "schema_revision",
    "sqlite_path",
    "store_url",
]

SUPPORTED = ("sqlite", "postgresql")
PG_CONNECT_TIMEOUT_S = 10  # an unreachable host is reported in seconds, not after the OS's minutes
# pg_advisory_xact_lock key of the schema migration (any constant; this is "leadsync" in ASCII)
MIGRATION_LOCK = 0x6C65616473796E63


class StoreSettingError(ConfigError):
    """The store cannot be used as configured (unsupported URL, no driver, unreachable server, wrong
    credentials, no such database): says why, under ``store.url``, password hidden. A fault of the
    store itself (a read-only, damaged or full store) is ``sync.store.faults.StoreError``."""

    def __init__(self, message: str) -> None:
        super().__init__(message, key="store.url")


MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def sqlite_path(url: str | URL) -> Path | None:
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


def _switch_to_wal(path: Path, lock_timeout: float) -> None:
    """Put a new (empty) SQLite store in WAL mode under the migration's file lock. Processes starting
    at once on a new store each switched it on their first connection, and SQLite may answer one of
    them "database is locked" at once, without calling the busy handler, where waiting could
    deadlock (a reader promoting its lock while another promotes a reserved lock:
    https://www.sqlite.org/c3ref/busy_handler.html). A likely cause of one process of four failing in
    ``test_processes_starting_at_once_on_an_empty_store_all_succeed`` under load (not reproduced
    since, in 104 processes started 8 and 16 at once). Once switched, the connections' own
    ``journal_mode=WAL`` changes nothing and needs no exclusive lock."""
    with _file_lock(path), closing(sqlite3.connect(path, timeout=lock_timeout)) as connection:
        connection.execute("PRAGMA journal_mode=WAL")


def json_text(value: Any) -> str:
    """JSON columns' serialiser: orjson, about ten times faster than ``json.dumps``, which every
    ingested event and every stored score pays; ``json.dumps`` for what orjson refuses (keys that
    are not strings, integers beyond 64 bits). Reading back gives the same values either way."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return json.dumps(value)


def store_url(url: str | URL) -> URL:
    """``url`` parsed, checked to be a store leadsync supports, with PostgreSQL's driver set to
    psycopg 3 where the URL names none. Raises ``StoreSettingError``."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise StoreSettingError(f"not a database URL: {_hide(str(url))!r}") from None
    backend = parsed.get_backend_name()
    if backend not in SUPPORTED:
        raise StoreSettingError(
            f"{backend!r} is not a supported store; use sqlite:///FILE or postgresql://USER@HOST/DATABASE"
        )
    if backend == "postgresql" and parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def public_url(url: str | URL) -> str:
    """``url`` as it may be shown: its password replaced by ``***`` (status, check, errors)."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return _hide(str(url))


def _hide(text: str) -> str:
    """A text that may hold a URL that did not parse: drop anything between ``://user:`` and ``@``."""
    import re

    return re.sub(r"(://[^:/@\s]*:)[^@\s]*@", r"\1***@", text)


def make_engine(
    url: str | URL, *, migrate_schema: bool = True, lock_timeout: float = BUSY_TIMEOUT_S
) -> Engine:
    """The engine of the store at ``url``, its schema brought to the latest revision (unless
    ``migrate_schema`` is False: a process that only reads a store another one opened).

    Raises ``StoreSettingError`` when the store cannot be reached as configured, and ``StoreError``
    (here or at any later statement) for a fault of the store itself (``sync.store.faults``)."""
    parsed = store_url(url)
    path = sqlite_path(parsed)
    if path is not None:
        try:
            _create_private_file(path)
            if path.stat().st_size == 0:
                _switch_to_wal(path, lock_timeout)
        except (OSError, sqlite3.Error) as exc:
            raise (store_error(exc, str(url)) or exc) from exc
    is_sqlite = parsed.get_backend_name() == "sqlite"
    connect_args: dict[str, Any] = {"check_same_thread": False, "timeout": lock_timeout} if is_sqlite else {}
    if not is_sqlite and "connect_timeout" not in parsed.query:
        connect_args["connect_timeout"] = PG_CONNECT_TIMEOUT_S
    try:
        engine = create_engine(
            parsed, connect_args=connect_args, json_serializer=json_text, pool_pre_ping=not is_sqlite
        )
    except (ModuleNotFoundError, NoSuchModuleError) as exc:
        raise StoreSettingError(
            f"the {parsed.get_backend_name()} driver is not installed ({exc}); "
            "install it with: pip install 'leadsync[postgres]'"
        ) from None

    @event.listens_for(engine, "handle_error")
    def _store_fault(context):  # type: ignore[no-untyped-def]
        fault = store_error(context.original_exception, str(url), lock_timeout=lock_timeout)
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
        try:
            _migrate_through_lost_connections(engine)
        except (StoreSettingError, StoreError):
            engine.dispose()
            raise
        except Exception as exc:
            engine.dispose()
            message = describe_store_error(exc, url)
            if message is None:
                raise
            raise StoreSettingError(message) from None
    if path is not None:
        for suffix in ("-wal", "-shm"):  # WAL side files hold data too
            side = path.with_name(path.name + suffix)
            if side.exists():
                os.chmod(side, 0o600)
    return engine


STORE_OUTAGE_S = 120.0  # how long work waits for a lost store connection to come back


def is_lost_connection(exc: BaseException) -> bool:
    """Whether ``exc`` is an open store connection that was lost (a restarted server, a terminated
    backend): the pool has dropped it, and the work can be done again on a new one."""
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


def retry_lost_connection(work: Any, *, what: str, seconds: float = STORE_OUTAGE_S) -> Any:
    """``work()``, done again (whole) while it fails on a lost store connection, for up to
    ``seconds``; for idempotent work only (a re-score: committed batches cleared their marks)."""
    import logging

    from tenacity import Retrying, retry_if_exception, stop_after_delay, wait_exponential

    log = logging.getLogger("leadsync.store")

    def warn(state: Any) -> None:
        log.warning("%s lost the store connection; trying again (%s)", what, state.outcome.exception())

    for attempt in Retrying(
        retry=retry_if_exception(is_lost_connection),
        stop=stop_after_delay(seconds),
        wait=wait_exponential(multiplier=0.2, max=5.0),
        before_sleep=warn,
        reraise=True,
    ):
        with attempt:
            return work()
    return None  # pragma: no cover - Retrying returns or raises


def _migrate_through_lost_connections(engine: Engine) -> None:
    """``migrate``, again on a new connection when an open one was lost (a restarted server, a
    terminated backend); a server that refuses new connections fails at once."""
    from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

    def lost(exc: BaseException) -> bool:
        return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)

    for attempt in Retrying(
        retry=retry_if_exception(lost),
        stop=stop_after_attempt(4),
        wait=wait_exponential(multiplier=0.2, max=2.0),
        reraise=True,
    ):
        with attempt:
            migrate(engine)


def _alembic_config() -> Any:
    # imported here: a process that opens an existing store (a re-score worker) does without
    from alembic.config import Config as AlembicConfig

    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head_revision() -> str:
    """The latest schema revision this leadsync knows."""
    from alembic.script import ScriptDirectory

    return str(ScriptDirectory.from_config(_alembic_config()).get_current_head())


def schema_revision(connection: Any) -> str | None:
    """The store's schema revision (None: no leadsync schema yet)."""
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()


def newest_revision() -> str | None:
    """The head revision as the versions folder names it: its files are ``NNNN_what.py``, one linear
    chain whose revision ids are those numbers (a test holds this to Alembic's own head)."""
    numbers = sorted(path.name.split("_", 1)[0] for path in (MIGRATIONS / "versions").glob("[0-9]*_*.py"))
    return numbers[-1] if numbers else None


def schema_is_current(engine: Engine) -> bool:
    """True when the store's schema is at the head revision: read with one query, without loading
    Alembic and its scripts (a third of a second every command would pay). Errors propagate as
    ``migrate``'s own connection would raise them."""
    with engine.connect() as connection:
        if not inspect(connection).has_table("alembic_version"):
            return False
        versions = connection.exec_driver_sql("SELECT version_num FROM alembic_version").scalars().all()
    return list(versions) == [newest_revision()]


def migrate(engine: Engine) -> None:
    """Bring the schema to the latest Alembic revision, under the migration lock (see the module's
    docstring): a second process waits for the first, then finds the schema current. A store that is
    current already is left at once (``schema_is_current``)."""
    if schema_is_current(engine):
        return
    from alembic import command
    from alembic.util import CommandError

    config = _alembic_config()
    with _file_lock(sqlite_path(engine.url)), engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            # held to the end of this transaction: PostgreSQL's DDL is transactional, so the second
            # process sees either no tables or all of them at the head revision
            connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
        elif connection.dialect.name == "sqlite":
            # SQLite's DDL is transactional too, but Python's sqlite3 opens a transaction only before
            # INSERT/UPDATE/DELETE (docs.python.org/3/library/sqlite3.html#transaction-control): each
            # CREATE TABLE committed on its own, and a process killed mid-migration left a store that
            # no later start could open ("table ... already exists"). One explicit transaction: a
            # migration is applied whole or not at all.
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        config.attributes["connection"] = connection
        try:
            command.upgrade(config, "head")
        except CommandError as exc:  # a revision this leadsync does not know: a newer version made it
            raise StoreSettingError(
                f"the database's schema is at a revision this leadsync does not know ({exc}); "
                f"it expects {head_revision()}: was the store made by a newer leadsync?"
            ) from None


@contextmanager
def _file_lock(path: Path | None) -> Iterator[None]:
    """An exclusive ``flock`` for the duration on ``<SQLite file>.lock``, beside the store (nothing
    for other stores, or where ``fcntl`` does not exist).

    Never on the database file itself: closing any descriptor of that file drops every POSIX lock
    this process's SQLite connections hold on it (sqlite.org/howtocorrupt.html §2.2), which broke
    the next reader's view of the WAL."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no lock, as before
        fcntl = None  # type: ignore[assignment]
    if path is None or fcntl is None:
        yield
        return
    lock = path.with_name(path.name + ".lock")
    descriptor = os.open(lock, os.O_CREAT | os.O_RDWR, 0o600)
    with os.fdopen(descriptor, "rb") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


# SQLSTATE classes and codes (PostgreSQL manual, appendix A "Error codes")
_SQLSTATE_MEANING = {
    "28P01": "the server refused the credentials (wrong user name or password)",
    "28000": "the server refused the connection (no pg_hba.conf entry or role not allowed)",
    "3D000": "the database does not exist on that server: create it (createdb) or fix the name",
    "42501": "the user may not create leadsync's tables there (permission denied): grant CREATE on the "
    "schema, or use a database the user owns",
    "3F000": "the schema on the search path does not exist: create it or fix the URL's options",
    "42P07": "the database already holds tables with leadsync's names but no leadsync schema version: "
    "use an empty database",
    "53300": "the server has no free connection slots (max_connections)",
    "57P03": "the server is starting up or shutting down; try again shortly",
}


# what libpq says when it refuses a connection (it gives no SQLSTATE for those)
_CONNECT_MESSAGES = (
    ("28P01", ("password authentication failed", "no password supplied", 'role "')),
    ("28000", ("no pg_hba.conf entry",)),
    ("3D000", ('database "',)),
    ("53300", ("too many clients", "remaining connection slots")),
    ("57P03", ("the database system is starting up", "the database system is shutting down")),
)


def describe_store_error(exc: BaseException, url: str | URL) -> str | None:
    """One line for a failure to reach or set up the store at ``url`` (its password never shown);
    None when ``exc`` is not about reaching the store (a bug, to be raised as it is)."""
    if not isinstance(exc, DBAPIError):
        return None
    shown = public_url(url)
    orig = exc.orig
    sqlstate = getattr(getattr(orig, "diag", None), "sqlstate", None) or getattr(orig, "sqlstate", None)
    first = str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
    password = make_url(url).password if not isinstance(url, URL) else url.password
    if password:
        first = first.replace(str(password), "***")
    if sqlstate is None:  # libpq refuses a connection with a message, not a code
        lowered = first.lower()
        for code, words in _CONNECT_MESSAGES:
            if any(word in lowered for word in words):
                sqlstate = code
                break
    if sqlstate in _SQLSTATE_MEANING:
        return f"{_SQLSTATE_MEANING[sqlstate]} ({shown}: {first})"
    if exc.connection_invalidated or sqlstate is None and "connect" in first.lower():
        return f"cannot reach the database server: is it running, and are host and port right? ({shown}: {first})"
    if make_url(url).get_backend_name() == "sqlite":
        return f"cannot use the SQLite store ({shown}: {first})"
    return f"the store failed: {first} ({shown})"


PROBE_BYTES = 1 << 20  # ``inspect_store`` writes this much beside the store to prove the disk has room


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
    # the same words as check's PostgreSQL report (sync.cli.check): reachable, then the schema
    if version is None:
        return True, f"{where}: reachable; no schema yet (the first command creates it, {head})"
    if version == head:
        return True, f"{where}: reachable; schema {version} (current), readable and writable"
    return True, f"{where}: reachable; schema {version}, migrated to {head} on the next run"
