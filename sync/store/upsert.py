"""Bulk upserts with the dialect's ON CONFLICT (SQLite and PostgreSQL).

One INSERT ... ON CONFLICT compiled once and executed for all rows, never one ORM add per row: this is the ingest hot
path (the benchmark asks for 50,000 events a second into SQLite). On SQLite the statement text and each column's bind
processor are prepared once per (table, columns) and the rows go to the driver as tuples, up to 500 rows a statement
(multi-row VALUES, ``_sqlite_send``): SQLAlchemy's own executemany spends more time building per-row parameter dicts than
SQLite spends writing them, and the driver's executemany gives up the interpreter lock once per row.

On PostgreSQL a page goes as ONE statement whatever its size: each column bound as one array and
unpacked by ``unnest``, ``INSERT INTO t (cols) SELECT * FROM unnest($1::type[], ...) ON CONFLICT ...``.
One round trip and one plan per page; SQLAlchemy's executemany through psycopg sent a row at a time
(pipelined, but parsed and executed per row), about 2,300 events/s on a loaded 2-core machine. The
arrays go in PostgreSQL's binary format (psycopg's ``%b``): the text format quotes and escapes every
element through a regular expression, which was half of the client's time per page. With that and
``insert_new_columns``' distinct ``RETURNING``, the ingest of 20,000 persons and 400,000 events
(``python -m bench.local ingest``, two runs each side by side on 2 cores) went from 31,800-34,300
to 42,800-46,600 events/s, and its contacts from 9,600-10,000 to 13,800-14,600 a second.
"""

from __future__ import annotations

import sqlite3
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from functools import lru_cache
from itertools import chain, repeat
from typing import Any, overload

from sqlalchemy import Column, Connection, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlmodel import SQLModel
from sqlmodel.sql.sqltypes import UTCDateTime

__all__ = [
    "SQLITE_ROWS_PER_STATEMENT",
    "Columns",
    "insert_many",
    "insert_new_columns",
    "upsert",
    "upsert_columns",
]


def _table(model: type[SQLModel] | Table) -> Table:
    return model if isinstance(model, Table) else model.__table__  # type: ignore[attr-defined,return-value]


Columns = Mapping[str, Sequence[Any]]  # rows given a column at a time, every column the same length


def upsert(
    connection: Connection,
    model: type[SQLModel] | Table,
    rows: Sequence[Mapping[str, Any]] | Iterable[Mapping[str, Any]],
    *,
    key: Sequence[str],
    update: Sequence[str] | None = None,
) -> int:
    """Insert ``rows``; on a conflict on ``key`` update the ``update`` columns (None = do nothing).

    Every row must have the same keys. Returns the number of rows sent.
    """
    return upsert_columns(connection, model, _by_column(list(rows)), key=key, update=update)


def upsert_columns(
    connection: Connection,
    model: type[SQLModel] | Table,
    columns: Columns,
    *,
    key: Sequence[str],
    update: Sequence[str] | None = None,
) -> int:
    """``upsert`` of rows given a column at a time (the ingest builds its events that way, with no
    dict per row). Returns the number of rows sent."""
    count = _length(columns)
    if not count:
        return 0
    table = _table(model)
    dialect = connection.dialect.name
    if dialect == "sqlite" and (
        _sqlite_prepared_insert(connection, table, columns, count, tuple(key), tuple(update or ()))
        is not None
    ):
        return count
    if dialect == "postgresql" and _postgres_unnest(
        connection, table, columns, count, tuple(key), tuple(update or ())
    ):
        return count
    if dialect == "sqlite":
        insert = sqlite.insert
    elif dialect == "postgresql":
        insert = postgresql.insert
    else:  # pragma: no cover - the two dialects leadsync supports
        raise NotImplementedError(f"bulk upsert is implemented for SQLite and PostgreSQL, not {dialect}")
    statement = insert(table)
    if update:
        statement = statement.on_conflict_do_update(
            index_elements=list(key), set_={name: statement.excluded[name] for name in update}
        )
    else:
        statement = statement.on_conflict_do_nothing(index_elements=list(key))
    # executemany: the statement is compiled once and the driver streams the parameter sets.
    connection.execute(statement, _by_row(columns))
    return count


@overload
def insert_new_columns(
    connection: Connection, model: type[SQLModel] | Table, columns: Columns, *, key: Sequence[str]
) -> int: ...


@overload
def insert_new_columns(
    connection: Connection,
    model: type[SQLModel] | Table,
    columns: Columns,
    *,
    key: Sequence[str],
    returning: str,
) -> list[Any]: ...


def insert_new_columns(
    connection: Connection,
    model: type[SQLModel] | Table,
    columns: Columns,
    *,
    key: Sequence[str],
    returning: str | None = None,
) -> int | list[Any]:
    """Insert the rows of ``columns`` whose ``key`` is not stored yet (ON CONFLICT DO NOTHING).
    Returns how many were inserted, or -1 when the driver cannot tell; with ``returning`` (a
    column name; PostgreSQL only) the distinct values of that column among the rows inserted."""
    count = _length(columns)
    if not count:
        return [] if returning else 0
    table = _table(model)
    if returning is not None:
        if connection.dialect.name != "postgresql":
            raise NotImplementedError("insert_new_columns(returning=...) is for PostgreSQL")
        return _postgres_copy_new(connection, table, columns, tuple(key), returning)
    if connection.dialect.name == "sqlite":
        inserted = _sqlite_prepared_insert(connection, table, columns, count, tuple(key), ())
        if inserted is not None:
            return inserted
        insert = sqlite.insert
    elif connection.dialect.name == "postgresql":
        prepared_pg = _postgres_statement(connection.dialect, table, tuple(columns), tuple(key), ())
        if prepared_pg is not None:
            sql, processors, defaults = prepared_pg
            result = connection.exec_driver_sql(sql, _arrays(columns, processors, defaults))
            return int(result.rowcount)
        insert = postgresql.insert
    else:  # pragma: no cover - the two dialects leadsync supports
        raise NotImplementedError(
            f"bulk insert is implemented for SQLite and PostgreSQL, not {connection.dialect.name}"
        )
    statement = insert(table).on_conflict_do_nothing(index_elements=list(key))
    result = connection.execute(statement, _by_row(columns))
    return int(result.rowcount) if result.rowcount is not None else -1


def insert_many(
    connection: Connection, model: type[SQLModel] | Table, rows: Sequence[Mapping[str, Any]]
) -> int:
    """Plain INSERT of ``rows`` (all with the same keys), on SQLite through the same prepared path
    as ``upsert``. Returns the number of rows sent."""
    if not rows:
        return 0
    table = _table(model)
    columns = _by_column(rows)
    if (
        connection.dialect.name == "sqlite"
        and _sqlite_prepared_insert(connection, table, columns, len(rows), (), ()) is not None
    ):
        return len(rows)
    if connection.dialect.name == "postgresql" and _postgres_unnest(
        connection, table, columns, len(rows), (), ()
    ):
        return len(rows)
    connection.execute(table.insert(), list(rows))
    return len(rows)


def _by_column(rows: Sequence[Mapping[str, Any]]) -> dict[str, list[Any]]:
    return {name: [row[name] for row in rows] for name in rows[0]} if rows else {}


def _by_row(columns: Columns) -> list[dict[str, Any]]:
    names = list(columns)
    return [dict(zip(names, values, strict=True)) for values in zip(*columns.values(), strict=True)]


def _length(columns: Columns) -> int:
    lengths = {len(values) for values in columns.values()}
    if len(lengths) > 1:
        raise ValueError(f"columns of different lengths: {sorted(lengths)}")
    return lengths.pop() if lengths else 0


def _sqlite_prepared_insert(
    connection: Connection,
    table: Table,
    columns: Columns,
    count: int,
    key: tuple[str, ...],
    update: tuple[str, ...],
) -> int | None:
    """Send the rows of ``columns`` through the prepared SQLite statement (``key`` empty: a plain
    INSERT) and return the rows SQLite inserted or updated; None, having sent nothing, when the
    table needs SQLAlchemy's general path."""
    prepared = _sqlite_statement(connection.dialect, table, tuple(columns), key, update)
    if prepared is None:
        return None
    sql, processors, defaults = prepared
    return _sqlite_send(connection, sql, _values(columns, count, processors, defaults))


#: Rows per multi-row INSERT on SQLite (fewer where the statement's ``?`` would pass SQLite's limit).
SQLITE_ROWS_PER_STATEMENT = 500


def _sqlite_send(connection: Connection, sql: str, rows: list[tuple[Any, ...]]) -> int:
    """``rows`` through ``sql`` (an INSERT of one row of ``?``), up to ``SQLITE_ROWS_PER_STATEMENT``
    rows a statement; returns the rows SQLite inserted or updated.

    Not ``executemany``: Python's sqlite3 lets go of the interpreter lock around every row's
    ``sqlite3_step`` (CPython ``Modules/_sqlite/cursor.c``, ``stmt_step``), and while another thread
    runs Python, each row then waits to get the lock back, up to the switch interval (5 ms). 42,878
    events with one busy thread beside them took 73-100 s this way and 1.5 s as statements of 500
    rows (the same CPU alone: 0.17-0.2 s either way). A Mailchimp pull, whose other threads mostly
    wait on the network, measured the same either way (median of 6 side by side: 1.84 s, 1.83 s).
    """
    if not rows:
        return 0
    limit = connection.connection.driver_connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    per = max(1, min(SQLITE_ROWS_PER_STATEMENT, limit // max(1, len(rows[0]))))
    changed = 0
    for start in range(0, len(rows), per):
        chunk = rows[start : start + per]
        parameters = tuple(chain.from_iterable(chunk))
        changed += connection.exec_driver_sql(_rows_sql(sql, len(chunk)), parameters).rowcount
    return changed


@lru_cache(maxsize=1024)
def _rows_sql(sql: str, rows: int) -> str:
    """``sql``, an INSERT of one row of ``?`` marks, inserting ``rows`` rows (SQLite 3.8.8 and later
    put no limit on a VALUES list's rows: https://www.sqlite.org/lang_select.html#values)."""
    start = sql.index(" VALUES (") + len(" VALUES ")
    end = sql.index(")", start) + 1
    return sql[:start] + ", ".join(repeat(sql[start:end], rows)) + sql[end:]


Processor = Callable[[Any], Any] | None


def _values(
    columns: Columns, count: int, processors: tuple[Processor, ...], defaults: tuple[Any, ...]
) -> list[tuple[Any, ...]]:
    """The driver's parameter tuples: each column's bind processor mapped over it, then the columns
    (and the left-out columns' defaults) zipped into tuples."""
    values: list[Iterable[Any]] = [
        map(process, column) if process is not None else column
        for column, process in zip(columns.values(), processors, strict=True)
    ]
    values.extend(repeat(default, count) for default in defaults)
    return list(zip(*values, strict=True))


def _utc_text(general: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """A bind processor for sqlmodel's ``UTCDateTime`` on SQLite that gives ``general``'s text for
    a UTC datetime without its two steps (``astimezone``, then SQLAlchemy's ``%``-format of seven
    fields): ``isoformat`` in C, less its ``+00:00``. Every ingested event has one such value, and
    they nearly all come in UTC; any other value (another offset, naive, None) goes to ``general``.
    """

    # the last UTC value and its text, as one tuple (read and replaced whole, so threads sharing
    # this processor never pair a value with another's text): a re-score stamps every row with one
    # ``now``, which was formatted twice a person
    last: list[tuple[Any, str]] = [(object(), "")]

    def process(value: Any) -> Any:
        known, text = last[0]
        if value is known:
            return text
        if type(value) is datetime and value.tzinfo is UTC:
            text = value.isoformat(" ", "microseconds")[:26]  # "YYYY-MM-DD HH:MM:SS.ffffff"
            last[0] = (value, text)
            return text
        return general(value)

    return process


@lru_cache(maxsize=256)
def _sqlite_statement(
    dialect: Dialect, table: Table, columns: tuple[str, ...], key: tuple[str, ...], update: tuple[str, ...]
) -> tuple[str, tuple[Processor, ...], tuple[Any, ...]] | None:
    """``INSERT ... ON CONFLICT`` text with ``?`` placeholders, the bind processor of each given
    column, and the processed scalar defaults of the columns left out (what SQLAlchemy would fill
    in). None when a left-out column has a non-scalar default: then the general path is used."""
    missing = [
        column for column in table.columns if column.name not in columns and column.default is not None
    ]
    if any(not column.default.is_scalar for column in missing):  # type: ignore[union-attr]
        return None
    quote = dialect.identifier_preparer.quote

    def processor(column: Column[Any]) -> Processor:
        process = column.type.dialect_impl(dialect).bind_processor(dialect)
        if isinstance(column.type, UTCDateTime) and process is not None:
            return _utc_text(process)
        return process

    given = [table.columns[name] for name in columns]
    processors = tuple(processor(column) for column in given)
    defaults = []
    for column in missing:
        process = processor(column)
        value = column.default.arg  # type: ignore[union-attr]
        defaults.append(process(value) if process else value)
    names = ", ".join(quote(column.name) for column in [*given, *missing])
    marks = ", ".join("?" for _ in range(len(given) + len(missing)))
    target = ", ".join(quote(name) for name in key)
    if update:
        action = "DO UPDATE SET " + ", ".join(f"{quote(name)} = excluded.{quote(name)}" for name in update)
    else:
        action = "DO NOTHING"
    sql = f"INSERT INTO {dialect.identifier_preparer.format_table(table)} ({names}) VALUES ({marks})"
    if key:  # no key: a plain INSERT (insert_many)
        sql += f" ON CONFLICT ({target}) {action}"
    return sql, processors, tuple(defaults)


def _postgres_unnest(
    connection: Connection,
    table: Table,
    columns: Columns,
    count: int,
    key: tuple[str, ...],
    update: tuple[str, ...],
) -> bool:
    """Send the rows of ``columns`` as one ``INSERT ... SELECT FROM unnest(arrays)`` (``key`` empty:
    a plain INSERT); False, having sent nothing, when the table needs SQLAlchemy's general path."""
    prepared = _postgres_statement(connection.dialect, table, tuple(columns), key, update)
    if prepared is None:
        return False
    sql, processors, defaults = prepared
    connection.exec_driver_sql(sql, _arrays(columns, processors, defaults))
    return True


def _postgres_copy_new(
    connection: Connection, table: Table, columns: Columns, key: tuple[str, ...], returning: str
) -> list[Any]:
    """``insert_new_columns(returning=...)`` on PostgreSQL: the rows go by COPY into a temporary
    staging table of the given columns, then ``INSERT ... SELECT ... ON CONFLICT DO NOTHING`` moves
    the new ones over, returning the distinct values of ``returning`` among them. COPY formats each
    row in psycopg's C code, where ``unnest``'s arrays were dumped element by element in Python (a
    third of the ingest's client time per page, in a py-spy profile of ``bench.local ingest``)."""
    prepared = _postgres_staging(connection.dialect, table, tuple(columns), key, returning)
    if prepared is None:
        raise NotImplementedError(f"{table.name}: a left-out column has a non-scalar default")
    create, clear, copy_sql, insert, processors, defaults = prepared
    # per transaction, not once per connection: through a transaction-mode pooler (pgbouncer) the
    # next transaction may run on another server session, where the table is not there yet. It
    # empties itself at commit (ON COMMIT DELETE ROWS); ``clear`` covers a second use in one transaction.
    connection.exec_driver_sql(create)
    connection.exec_driver_sql(clear)
    _copy_rows(connection, copy_sql, zip(*_arrays(columns, processors, ()), strict=True))
    return list(connection.exec_driver_sql(insert, defaults).scalars())


def _copy_rows(connection: Connection, sql: str, rows: Iterable[Sequence[Any]]) -> None:
    """``COPY ... FROM STDIN`` of ``rows`` on the connection's psycopg cursor (SQLAlchemy has no COPY).
    A driver error is raised as SQLAlchemy's would be: a lost connection is invalidated, and the
    ``DBAPIError`` says so, which is what the ingest's retry of a page looks for."""
    dbapi_connection = connection.connection.dbapi_connection
    cursor = dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        with cursor.copy(sql) as copy:
            for row in rows:
                copy.write_row(row)
    except connection.dialect.loaded_dbapi.Error as exc:
        lost = connection.dialect.is_disconnect(exc, dbapi_connection, cursor)
        if lost:
            connection.invalidate(exc)
        raise DBAPIError.instance(
            sql,
            None,
            exc,
            connection.dialect.loaded_dbapi.Error,
            connection_invalidated=lost,
            dialect=connection.dialect,
        ) from exc
    finally:
        cursor.close()


@lru_cache(maxsize=64)
def _postgres_staging(
    dialect: Dialect, table: Table, columns: tuple[str, ...], key: tuple[str, ...], returning: str
) -> tuple[str, str, str, str, tuple[Processor, ...], tuple[Any, ...]] | None:
    """The SQL of ``_postgres_copy_new``: the staging table's CREATE and DELETE, the COPY and the INSERT; the
    bind processor of each given column and the processed defaults of the columns left out."""
    missing = [
        column for column in table.columns if column.name not in columns and column.default is not None
    ]
    if any(not column.default.is_scalar for column in missing):  # type: ignore[union-attr]
        return None
    quote = dialect.identifier_preparer.quote
    given = [table.columns[name] for name in columns]
    processors = tuple(column.type.dialect_impl(dialect).bind_processor(dialect) for column in given)
    defaults = []
    for column in missing:
        process = column.type.dialect_impl(dialect).bind_processor(dialect)
        value = column.default.arg  # type: ignore[union-attr]
        defaults.append(process(value) if process else value)
    staging = quote(f"leadsync_staging_{table.name}_{zlib.crc32(','.join(columns).encode()):08x}")
    names = ", ".join(quote(column.name) for column in given)
    create = (
        f"CREATE TEMPORARY TABLE IF NOT EXISTS {staging} ("
        + ", ".join(f"{quote(column.name)} {column.type.compile(dialect=dialect)}" for column in given)
        + ") ON COMMIT DELETE ROWS"
    )
    constants = "".join(f", %s::{column.type.compile(dialect=dialect)}" for column in missing)
    target = ", ".join(quote(column.name) for column in [*given, *missing])
    quoted = quote(returning)
    insert = (
        f"WITH inserted AS (INSERT INTO {dialect.identifier_preparer.format_table(table)} ({target}) "
        f"SELECT {names}{constants} FROM {staging} "
        f"ON CONFLICT ({', '.join(quote(name) for name in key)}) DO NOTHING RETURNING {quoted}) "
        f"SELECT DISTINCT {quoted} FROM inserted"
    )
    copy = f"COPY {staging} ({names}) FROM STDIN"
    return create, f"DELETE FROM {staging}", copy, insert, processors, tuple(defaults)


def _arrays(
    columns: Columns, processors: tuple[Processor, ...], defaults: tuple[Any, ...]
) -> tuple[Any, ...]:
    """The driver's parameters for ``_postgres_statement``: one list per column, each value through
    its column's bind processor, then the left-out columns' defaults (scalars)."""
    arrays: list[Any] = [
        list(map(process, column)) if process is not None else list(column)
        for column, process in zip(columns.values(), processors, strict=True)
    ]
    return (*arrays, *defaults)


@lru_cache(maxsize=256)
def _postgres_statement(
    dialect: Dialect, table: Table, columns: tuple[str, ...], key: tuple[str, ...], update: tuple[str, ...]
) -> tuple[str, tuple[Processor, ...], tuple[Any, ...]] | None:
    """``INSERT ... SELECT * FROM unnest(%s::type[], ...) ... ON CONFLICT`` text, the bind processor of
    each given column and the processed scalar defaults of the columns left out. None when a left-out
    column has a non-scalar default (the general path is used then)."""
    missing = [
        column for column in table.columns if column.name not in columns and column.default is not None
    ]
    if any(not column.default.is_scalar for column in missing):  # type: ignore[union-attr]
        return None
    quote = dialect.identifier_preparer.quote

    def processor(column: Column[Any]) -> Processor:
        return column.type.dialect_impl(dialect).bind_processor(dialect)

    def sql_type(column: Column[Any]) -> str:
        return column.type.compile(dialect=dialect)

    given = [table.columns[name] for name in columns]
    processors = tuple(processor(column) for column in given)
    defaults = []
    for column in missing:
        process = processor(column)
        value = column.default.arg  # type: ignore[union-attr]
        defaults.append(process(value) if process else value)
    names = ", ".join(quote(column.name) for column in [*given, *missing])
    arrays = ", ".join(f"%b::{sql_type(column)}[]" for column in given)
    constants = "".join(f", %s::{sql_type(column)}" for column in missing)
    sql = (
        f"INSERT INTO {dialect.identifier_preparer.format_table(table)} ({names}) "
        f"SELECT *{constants} FROM unnest({arrays})"
    )
    if key:
        target = ", ".join(quote(name) for name in key)
        if update:
            action = "DO UPDATE SET " + ", ".join(
                f"{quote(name)} = excluded.{quote(name)}" for name in update
            )
        else:
            action = "DO NOTHING"
        sql += f" ON CONFLICT ({target}) {action}"
    return sql, processors, tuple(defaults)
