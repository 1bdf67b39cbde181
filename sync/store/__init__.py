"""The local store: tables, engine and migrations, bulk upserts."""

from leadsync.sync.store.db import make_engine, migrate, sqlite_path
from leadsync.sync.store.upsert import upsert

__all__ = ["make_engine", "migrate", "sqlite_path", "upsert"]
