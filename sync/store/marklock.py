"""The lock between the writers of change marks and the re-scores that claim them (PostgreSQL),
and the count of claims that lets a pull mark each person once.

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

Every claim also adds one to ``markclaims`` under that lock, and a page reads the count once it
holds the lock. While the count a pull read is unchanged, every mark the pull's earlier pages
committed is still there, unclaimed, so a page need not even look those persons up again
(``MarkedContacts``): in a pull of events, the same few thousand contacts come back page after page,
and looking up each one's person and mark, only to find the mark there, was a quarter of the
ingest's time on PostgreSQL (issue 20, ``bench.local``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from sqlalchemy import Connection, insert, select, update

from leadsync.sync.store.models import MarkClaims

__all__ = ["MARKS_LOCK", "MarkedContacts", "claim_count", "lock_marks"]

# pg_advisory_xact_lock key of the change marks (any constant; this is "lsmarks" in ASCII)
MARKS_LOCK = 0x6C736D61726B73


def lock_marks(connection: Connection, *, claim: bool) -> None:
    """Take the marks lock in this transaction: exclusive to ``claim`` marks (the claim count goes
    up by one), shared to write them."""
    if connection.dialect.name == "postgresql":
        function = "pg_advisory_xact_lock" if claim else "pg_advisory_xact_lock_shared"
        connection.exec_driver_sql(f"SELECT {function}({MARKS_LOCK})")
    if claim:  # claims are one at a time (the exclusive lock; SQLite's one writer): no race on the row
        counted = connection.execute(
            update(MarkClaims).where(MarkClaims.id == 1).values(claims=MarkClaims.claims + 1)
        )
        if counted.rowcount == 0:
            connection.execute(insert(MarkClaims).values(id=1, claims=1))


def claim_count(connection: Connection) -> int | None:
    """The claim count, read once this transaction holds the marks lock (None on a store without
    the row). A statement of its own, after the lock's: under READ COMMITTED each statement sees
    what was committed when it began, so a count read in the locking statement could predate a
    claim that committed while this transaction waited for the lock."""
    return connection.execute(select(MarkClaims.claims).where(MarkClaims.id == 1)).scalar_one_or_none()


@dataclasses.dataclass
class MarkedContacts:
    """The contacts of one source whose persons one pull has marked, at one claim count: while the
    count is unchanged, their marks are still there and the pull's later pages skip them.

    ``remember`` only after the page's transaction committed. A contact the page named but whose
    person was not found (its record not pulled yet) may be remembered too: when its record comes,
    the person it creates is marked as new, and that mark stays until the count moves.
    """

    claims: int | None = None
    remote_ids: set[str] = dataclasses.field(default_factory=set)
    limit: int = 500_000  # remote ids kept at most: memory stays bounded on the largest accounts

    def unmarked(self, claims: int | None, contacts: set[str]) -> set[str]:
        """Of ``contacts``, those to mark at claim count ``claims`` (read under the lock)."""
        if claims is None or claims != self.claims:
            self.claims, self.remote_ids = claims, set()
            return contacts
        return contacts - self.remote_ids

    def remember(self, claims: int | None, contacts: Iterable[str]) -> None:
        """``contacts`` had their persons marked at ``claims`` in a transaction that committed."""
        if claims is None or claims != self.claims:
            return
        for remote_id in contacts:
            if len(self.remote_ids) >= self.limit:
                return
            self.remote_ids.add(remote_id)
