"""The local store: tables, engine and migrations, bulk upserts."""

from leadsync.sync.store.db import StoreError, make_engine, migrate, public_url, sqlite_path, store_url
from leadsync.sync.store.upsert import upsert

__all__ = ["StoreError", "make_engine", "migrate", "public_url", "sqlite_path", "store_url", "upsert"]
