"""``column IN (ids)`` for long lists of ids, sent as one bound value on SQLite.

An expanding IN has one placeholder per id, so SQLAlchemy renders a new statement text for each
length of list (400,000 placeholder names over one ingest of 400 pages) and the driver prepares each
text again. On SQLite the ids go instead as one JSON array that ``json_each`` reads back: the text is
the same for any number of ids, and SQLite's limit on bound parameters does not apply (``json_each``
is SQLite's JSON1, built in since 3.38 and compiled into the builds Python ships before that). On
PostgreSQL the ids go as one array, ``column = ANY(:ids)``: one statement text, planned once, for any
number of ids (an expanding IN sent 5,000 parameters for a page of 5,000 ids).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import any_, bindparam, func, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.sql.elements import ColumnElement

__all__ = ["bound_ids", "in_ids"]


def in_ids(
    column: Any, dialect: str, ids: Sequence[Any] | None = None, *, name: str = "ids"
) -> ColumnElement[bool]:
    """``column IN ids``. With ``ids`` None the list is bound at execution, as
    ``{name: bound_ids(dialect, ids)}``: for a statement built once and executed many times."""
    if dialect == "sqlite":
        # unique: two lists in one statement get a bound name each
        param = bindparam(name) if ids is None else bindparam(name, bound_ids(dialect, ids), unique=True)
        return column.in_(select(func.json_each(param).table_valued("value").c.value))
    if dialect == "postgresql":
        array = ARRAY(column.type)
        param = (
            bindparam(name, type_=array)
            if ids is None
            else bindparam(name, list(ids), type_=array, unique=True)
        )
        return column == any_(param)
    if ids is None:
        return column.in_(bindparam(name, expanding=True))
    return column.in_(list(ids))


def bound_ids(dialect: str, ids: Sequence[Any]) -> Any:
    """What ``in_ids`` binds for ``ids`` on ``dialect``: on SQLite a JSON array (strings and
    integers, read back as TEXT and INTEGER), elsewhere the list itself."""
    return json.dumps(list(ids)) if dialect == "sqlite" else list(ids)
