"""The lock between the writers of change marks and the re-scores that claim them (PostgreSQL).

An ingest marks the persons of its page for re-scoring (``sync.ingest``), but a person already
marked, and not claimed by a re-score, is left as it is: no row lock and no rewrite, which was most
of the marking's cost (every page of a pull locked, and rewrote, the marks of hundreds of persons
that earlier pages had marked). That is only safe if no re-score claims such a mark (and so reads
the person's data) while the page that skipped it is still uncommitted: its events would then be
neither read by that re-score nor marked for the next one.

So every transaction that marks takes this lock shared, just before it marks (the last lock it
takes: nothing it waits for afterwards can be waiting for a claim), and every claim takes it
exclusive: a claim waits for the pages in flight to commit, and a page that starts meanwhile waits
for the claim, then sees the claimed marks and moves them off 0. Both are transaction locks,
released at commit or rollback. SQLite needs none: it has one writer at a time.
"""

from __future__ import annotations

from sqlalchemy import Connection

__all__ = ["MARKS_LOCK", "lock_marks"]

# pg_advisory_xact_lock key of the change marks (any constant; this is "lsmarks" in ASCII)
MARKS_LOCK = 0x6C736D61726B73


def lock_marks(connection: Connection, *, claim: bool) -> None:
    """Take the marks lock in this transaction: exclusive to ``claim`` marks, shared to write them."""
    if connection.dialect.name != "postgresql":
        return
    function = "pg_advisory_xact_lock" if claim else "pg_advisory_xact_lock_shared"
    connection.exec_driver_sql(f"SELECT {function}({MARKS_LOCK})")
