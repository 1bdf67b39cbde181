"""Store faults in one line each: which SQLite or OS error is which fault, and what it says."""

from __future__ import annotations

import errno
import pickle
import sqlite3

import pytest
from sqlalchemy.exc import OperationalError

from leadsync.sync.store.db import head_revision, inspect_store, make_engine
from leadsync.sync.store.faults import StoreError, classify, store_error

URL = "sqlite:////var/lib/leadsync/leadsync.db"


@pytest.mark.parametrize(
    ("message", "kind", "said"),
    [
        ("attempt to write a readonly database", "read_only", "is read-only"),
        ("unable to open database file", "cannot_open", "must exist and be writable"),
        ("database disk image is malformed", "damaged", "is damaged"),
        ("file is not a database", "not_a_database", "is not a leadsync store"),
        ("database or disk is full", "disk_full", "is full"),
        ("database is locked", "locked", "locked by another program (waited 30 s)"),
    ],
)
def test_each_sqlite_fault_names_the_store_and_what_to_do(message: str, kind: str, said: str) -> None:
    wrapped = OperationalError("INSERT ...", {}, sqlite3.OperationalError(message))
    assert classify(wrapped) == kind
    fault = store_error(wrapped, URL)
    assert fault is not None and fault.kind == kind
    assert "/var/lib/leadsync/leadsync.db" in str(fault) and said in str(fault), str(fault)
    assert "\n" not in str(fault)


def test_os_errors_of_the_store_file_are_faults_and_others_are_not() -> None:
    assert classify(OSError(errno.ENOSPC, "No space left on device")) == "disk_full"
    assert classify(OSError(errno.EROFS, "Read-only file system")) == "read_only"
    assert classify(PermissionError(errno.EACCES, "Permission denied")) == "cannot_open"
    assert classify(OperationalError("SELECT x", {}, sqlite3.OperationalError("no such column: x"))) is None
    assert classify(ValueError("database is locked")) is None  # only the database's own errors count


def test_a_store_error_survives_pickling_from_a_worker_process() -> None:
    fault = StoreError("store x is full", kind="disk_full", store="x")
    back = pickle.loads(pickle.dumps(fault))
    assert (str(back), back.kind, back.store) == ("store x is full", "disk_full", "x")


def test_check_reads_the_schema_version_of_a_good_store(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    assert inspect_store(url) == (True, f"SQLite at {tmp_path / 'store.db'} (created on first run)")
    make_engine(url).dispose()
    ok, detail = inspect_store(url)
    assert ok and f"reachable; schema {head_revision()} (current)" in detail, detail


def test_a_garbage_file_fails_to_open_with_a_store_error(tmp_path) -> None:
    path = tmp_path / "store.db"
    path.write_bytes(b"not a database at all" * 100)
    with pytest.raises(StoreError, match="is not a leadsync store"):
        make_engine(f"sqlite:///{path}")
    ok, detail = inspect_store(f"sqlite:///{path}")
    assert not ok and str(path) in detail
