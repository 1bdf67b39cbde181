"""Contract 3: the platform is the truth for leadsync's fields and tags (plans, drift, echoes), and the
pure pieces around it (value comparison, cursor descriptions, stream selection)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from leadsync.config.settings import load_config
from leadsync.connectors.catalog import CATALOG, stream_names
from leadsync.connectors.errors import ConfigError
from leadsync.connectors.records import Platform
from leadsync.sync.cursors import describe
from leadsync.sync.observed import is_echo, same_value
from leadsync.sync.store import make_engine
from leadsync.sync.store.models import Attributes, Identity, Person, Score, WritebackState
from leadsync.sync.writeback import desired_values, first_persons, plan_source

NOW = datetime(2026, 11, 1, 12, tzinfo=UTC)
EARLIER, LATER = NOW - timedelta(hours=1), NOW + timedelta(hours=1)
SCORE = {
    "affinity": 61.0,
    "engagement": 42.0,
    "stage": "decision",
    "grade": "B2",
    "lifecycle": "marketing_qualified_lead",
    "reason": "Pricing page 3 times (+18 points)",
}
WANT = {k: v for k, v in desired_values(type("S", (), SCORE)(), scored_at=NOW).items() if k != "scored_at"}
STAGE, LIFECYCLE = "leadsync_stage_decision", "leadsync_lifecycle_marketing_qualified_lead"
PUSHED = {**WANT, "tag:stage": STAGE, "tag:lifecycle": LIFECYCLE}


def _store(
    store_url: str, *, pushed: dict[str, str], observed: dict[str, Any] | None, observed_at: datetime | None
):
    """One Mailchimp member (a platform with tags) with its scores, state and observed values."""
    engine = make_engine(store_url)
    with engine.begin() as connection:
        connection.execute(
            Person.__table__.insert(),
            [{"id": 1, "email": "ada@example.com", "created_at": NOW, "updated_at": NOW}],
        )
        connection.execute(
            Identity.__table__.insert(),
            [
                {
                    "source": "mc",
                    "platform": "mailchimp",
                    "remote_id": "l1:abc",
                    "email": "ada@example.com",
                    "person_id": 1,
                    "seen_at": NOW,
                }
            ],
        )
        connection.execute(
            Attributes.__table__.insert(),
            [
                {
                    "source": "mc",
                    "remote_id": "l1:abc",
                    "raw": {},
                    "observed": observed,
                    "observed_at": observed_at,
                }
            ],
        )
        connection.execute(
            Score.__table__.insert(),
            [{"person_id": 1, **SCORE, "contributions": [], "model_fingerprint": "m", "scored_at": NOW}],
        )
        if pushed:
            connection.execute(
                WritebackState.__table__.insert(),
                [
                    {"source": "mc", "remote_id": "l1:abc", "field": k, "value": v, "pushed_at": NOW}
                    for k, v in pushed.items()
                ],
            )
    return engine


def _plan(engine: Any, on_drift: str = "rewrite") -> Any:
    with engine.connect() as connection:
        return plan_source(
            connection, "mc", prefix="leadsync_", lifecycle_writeback=True, now=LATER, on_drift=on_drift
        )


def _observed(**changes: Any) -> dict[str, Any]:
    return {**WANT, "scored_at": "2026-11-01", "tags": sorted([STAGE, LIFECYCLE]), **changes}


def test_an_echo_of_our_own_write_plans_nothing(store_url: str) -> None:
    plan = _plan(_store(store_url, pushed=PUSHED, observed=_observed(), observed_at=LATER))
    assert plan.writes == [] and plan.drift == [] and plan.adopt == []


def test_a_value_another_writer_changed_is_written_again_and_reported_as_drift(store_url: str) -> None:
    plan = _plan(_store(store_url, pushed=PUSHED, observed=_observed(affinity="3"), observed_at=LATER))
    [write] = plan.writes
    assert write.update.fields["affinity"] == "61" and write.old["affinity"] == "3"
    assert [(d.field, d.ours, d.theirs, d.action) for d in plan.drift] == [("affinity", "61", "3", "rewrite")]


def test_with_on_drift_report_another_writers_value_is_left_and_reported(store_url: str) -> None:
    plan = _plan(
        _store(store_url, pushed=PUSHED, observed=_observed(affinity="3"), observed_at=LATER), "report"
    )
    assert plan.writes == []
    assert [(d.field, d.action) for d in plan.drift] == [("affinity", "report")]


def test_an_observation_older_than_our_last_write_does_not_count(store_url: str) -> None:
    # read before we wrote: the platform held the old value then; what we wrote since stands
    plan = _plan(_store(store_url, pushed=PUSHED, observed=_observed(affinity="3"), observed_at=EARLIER))
    assert plan.writes == [] and plan.drift == []


def test_a_rebuilt_store_converges_to_one_tag_of_each_kind_and_adopts_what_already_matches(
    store_url: str,
) -> None:
    two_stages = sorted(["leadsync_stage_awareness", STAGE, LIFECYCLE])
    plan = _plan(_store(store_url, pushed={}, observed=_observed(tags=two_stages), observed_at=NOW))
    [write] = plan.writes
    assert write.update.fields == {}  # the scores already match: no field is written
    assert write.update.tags_remove == ("leadsync_stage_awareness",)
    assert plan.drift == []  # leadsync has no record of writing: convergence, not drift
    adopted = {name for _, name, _ in plan.adopt}
    assert adopted == {"affinity", "engagement", "stage", "grade", "lifecycle", "tag:lifecycle"}


def test_a_tag_named_like_ours_that_leadsync_cannot_write_is_left_alone(store_url: str) -> None:
    tags = sorted([STAGE, LIFECYCLE, "leadsync_stage_partner"])  # set by sales, not a stage of ours
    plan = _plan(_store(store_url, pushed={}, observed=_observed(tags=tags), observed_at=NOW))
    assert plan.writes == []
    assert "leadsync_stage_partner" not in {tag for w in plan.writes for tag in w.update.tags_remove}


def test_a_rebuilt_store_writes_what_differs_from_the_platform(store_url: str) -> None:
    plan = _plan(_store(store_url, pushed={}, observed=_observed(engagement="7", tags=[]), observed_at=NOW))
    [write] = plan.writes
    assert write.update.fields["engagement"] == "42" and write.old["engagement"] == "7"
    assert set(write.update.tags_add) == {STAGE, LIFECYCLE}
    assert write.size == 35.0


def test_limit_takes_the_persons_with_the_largest_change() -> None:
    class W:
        def __init__(self, person: int, size: float) -> None:
            self.person_id, self.size = person, size
            self.order = (-size, 0, f"p{person}", "r")

    writes = [W(1, 5), W(2, 40), W(2, 1), W(3, 12), W(4, 0)]
    assert first_persons(writes, 2) == {2, 3}  # type: ignore[arg-type]
    assert first_persons(writes, 10) == {1, 2, 3, 4}  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("field", "held", "wanted", "same"),
    [
        ("affinity", "15.0", "15", True),
        ("affinity", "16", "15", False),
        ("engagement", None, "0", False),
        ("scored_at", "1793746344000", "2026-11-03T22:52:24Z", True),  # HubSpot: epoch ms
        ("scored_at", "2026-11-03", "2026-11-03T00:12:24Z", True),  # Mailchimp: a date field
        ("scored_at", "2026-11-02T19:12:24-05:00", "2026-11-03T00:12:24Z", True),  # AC: account timezone
        ("scored_at", "2026-11-04", "2026-11-03T00:12:24Z", False),
        ("reason", "x" * 255, "x" * 300, True),  # Mailchimp cuts text at 255 bytes
        ("reason", "short", "shorter", False),
        ("stage", "decision", "decision", True),
    ],
)
def test_platform_values_compare_as_each_platform_stores_them(
    field: str, held: Any, wanted: Any, same: bool
) -> None:
    assert same_value(field, held, wanted) is same


PUSH = {"affinity": ("61", NOW), "stage": ("decision", NOW), "tag:stage": (STAGE, NOW)}


@pytest.mark.parametrize(
    ("owned", "pushed", "observed_at", "echo"),
    [
        pytest.param(
            {"affinity": "61", "stage": "decision", "tags": [STAGE]}, PUSH, EARLIER, True, id="our-write"
        ),
        pytest.param(
            {"affinity": "61", "stage": "decision", "tags": [STAGE]}, PUSH, LATER, False, id="no-write-since"
        ),
        pytest.param(
            {"affinity": "3", "stage": "decision", "tags": [STAGE]}, PUSH, EARLIER, False, id="other-writer"
        ),
        pytest.param(
            {"affinity": "61", "stage": "decision", "tags": []}, PUSH, EARLIER, False, id="tag-removed"
        ),
        pytest.param({"affinity": "61"}, {}, None, False, id="never-written"),
        pytest.param(None, PUSH, EARLIER, False, id="not-read"),
        pytest.param(
            {"affinity": "61"}, {**PUSH, "pending": ("[]", NOW)}, EARLIER, False, id="outcome-unknown"
        ),
    ],
)
def test_an_echo_is_a_contact_leadsync_wrote_since_it_last_read_it_holding_what_was_written(
    owned: Any, pushed: Any, observed_at: Any, echo: bool
) -> None:
    assert is_echo(owned, pushed, observed_at) is echo


@pytest.mark.parametrize(
    ("value", "since", "words"),
    [
        (None, None, "no cursor yet"),
        ({"since": 1793746344000, "seen": {}}, datetime(2026, 11, 3, 22, 52, 24, tzinfo=UTC), "up to date"),
        (
            {"since": "2026-10-01T00:00:00+00:00", "resume": {"id_greater": 400}, "full": True},
            datetime(2026, 10, 1, tzinfo=UTC),
            "a full read stopped part-way: the next pull resumes at id_greater 400",
        ),
        (
            {
                "lists": {
                    "a": {"since": "2026-10-01T00:00:00+00:00"},
                    "b": {"since": "2026-10-02T00:00:00+00:00"},
                }
            },
            datetime(2026, 10, 1, tzinfo=UTC),
            "2 audiences read",
        ),
        (
            {"since": "2026-10-01T00:00:00+00:00", "swept_at": 0},
            datetime(2026, 10, 1, tzinfo=UTC),
            "last complete sweep",
        ),
    ],
)
def test_cursors_are_described_in_plain_words(value: Any, since: Any, words: str) -> None:
    found_since, progress = describe(value)
    assert found_since == since and words in progress


def test_every_connector_pulls_the_catalogs_streams() -> None:
    from leadsync.connectors.activecampaign.connector import STREAMS as AC
    from leadsync.connectors.mailchimp.connector import STREAMS as MC

    assert MC == stream_names(Platform.MAILCHIMP) and AC == stream_names(Platform.ACTIVECAMPAIGN)
    assert set(CATALOG) == set(Platform)


def _config(tmp_path: Path, streams: str) -> Path:
    path = tmp_path / "leadsync.toml"
    path.write_text(
        f"[[sources]]\nname = 'hs'\nplatform = 'hubspot'\nsecrets = {{token = 'HS_TOKEN'}}\n{streams}\n"
    )
    return path


def test_streams_in_config_select_and_an_unknown_one_names_the_value_and_the_choices(tmp_path: Path) -> None:
    assert load_config(_config(tmp_path, "streams = ['contacts', 'deals']")).sources[0].streams == [
        "contacts",
        "deals",
    ]
    assert load_config(_config(tmp_path, "")).sources[0].streams is None
    with pytest.raises(ConfigError) as bad:
        load_config(_config(tmp_path, "streams = ['contacts', 'emails']"))
    assert "'emails'" in str(
        bad.value
    ) and "contacts, email_events, page_views, meetings, calls, deals" in str(bad.value)
    assert "sources[0].streams" in str(bad.value)
    with pytest.raises(ConfigError, match="at least one stream"):
        load_config(_config(tmp_path, "streams = []"))
