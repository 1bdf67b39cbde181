"""The score step: read persons from the store, score them with the pure engine, write the scores.

Who is re-scored: persons whose data changed since their last score (a ``ChangedPerson`` row),
persons never scored, everyone when the model (or the engine) changed, and everyone whose score is
older than a day, since decay moves engagement even when nothing happens. A score-history row is
added only when a person's scores changed.

Events are read in one scan for all the persons of a run, straight into numpy columns (the event
table has no index on the contact: see ``Event``), then scored and written a batch of persons at a
time, one transaction per batch (``sync.scorebatch.score_chunk``). From ``PARALLEL_FROM`` persons on, worker
processes share the scan and the batches (``sync.rescore_workers``).

A stop request (SIGTERM/SIGINT, ``connectors.stopping``) ends a re-score between two batches: the
batches written stay, and the persons not reached keep their change marks, so the next re-score
takes them on.

A re-score claims the change marks before it reads anyone's data (``claim_marks``) and clears only
marks still claimed: a page committed meanwhile takes the claim back, and the person is scored again
next time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from sqlalchemy import Connection, Engine, or_, select, update

from leadsync.config.scoring_model import ScoringModel
from leadsync.connectors import stopping
from leadsync.scoring import ENGINE_VERSION
from leadsync.sync.rescore_workers import rescore_in_processes, worker_count
from leadsync.sync.scorebatch import RescoreCounts, ScoringJob, batch_bounds, load_event_columns, score_chunk
from leadsync.sync.store.marklock import lock_marks
from leadsync.sync.store.models import ChangedPerson, Person, Score

__all__ = ["claim_marks", "fingerprint", "persons_to_score", "rescore", "rescore_persons"]

RESCORE_AFTER = timedelta(days=1)  # decay: refresh every score at least daily


def fingerprint(model: ScoringModel) -> str:
    """What a stored score was computed with: the model's content and the engine's version."""
    return f"{model.fingerprint[:16]}:{ENGINE_VERSION}"


def persons_to_score(connection: Connection, model_fp: str, *, now: datetime, everyone: bool) -> list[int]:
    query = select(Person.id).outerjoin(Score, Score.person_id == Person.id)
    if not everyone:
        query = query.outerjoin(ChangedPerson, ChangedPerson.person_id == Person.id).where(
            or_(
                ChangedPerson.person_id.is_not(None),
                Score.person_id.is_(None),
                Score.model_fingerprint != model_fp,
                Score.scored_at < now - RESCORE_AFTER,
            )
        )
    return list(connection.execute(query.order_by(Person.id)).scalars())


def claim_marks(connection: Connection) -> None:
    """Claim every change mark for this re-score (``version`` 0), before any person's data is read.

    Every marked person is among ``persons_to_score``. An ingest that marks a claimed person moves
    the version off 0 (``sync.ingest._mark_statement``), and ``score_chunk`` clears only marks still at
    0: a page committed while the re-score read keeps its mark. (A time stamp would not do: an
    ingest stamps its ``now`` before it commits.)
    """
    lock_marks(connection, claim=True)  # waits for the pages in flight (sync.store.marklock)
    # locked in person id order first (FOR UPDATE in the subquery; SQLite has one writer anyway),
    # the order the ingest marks them in: an UPDATE's own scan order would be the table's
    marks = (
        select(ChangedPerson.person_id)
        .where(ChangedPerson.version != 0)
        .order_by(ChangedPerson.person_id)
        .with_for_update()
    )
    connection.execute(update(ChangedPerson).where(ChangedPerson.person_id.in_(marks)).values(version=0))


def rescore(
    engine: Engine,
    model: ScoringModel,
    *,
    now: datetime,
    everyone: bool = False,
    precedence: Sequence[str] = (),
    progress: Callable[[int], None] | None = None,
    workers: int | None = None,
    planned: Callable[[int], None] | None = None,
) -> RescoreCounts:
    """Re-score who needs it (see the module's docstring), ``BATCH`` persons a transaction.

    ``planned(n)`` is told how many persons this re-score takes on, ``progress(k)`` each time ``k``
    more are done.

    ``workers``: processes to share the work (None: one per CPU, up to ``MAX_WORKERS``, once there
    are ``PARALLEL_FROM`` persons to score; 1: this process only).
    """
    model_fp = fingerprint(model)
    with engine.begin() as connection:  # one transaction: no mark lands between the two
        claim_marks(connection)
        person_ids = persons_to_score(connection, model_fp, now=now, everyone=everyone)
    if planned:
        planned(len(person_ids))
    job = ScoringJob(model, model_fp, now, tuple(precedence))
    processes = worker_count(engine, len(person_ids), workers)
    if processes > 1:
        return rescore_in_processes(engine, job, person_ids, workers=processes, progress=progress)
    with engine.connect() as connection:
        events = load_event_columns(connection, person_ids, now).sorted_by_person()
    counts = RescoreCounts()
    for start, stop in batch_bounds(len(person_ids)):
        stopping.check()  # between batches: each one is its own transaction
        chunk = person_ids[start:stop]
        counts.add(score_chunk(engine, job, chunk, events.person_range(start, stop)))
        if progress:
            progress(len(chunk))
    return counts


def rescore_persons(
    engine: Engine,
    model: ScoringModel,
    person_ids: Sequence[int],
    *,
    now: datetime,
    precedence: Sequence[str] = (),
) -> RescoreCounts:
    """Re-score ``person_ids`` only (the webhook fast path), the same way ``rescore`` scores a
    batch: their marks are claimed first (``claim_marks``' rule, for these persons), so a page
    committed meanwhile keeps its mark and the next re-score takes them again."""
    ids = sorted(set(person_ids))
    if not ids:
        return RescoreCounts()
    with engine.begin() as connection:
        lock_marks(connection, claim=True)
        connection.execute(
            update(ChangedPerson)
            .where(ChangedPerson.person_id.in_(ids), ChangedPerson.version != 0)  # type: ignore[attr-defined]
            .values(version=0)
        )
    job = ScoringJob(model, fingerprint(model), now, tuple(precedence))
    with engine.connect() as connection:
        events = load_event_columns(connection, ids, now).sorted_by_person()
    return score_chunk(engine, job, ids, events.person_range(0, len(ids)))
