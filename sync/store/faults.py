"""Store faults: the store file or its disk is in a state leadsync cannot work with.

A read-only file, a damaged (truncated) file, a file that is not a SQLite database, a folder that
cannot be written, a full disk, a store another program holds locked past the busy timeout, a
disk that answers with I/O errors. Each becomes one ``StoreError`` that names the store and says
what to do; the CLI prints it as one line and exits 2 (``sync.cli.app.print_error``).

Nothing is lost by such a fault: every page is committed with its cursor in one transaction
(DESIGN.md "Sync state"), so a transaction the fault broke is rolled back whole and the next run
on a good store reads it again.

The messages SQLite gives are listed in its result-code documentation
(https://www.sqlite.org/rescode.html): SQLITE_READONLY "attempt to write a readonly database",
SQLITE_CANTOPEN "unable to open database file", SQLITE_CORRUPT "database disk image is malformed",
SQLITE_NOTADB "file is not a database", SQLITE_FULL "database or disk is full", SQLITE_BUSY
"database is locked", SQLITE_IOERR "disk I/O error".
"""

from __future__ import annotations

import errno
import shutil
from pathlib import Path

from sqlalchemy.engine import make_url

from leadsync.connectors.errors import LeadsyncError

__all__ = ["BUSY_TIMEOUT_S", "StoreError", "classify", "store_error", "store_name"]

BUSY_TIMEOUT_S = 30  # how long a write waits for another program's lock (make_engine's busy_timeout)

_MESSAGES = (
    ("readonly database", "read_only"),
    ("read-only file system", "read_only"),
    ("unable to open database file", "cannot_open"),
    ("database disk image is malformed", "damaged"),
    ("file is not a database", "not_a_database"),
    ("database or disk is full", "disk_full"),
    ("no space left on device", "disk_full"),
    ("database is locked", "locked"),
    ("database table is locked", "locked"),
    ("disk i/o error", "io_error"),
)

_ERRNO = {
    errno.ENOSPC: "disk_full",
    errno.EDQUOT: "disk_full",
    errno.EROFS: "read_only",
    errno.EACCES: "cannot_open",
    errno.EPERM: "cannot_open",
    errno.ENOENT: "cannot_open",
    errno.ENOTDIR: "cannot_open",
    errno.EIO: "io_error",
}


class StoreError(LeadsyncError):
    """The store cannot be used as it is; the message names it and says what to do (exit 2)."""

    exit_code = 2
    label = "store error"

    def __init__(self, message: str, *, kind: str, store: str) -> None:
        self.kind, self.store = kind, store
        super().__init__(message)

    def __reduce__(self) -> tuple[object, ...]:  # re-score worker processes send it back pickled
        return (_rebuild, (str(self), self.kind, self.store))


def _rebuild(message: str, kind: str, store: str) -> StoreError:
    return StoreError(message, kind=kind, store=store)


def store_name(url: str) -> str:
    """The store as the user named it: the SQLite file, or the URL without its password."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:":
        return str(Path(parsed.database))
    return parsed.render_as_string(hide_password=True)


def classify(exc: BaseException) -> str | None:
    """The kind of store fault ``exc`` (or an exception it wraps) is, or None if it is no fault of
    the store (a bug, a constraint, a cancelled statement)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, StoreError):
            return current.kind
        if isinstance(current, OSError) and current.errno in _ERRNO:
            return _ERRNO[current.errno]
        text = str(current).lower()
        if type(current).__module__.startswith(("sqlite3", "sqlalchemy")) or isinstance(current, OSError):
            for needle, kind in _MESSAGES:
                if needle in text:
                    return kind
        current = getattr(current, "orig", None) or current.__cause__ or current.__context__
    return None


def _free(folder: Path) -> str:
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return "free space unknown"
    for unit in ("bytes", "KB", "MB", "GB"):
        if free < 1024 or unit == "GB":
            return f"{free:.0f} {unit} free" if unit == "bytes" else f"{free:.1f} {unit} free"
        free /= 1024
    return ""  # pragma: no cover


def store_error(exc: BaseException, url: str, *, lock_timeout: float = BUSY_TIMEOUT_S) -> StoreError | None:
    """``exc`` as a ``StoreError`` for the store at ``url``, or None if it is no store fault."""
    kind = classify(exc)
    if kind is None:
        return None
    if isinstance(exc, StoreError):
        return exc
    name = store_name(url)
    parsed = make_url(url)
    is_file = (
        parsed.get_backend_name() == "sqlite" and bool(parsed.database) and parsed.database != ":memory:"
    )
    folder = Path(name).resolve().parent if is_file else None
    if kind == "io_error" and folder is not None and shutil.disk_usage(folder).free < 1024 * 1024:
        kind = "disk_full"  # SQLite reports a full disk while growing its -shm file as an I/O error
    rebuild = "or move it aside and run `leadsync sync` to rebuild the store from the platforms"
    message = {
        "read_only": f"store {name} is read-only: make it (and its folder) writable by the user "
        "leadsync runs as, or set store.url to a writable copy; nothing was written",
        "cannot_open": f"cannot open or create store {name}: its folder "
        f"{folder if folder is not None else ''} must exist and be writable by the user leadsync "
        "runs as (SQLite keeps its -wal and -shm files beside the store)",
        "damaged": f"store {name} is damaged (truncated or corrupt): restore it from a backup, {rebuild}",
        "not_a_database": f"{name} is not a leadsync store (not a SQLite database): check store.url, "
        f"{rebuild}",
        "disk_full": f"the disk holding store {name} is full "
        f"({_free(folder) if folder is not None else 'no space left'}): free some space and run again; "
        "what was committed is kept and the next run goes on from there",
        "locked": f"store {name} is locked by another program (waited {lock_timeout:g} s): stop the "
        "program that holds it (a database browser, a backup tool) and run again",
        "io_error": f"the disk holding store {name} reports an I/O error: check the disk and its free "
        "space; what was committed is kept",
    }[kind]
    return StoreError(message, kind=kind, store=name)
