"""The local store: tables, engine and migrations, bulk upserts."""

from leadsync.sync.store.db import (
    StoreSettingError,
    make_engine,
    migrate,
    public_url,
    sqlite_path,
    store_url,
)
from leadsync.sync.store.faults import StoreError
from leadsync.sync.store.upsert import upsert

__all__ = [
    "StoreError",
    "StoreSettingError",
    "make_engine",
    "migrate",
    "public_url",
    "sqlite_path",
    "store_url",
    "upsert",
]
