"""Leases: two processes on the same store never sync the same source at once.

A lease is a row (name, holder, expiry). Taking it is one conditional write, atomic on SQLite and
PostgreSQL alike: insert if absent, else take over only if expired or already ours. The holder
renews it from a background thread while it works, so a crashed process loses it after ``ttl``.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, delete, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from leadsync.connectors.errors import LeadsyncError
from leadsync.sync.store.db import retry_lost_connection
from leadsync.sync.store.models import Lease

__all__ = [
    "DAEMON_LEASE",
    "LeaseHeld",
    "LeaseKeeper",
    "acquire",
    "daemon_heartbeat",
    "holder_id",
    "live_daemons",
    "process_gone",
    "release",
    "renew",
]

# A running daemon holds a lease of its own, ``daemon:<holder>``, renewed while it lives: its
# heartbeat. ``status`` reads it to tell whether runs are scheduled at all.
DAEMON_LEASE = "daemon:"

log = logging.getLogger("leadsync.lease")


class LeaseHeld(LeadsyncError):
    """Another process holds the lease: say who, and until when."""

    def __init__(self, name: str, holder: str, expires_at: datetime) -> None:
        self.name, self.holder, self.expires_at = name, holder, expires_at
        super().__init__(
            f"source {name!r} is being synced by {holder} (lease until {expires_at:%Y-%m-%d %H:%M:%S} UTC); "
            "try again after that, or stop the other process"
        )


def holder_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def acquire(
    engine: Engine, name: str, holder: str, *, ttl: timedelta, now: datetime | None = None
) -> datetime:
    """Take the lease or raise ``LeaseHeld``. Returns the new expiry."""
    now = now or datetime.now(UTC)
    expires = now + ttl
    table = Lease.__table__  # type: ignore[attr-defined]
    with engine.begin() as connection:
        insert = (sqlite.insert if connection.dialect.name == "sqlite" else postgresql.insert)(table)
        inserted = connection.execute(
            insert.values(
                name=name, holder=holder, acquired_at=now, expires_at=expires
            ).on_conflict_do_nothing(index_elements=["name"])
        )
        if inserted.rowcount == 1:
            return expires
        taken = connection.execute(
            update(table)
            .where(table.c.name == name, or_(table.c.expires_at < now, table.c.holder == holder))
            .values(holder=holder, acquired_at=now, expires_at=expires)
        )
        if taken.rowcount == 1:
            return expires
        row = connection.execute(select(table.c.holder, table.c.expires_at).where(table.c.name == name)).one()
        if process_gone(row.holder):
            # A process on this host that died (SIGKILL, OOM) cannot renew or release: take its
            # lease now instead of refusing the next run until the lease expires.
            stolen = connection.execute(
                update(table)
                .where(table.c.name == name, table.c.holder == row.holder)
                .values(holder=holder, acquired_at=now, expires_at=expires)
            )
            if stolen.rowcount == 1:
                log.warning("took over lease %s from %s: that process is gone", name, row.holder)
                return expires
    raise LeaseHeld(name, row.holder, _utc(row.expires_at))


def process_gone(holder: str) -> bool:
    """True only when ``holder`` names a process on this host that no longer exists."""
    host, _, rest = holder.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # alive, someone else's
    return False


def renew(engine: Engine, name: str, holder: str, *, ttl: timedelta, now: datetime | None = None) -> bool:
    """Extend our lease; False if it is no longer ours."""
    now = now or datetime.now(UTC)
    table = Lease.__table__  # type: ignore[attr-defined]
    with engine.begin() as connection:
        result = connection.execute(
            update(table).where(table.c.name == name, table.c.holder == holder).values(expires_at=now + ttl)
        )
    return result.rowcount == 1


def release(engine: Engine, name: str, holder: str) -> None:
    table = Lease.__table__  # type: ignore[attr-defined]
    with engine.begin() as connection:
        connection.execute(delete(table).where(table.c.name == name, table.c.holder == holder))


class LeaseKeeper:
    """Hold a lease for the duration of a ``with`` block, renewing it every ``ttl / 3``.

    If a renewal finds the lease taken (this process stalled past its expiry), ``lost`` is set and
    ``on_lost`` is called; the work loop should check ``lost`` and stop before writing more.
    """

    def __init__(
        self,
        engine: Engine,
        name: str,
        *,
        holder: str | None = None,
        ttl: timedelta = timedelta(seconds=60),
        on_lost: Callable[[], None] | None = None,
    ) -> None:
        self.engine, self.name, self.ttl = engine, name, ttl
        self.holder = holder or holder_id()
        self.on_lost = on_lost
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._since = 0.0

    def __enter__(self) -> LeaseKeeper:
        # taken again on a new connection when the store's was lost: a lease already ours is
        # simply extended (``acquire``), and ``LeaseHeld`` is an answer, not a lost connection
        retry_lost_connection(
            lambda: acquire(self.engine, self.name, self.holder, ttl=self.ttl),
            what=f"taking lease {self.name}",
        )
        # after the take, and ``until`` before the release: the logged span lies inside the time
        # held, so two holders' spans never overlap. (Taken before the take, a standby's attempt
        # that began just before the holder's release committed overlapped it by milliseconds.)
        self._since = time.time()
        self._thread = threading.Thread(target=self._renew_loop, name=f"lease-{self.name}", daemon=True)
        self._thread.start()
        return self

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.ttl.total_seconds() / 3):
            try:
                ok = renew(self.engine, self.name, self.holder, ttl=self.ttl)
            except Exception as exc:  # noqa: BLE001 - a failed renewal is retried on the next tick
                log.warning("could not renew lease %s: %s", self.name, exc)
                continue
            if not ok:
                log.error("lost the lease on %s: another process took it", self.name)
                self.lost.set()
                if self.on_lost:
                    self.on_lost()
                return

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        until = time.time()
        if not self.lost.is_set():
            retry_lost_connection(
                lambda: release(self.engine, self.name, self.holder), what=f"releasing lease {self.name}"
            )
        log.info("lease %s held by %s from %.6f to %.6f", self.name, self.holder, self._since, until)


def daemon_heartbeat(engine: Engine, *, ttl: timedelta = timedelta(seconds=60)) -> LeaseKeeper:
    """The lease a daemon holds while it runs (``with daemon_heartbeat(engine): ...``)."""
    holder = holder_id()
    return LeaseKeeper(engine, f"{DAEMON_LEASE}{holder}", holder=holder, ttl=ttl)


def live_daemons(engine: Engine, *, now: datetime | None = None) -> list[dict[str, object]]:
    """The daemons running on this store: a fresh heartbeat whose process is not known to be gone."""
    now = now or datetime.now(UTC)
    table = Lease.__table__  # type: ignore[attr-defined]
    with engine.connect() as connection:
        rows = connection.execute(select(table).where(table.c.name.startswith(DAEMON_LEASE))).all()
    return [
        {"holder": row.holder, "since": _utc(row.acquired_at), "expires_at": _utc(row.expires_at)}
        for row in rows
        if _utc(row.expires_at) > now and not process_gone(row.holder)
    ]
