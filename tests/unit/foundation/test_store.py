"""The store: migrations on start, WAL, private file, and idempotent bulk upserts."""

from __future__ import annotations

import os
import sqlite3
import stat
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import event, func, inspect, select, text
from sqlalchemy.dialects import sqlite

from leadsync.sync.store import make_engine, migrate, upsert
from leadsync.sync.store.db import newest_revision, schema_revision
from leadsync.sync.store.idlists import in_ids
from leadsync.sync.store.models import Event, SyncCursor
from leadsync.sync.store.upsert import (
    SQLITE_ROWS_PER_STATEMENT,
    _sqlite_statement,
    insert_new_columns,
    upsert_columns,
)

NOW = datetime(2026, 11, 1, tzinfo=UTC)


def events(n: int) -> list[dict]:
    return [
        {
            "source": "hubspot",
            "platform": "hubspot",
            "source_id": f"ev-{i}",
            "type": "email_open",
            "occurred_at": NOW - timedelta(minutes=i),
            "remote_contact_id": str(i % 700),
            "url": None,
            "campaign": "c-1",
            "machine": i % 10 == 0,
            "properties": {"n": i},
        }
        for i in range(n)
    ]


def test_upserting_the_same_10000_events_twice_leaves_10000_rows_through_the_bulk_path(store_url, store_kind):
    engine = make_engine(store_url)
    statements: list[tuple[str, bool, int]] = []

    @event.listens_for(engine, "before_cursor_execute")
    def record(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001
        if statement.lstrip().upper().startswith("INSERT"):
            statements.append((statement, executemany, len(parameters) if executemany else 1))

    rows = events(10_000)
    for _ in range(2):
        with engine.begin() as connection:
            upsert(connection, Event, rows, key=["source", "source_id"])

    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(Event)).scalar_one() == 10_000
    # The bulk path: INSERT ... ON CONFLICT, never a statement per row. On SQLite multi-row VALUES
    # of SQLITE_ROWS_PER_STATEMENT rows (not executemany: sync.store.upsert._sqlite_send says why);
    # on PostgreSQL, arrays unnested in one statement per call.
    assert statements and all("ON CONFLICT" in statement.upper() for statement, _, _ in statements)
    if store_kind == "sqlite":
        per = SQLITE_ROWS_PER_STATEMENT
        assert len(statements) == 2 * -(-10_000 // per)
        assert not any(executemany for _, executemany, _ in statements)
        assert all(statement.count("(?") == per for statement, _, _ in statements)
    else:
        assert len(statements) <= 2 * 10_000 / 500


def test_upsert_with_update_columns_replaces_values_on_conflict(store_url):
    engine = make_engine(store_url)
    with engine.begin() as connection:
        upsert(
            connection,
            SyncCursor,
            [{"source": "hs", "stream": "contacts", "value": {"after": 1}, "updated_at": NOW}],
            key=["source", "stream"],
            update=["value", "updated_at"],
        )
        upsert(
            connection,
            SyncCursor,
            [{"source": "hs", "stream": "contacts", "value": {"after": 2}, "updated_at": NOW}],
            key=["source", "stream"],
            update=["value", "updated_at"],
        )
    with engine.connect() as connection:
        assert connection.execute(select(SyncCursor.value)).scalars().all() == [{"after": 2}]


def _head() -> str:
    from alembic.script import ScriptDirectory

    from leadsync.sync.store.db import MIGRATIONS

    return ScriptDirectory(str(MIGRATIONS)).get_current_head()


def test_a_new_sqlite_store_is_migrated_in_wal_mode_and_readable_by_its_owner_only(tmp_path):
    path = tmp_path / "sub" / "leadsync.db"
    engine = make_engine(f"sqlite:///{path}")
    with engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar_one() == "wal"
        assert connection.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == _head()
    mode = stat.S_IMODE(os.stat(path).st_mode)
    assert mode == 0o600


def test_a_migration_that_fails_midway_leaves_a_store_the_next_start_migrates(store_url):
    """A process killed while it creates the schema (seen with SIGKILL at random moments): nothing
    of the failed migration stays, so the next start creates the whole schema."""
    engine = make_engine(store_url, migrate_schema=False)
    created: list[str] = []

    @event.listens_for(engine, "before_cursor_execute")
    def die_at_the_fourth_table(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001
        if statement.lstrip().upper().startswith("CREATE TABLE"):
            created.append(statement)
            if len(created) == 4:
                raise RuntimeError("killed while migrating")

    with pytest.raises(RuntimeError, match="killed while migrating"):
        migrate(engine)
    event.remove(engine, "before_cursor_execute", die_at_the_fourth_table)
    with engine.connect() as connection:
        assert not inspect(connection).get_table_names()
    engine.dispose()

    engine = make_engine(store_url)
    with engine.connect() as connection:
        assert schema_revision(connection) == newest_revision()
        assert connection.execute(select(func.count()).select_from(Event)).scalar_one() == 0
    engine.dispose()


def test_migrating_twice_is_harmless(store_url):
    make_engine(store_url).dispose()
    engine = make_engine(store_url)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM alembic_version")).scalar_one() == 1


def test_the_versions_folder_names_alembics_head():
    from leadsync.sync.store.db import head_revision, newest_revision

    assert newest_revision() == head_revision()


def test_opening_a_current_store_reads_its_version_without_loading_alembic(store_url):
    import subprocess
    import sys

    make_engine(store_url).dispose()  # made and migrated: current from here on
    probe = (
        "import sys; from leadsync.sync.store import make_engine; "
        f"make_engine({store_url!r}).dispose(); print('alembic' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False", done.stderr


def test_a_store_of_the_first_schema_keeps_its_change_marks_when_migrated(store_url):
    from alembic import command
    from alembic.config import Config as AlembicConfig
    from sqlalchemy import create_engine

    from leadsync.sync.store.db import MIGRATIONS
    from leadsync.sync.store.db import store_url as driver_url

    url = store_url
    old = create_engine(driver_url(url))
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    with old.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0001")
        connection.execute(
            text(
                "INSERT INTO person (id, email, created_at, updated_at) VALUES (1, 'a@b.io', '2026-01-01', '2026-01-01')"
            )
        )
        connection.execute(text("INSERT INTO changedperson (person_id, changed_at) VALUES (1, '2026-01-01')"))
    old.dispose()
    engine = make_engine(url)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT person_id, version FROM changedperson")).all() == [(1, 1)]
    engine.dispose()


@pytest.mark.parametrize(
    "value",
    [
        datetime(2026, 11, 1, tzinfo=UTC),
        datetime(2026, 11, 1, 23, 59, 59, 999_999, tzinfo=UTC),
        datetime(5, 3, 1, 2, 3, 4, 5, tzinfo=UTC),  # years below 1000 stay four digits
        datetime(2026, 6, 1, 22, 30, tzinfo=timezone(timedelta(hours=-5))),  # another offset
        datetime(2026, 6, 1, 1, 30, tzinfo=ZoneInfo("Europe/Berlin")),
        None,
    ],
)
def test_the_prepared_path_stores_a_datetime_as_the_same_text_as_sqlalchemy(value):
    dialect = sqlite.dialect()
    column = Event.__table__.c.occurred_at
    general = column.type.dialect_impl(dialect).bind_processor(dialect)
    _, (prepared,), _ = _sqlite_statement(dialect, Event.__table__, ("occurred_at",), ("source",), ())
    assert prepared(value) == general(value)


def test_the_prepared_path_gives_each_value_its_own_text_when_values_repeat():
    # the processor remembers the last UTC value (a re-score binds one ``now`` to every row)
    dialect = sqlite.dialect()
    general = Event.__table__.c.occurred_at.type.dialect_impl(dialect).bind_processor(dialect)
    _, (prepared,), _ = _sqlite_statement(dialect, Event.__table__, ("occurred_at",), ("source",), ())
    first, second = datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 2, 3, 4, 5, 6, tzinfo=UTC)
    berlin = datetime(2026, 6, 1, 1, 30, tzinfo=ZoneInfo("Europe/Berlin"))
    values = [first, first, None, first, second, second, berlin, first, None, None, second]
    assert [prepared(value) for value in values] == [general(value) for value in values]


def test_the_prepared_path_refuses_a_naive_datetime_like_sqlalchemy():
    dialect = sqlite.dialect()
    _, (prepared,), _ = _sqlite_statement(dialect, Event.__table__, ("occurred_at",), ("source",), ())
    with pytest.raises(ValueError, match="timezone"):
        prepared(datetime(2026, 11, 1))


def test_rows_given_a_column_at_a_time_are_stored_like_rows_given_as_dicts(store_url):
    rows = events(50)
    by_column = {name: [row[name] for row in rows] for name in rows[0]}
    stored = []
    engine = make_engine(store_url)
    for write in [
        lambda c: upsert(c, Event, rows, key=["source", "source_id"]),
        lambda c: upsert_columns(c, Event, by_column, key=["source", "source_id"]),
    ]:
        with engine.begin() as connection:
            connection.execute(text("DELETE FROM event"))
            assert write(connection) == 50
        with engine.connect() as connection:
            stored.append([row[1:] for row in connection.execute(text("SELECT * FROM event ORDER BY id"))])
    assert stored[0] == stored[1] and len(stored[0]) == 50


@pytest.mark.parametrize(
    ("rows", "variable_limit", "expected_statements"),
    [
        (1, None, [1]),
        (SQLITE_ROWS_PER_STATEMENT, None, [SQLITE_ROWS_PER_STATEMENT]),
        (1_234, None, [500, 500, 234]),
        (1_234, 999, [99] * 12 + [46]),  # 10 columns: at most 99 rows under a limit of 999 marks
        (25, 10, [1] * 25),  # one row's marks are the limit: a row a statement
    ],
)
def test_sqlite_rows_go_as_multi_row_statements_within_sqlites_variable_limit(
    tmp_path, rows, variable_limit, expected_statements
):
    engine = make_engine(f"sqlite:///{tmp_path / 'store.db'}")
    statements: list[int] = []

    @event.listens_for(engine, "before_cursor_execute")
    def record(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001
        if statement.lstrip().upper().startswith("INSERT INTO EVENT"):
            assert not executemany
            assert statement.count("?") == len(parameters)
            statements.append(statement.count("(?"))

    written = events(rows)
    with engine.begin() as connection:
        if variable_limit is not None:
            connection.connection.driver_connection.setlimit(
                sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, variable_limit
            )
        first = insert_new_columns(
            connection,
            Event,
            {name: [row[name] for row in written] for name in written[0]},
            key=["source", "source_id"],
        )
        # again, with one new row among them: only that one is counted as inserted
        again = [*written, {**written[0], "source_id": "ev-new"}]
        second = insert_new_columns(
            connection,
            Event,
            {name: [row[name] for row in again] for name in again[0]},
            key=["source", "source_id"],
        )
    assert (first, second) == (rows, 1)
    assert statements[: len(expected_statements)] == expected_statements
    with engine.connect() as connection:
        stored = connection.execute(select(Event.source_id, Event.properties).order_by(Event.id)).all()
    assert [tuple(row) for row in stored] == [(row["source_id"], row["properties"]) for row in again]


def test_columns_of_different_lengths_are_refused(store_url):
    engine = make_engine(store_url)
    with engine.begin() as connection, pytest.raises(ValueError, match="different lengths"):
        upsert_columns(
            connection, SyncCursor, {"source": ["a", "b"], "stream": ["s"]}, key=["source", "stream"]
        )


@pytest.mark.parametrize(
    ("column", "ids", "expected"),
    [
        ("source_id", ["ev-1", "ev-3", "nope"], {"ev-1", "ev-3"}),
        ("source_id", [], set()),
        ("id", [2, 4], {"ev-1", "ev-3"}),
        # more ids than SQLite takes bound parameters (32,766): one JSON array is one parameter
        ("id", list(range(1, 40_001)), {f"ev-{i}" for i in range(50)}),
    ],
)
def test_an_id_list_selects_exactly_the_rows_it_names(store_url, column, ids, expected):
    engine = make_engine(store_url)
    with engine.begin() as connection:
        upsert(connection, Event, events(50), key=["source", "source_id"])
        query = select(Event.source_id).where(in_ids(getattr(Event, column), connection.dialect.name, ids))
        assert set(connection.execute(query).scalars()) == expected


_OPEN_AT = """
import sys, time
from leadsync.sync.store import make_engine
url, start = sys.argv[1], float(sys.argv[2])
time.sleep(max(0.0, start - time.time()))
make_engine(url).dispose()
print("opened")
"""


def test_processes_starting_at_once_on_an_empty_store_all_succeed(store_url):
    # issue 20: one of two processes starting at once on an empty store crashed (both stores);
    # migrations now take a lock (an advisory lock on PostgreSQL, flock on a lock file beside SQLite's)
    import subprocess
    import sys
    import time

    start = time.time() + 4  # after every child has imported leadsync
    children = [
        subprocess.Popen(
            [sys.executable, "-c", _OPEN_AT, store_url, str(start)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    results = [child.communicate(timeout=120) for child in children]
    assert [child.returncode for child in children] == [0, 0, 0, 0], [err[-1500:] for _, err in results]
    assert all(out.strip() == "opened" for out, _ in results)
    engine = make_engine(store_url)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == _head()
    engine.dispose()
