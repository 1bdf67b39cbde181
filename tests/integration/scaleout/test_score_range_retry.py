"""A person-range score job killed part-way (its first batches committed) is tried again: the retry
scores only the persons its pass has not scored yet, clears only their marks, and the scores equal
those of one uninterrupted pass at the same time: nobody lost, nobody scored twice."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, update

from leadsync.config.scoring_model import load_model
from leadsync.sync import workers
from leadsync.sync.rescore import claim_marks, fingerprint, persons_to_score, rescore
from leadsync.sync.scorebatch import ScoringJob, load_event_columns, score_chunk
from leadsync.sync.store import make_engine
from leadsync.sync.store.models import ChangedPerson, Person, Score, ScoreHistory, SyncRun
from tests.integration.pipeline.harness import SCORE_NOW
from tests.integration.scaleout.harness import serve_accounts, start, write_config


def _scores(engine: Any) -> dict[int, tuple[Any, ...]]:
    with engine.connect() as connection:
        return {
            row.person_id: (row.affinity, row.engagement, row.stage, row.grade, row.lifecycle, row.scored_at)
            for row in connection.execute(select(Score))
        }


def test_a_retried_range_job_scores_only_whom_its_pass_has_not_scored_yet(
    tmp_path: Path, pg_url: str
) -> None:
    with serve_accounts(1, 150) as server:
        config = write_config(
            server,
            tmp_path / "leadsync.toml",
            store_url=pg_url,
            engine="embedded",
            only=lambda source: source["name"] == "hubspot",
        )
        process = start(config, "sync", log=tmp_path / "sync.log", score_now=SCORE_NOW)
        assert process.wait(timeout=240) == 0, (tmp_path / "sync.log").read_text()[-2000:]

    engine = make_engine(pg_url)
    model = load_model(None)
    now = datetime.fromisoformat(SCORE_NOW) + timedelta(hours=6)  # a later pass: engagement decayed
    with engine.begin() as connection:
        everyone = list(connection.execute(select(Person.id).order_by(Person.id)).scalars())
        connection.execute(
            ChangedPerson.__table__.insert(),  # type: ignore[attr-defined]
            [{"person_id": pid, "changed_at": now, "version": 1} for pid in everyone],
        )
        claim_marks(connection)  # the pass claims every mark...
        listed = persons_to_score(connection, fingerprint(model), now=now, everyone=False)
    assert listed == everyone and len(everyone) > 20

    # ...its range job commits a first batch and is killed
    half = listed[: len(listed) // 2]
    with engine.connect() as connection:
        events = load_event_columns(connection, half, now).sorted_by_person()
    score_chunk(engine, ScoringJob(model, fingerprint(model), now), half, events)
    # a page ingested after the kill marks one of the scored persons again (its version leaves 0)
    remarked = half[0]
    with engine.begin() as connection:
        connection.execute(
            ChangedPerson.__table__.insert(),  # type: ignore[attr-defined]
            [{"person_id": remarked, "changed_at": now, "version": 2}],
        )

    workers._runtime = workers._Runtime(engine, None, model, workers.WorkerOptions())  # type: ignore[arg-type]
    try:
        done = workers.run_range_job("pass", 0, listed, now, worker="test", job_id=1)
    finally:
        workers._runtime = None

    rest = len(listed) - len(half)
    assert done["scored"] == rest
    with engine.connect() as connection:
        run = connection.execute(
            select(SyncRun.status, SyncRun.trigger, SyncRun.counts).where(SyncRun.command == "score-range")
        ).one()
        marks = dict(connection.execute(select(ChangedPerson.person_id, ChangedPerson.version)).all())
        history = connection.execute(select(func.count()).select_from(ScoreHistory)).scalar_one()
    assert (run.status, run.trigger, run.counts["persons_scored"]) == ("ok", "worker", rest)
    assert marks == {remarked: 2}  # only the mark set after the kill is left, for the next pass
    got = _scores(engine)
    assert {scored_at for *_, scored_at in got.values()} == {now}

    # one uninterrupted pass at the same time gives the same scores and adds no history
    with engine.begin() as connection:
        connection.execute(update(ChangedPerson).values(version=1))
    rescore(engine, model, now=now, everyone=True, workers=1)
    assert _scores(engine) == got
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(ScoreHistory)).scalar_one() == history
    engine.dispose()
