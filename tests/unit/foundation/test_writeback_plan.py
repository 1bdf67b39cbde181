"""Change-only write-back planning: which identities get an update, and what it carries."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from leadsync.sync.store import make_engine
from leadsync.sync.store.models import Attributes, Identity, Person, Score, WritebackState
from leadsync.sync.writeback import VALUE_FIELDS, desired_values, plan_writes

NOW = datetime(2026, 11, 1, 12, tzinfo=UTC)
SCORE = {
    "affinity": 61.0,
    "engagement": 42.0,
    "stage": "decision",
    "grade": "B2",
    "lifecycle": "marketing_qualified_lead",
    "reason": "Pricing page 3 times (+18 points)",
}


def _store(store_url, *, pushed: dict[str, str], lifecycle_seen: str | None = "lead", score=SCORE):
    engine = make_engine(store_url)
    with engine.begin() as connection:
        connection.execute(
            Person.__table__.insert(),
            [{"id": 1, "email": "ada@example.com", "created_at": NOW, "updated_at": NOW, "dirty": False}],
        )
        connection.execute(
            Identity.__table__.insert(),
            [
                {
                    "source": "hubspot",
                    "platform": "hubspot",
                    "remote_id": "101",
                    "email": "ada@example.com",
                    "person_id": 1,
                    "seen_at": NOW,
                }
            ],
        )
        connection.execute(
            Attributes.__table__.insert(),
            [{"source": "hubspot", "remote_id": "101", "lifecycle_stage": lifecycle_seen, "raw": {}}],
        )
        connection.execute(
            Score.__table__.insert(),
            [{"person_id": 1, **score, "contributions": [], "model_fingerprint": "m", "scored_at": NOW}],
        )
        if pushed:
            connection.execute(
                WritebackState.__table__.insert(),
                [
                    {"source": "hubspot", "remote_id": "101", "field": k, "value": v, "pushed_at": NOW}
                    for k, v in pushed.items()
                ],
            )
    return engine


def _plan(engine):
    with engine.connect() as connection:
        return plan_writes(connection, "hubspot", prefix="leadsync_", lifecycle_writeback=True, now=NOW)


def _as_pushed(**overrides: str) -> dict[str, str]:
    score = type("S", (), SCORE)()
    pushed = {k: v for k, v in desired_values(score, scored_at=NOW).items() if k in VALUE_FIELDS}
    pushed |= {
        "tag:stage": "leadsync_stage_decision",
        "tag:lifecycle": "leadsync_lifecycle_marketing_qualified_lead",
        "platform_lifecycle": "marketing_qualified_lead",
    }
    return pushed | overrides


@pytest.mark.parametrize(
    ("pushed_overrides", "expected_fields"),
    [
        pytest.param({}, None, id="nothing-changed-writes-nothing"),
        pytest.param(
            {"reason": "Pricing page 3 times (+19 points)"}, None, id="only-the-reason-wording-writes-nothing"
        ),
        pytest.param(
            {"grade": "B3"}, {"grade", "scored_at"}, id="a-score-change-writes-that-field-and-scored-at"
        ),
        pytest.param(
            {"grade": "B3", "reason": "older wording"},
            {"grade", "reason", "scored_at"},
            id="the-reason-rides-along-with-a-score-change",
        ),
    ],
)
def test_plan_writes_only_when_a_score_changed(store_url, pushed_overrides, expected_fields):
    plans = _plan(_store(store_url, pushed=_as_pushed(**pushed_overrides)))
    if expected_fields is None:
        assert plans == []
    else:
        assert [set(p.update.fields) for p in plans] == [expected_fields]


@pytest.mark.parametrize(
    ("engagement_now", "pushed", "writes"),
    [
        # the engine keeps a whole number until decay moves it a whole point (scoring hysteresis)
        pytest.param(42.0, "42", False, id="the-same-whole-number-writes-nothing"),
        pytest.param(41.0, "42", True, id="a-point-down-writes"),
        pytest.param(43.0, "42", True, id="a-point-up-writes"),
        pytest.param(42.0, "n/a", True, id="a-value-not-a-number-is-replaced"),
    ],
)
def test_engagement_is_written_when_its_whole_number_changed(store_url, engagement_now, pushed, writes):
    engine = _store(
        store_url, pushed=_as_pushed(engagement=pushed), score=SCORE | {"engagement": engagement_now}
    )
    plans = _plan(engine)
    assert bool(plans) is writes
    if writes:
        assert plans[0].update.fields["engagement"] == str(int(engagement_now))


def test_a_first_push_carries_every_field_and_the_lifecycle_stage_last_pulled(store_url):
    (plan,) = _plan(_store(store_url, pushed={}, lifecycle_seen="lead"))
    assert set(plan.update.fields) == {*VALUE_FIELDS, "scored_at"}
    assert plan.update.lifecycle == "marketing_qualified_lead"
    assert plan.update.lifecycle_seen == "lead"


def test_an_identity_never_pulled_with_a_stage_leaves_the_seen_stage_unknown(store_url):
    (plan,) = _plan(_store(store_url, pushed={}, lifecycle_seen=None))
    assert plan.update.lifecycle_seen is None
