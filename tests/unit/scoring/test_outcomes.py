"""Meetings and calls are weighed by their outcome (issue 21): each outcome is a channel of its own
that a model can price and list as a stage signal; a model that does not name an outcome weighs it
as its event type, so models written before outcomes existed score as they did."""

from __future__ import annotations

import pytest

from leadsync.config.scoring_model import load_model
from leadsync.connectors.records import call_outcome, meeting_outcome
from leadsync.scoring import score_person
from leadsync.scoring.columns import EventColumns
from tests.unit.scoring.helpers import NOW, ago, event, model, profile

DEFAULT = load_model("default")

# A model written before outcomes: meetings and calls by type only.
BY_TYPE = model(
    """
[engagement.events.meeting_booked]
points = 30
[engagement.events.call]
points = 7
[stage.decision]
signals = ["meeting_booked"]
window_days = 30
"""
)


@pytest.mark.parametrize(
    ("kind", "outcome", "label", "points", "stage"),
    [
        ("meeting_booked", "scheduled", "meeting booked", 30, "decision"),
        ("meeting_booked", "rescheduled", "meeting booked", 30, "decision"),
        ("meeting_booked", "completed", "meeting held", 40, "decision"),
        ("meeting_booked", "no_show", "meeting no-show", 5, "decision"),
        ("meeting_booked", "cancelled", None, 0, "awareness"),
        ("call", "completed", "sales call", 10, "awareness"),
        ("call", "not_connected", None, 0, "awareness"),
    ],
)
def test_given_the_default_model_when_an_outcome_is_scored_then_it_has_its_own_points_and_signal(
    kind: str, outcome: str, label: str | None, points: int, stage: str
) -> None:
    result = score_person(profile(), [event(kind, ago(1), outcome=outcome)], DEFAULT, now=NOW)
    raw = {c.label: c.raw_points for c in result.contributions if c.score == "engagement"}
    if label is None:
        assert raw == {}
    else:
        assert raw == {
            label: pytest.approx(
                points * 0.5 ** (1 / (60 if kind == "meeting_booked" and outcome != "no_show" else 30))
            )
        }
    assert result.stage == stage
    assert (label or "") in result.sentence  # the reason names it


@pytest.mark.parametrize("outcome", ["scheduled", "completed", "no_show", "cancelled"])
def test_given_a_model_without_outcome_rules_when_any_meeting_is_scored_then_it_counts_as_booked(
    outcome: str,
) -> None:
    result = score_person(profile(), [event("meeting_booked", NOW, outcome=outcome)], BY_TYPE, now=NOW)
    assert (result.engagement, result.stage) == (30, "decision")


def test_given_a_model_without_outcome_rules_when_calls_are_scored_then_every_call_counts() -> None:
    calls = [event("call", NOW, outcome="completed"), event("call", NOW, outcome="not_connected")]
    assert score_person(profile(), calls, BY_TYPE, now=NOW).engagement == 14


def test_given_outcomes_when_turned_into_columns_then_their_flags_are_set() -> None:
    columns = EventColumns.from_records(
        [[event("meeting_booked", NOW, outcome="completed"), event("call", NOW, outcome="not_connected"),
          event("meeting_booked", NOW), event("email_open", NOW, outcome="completed")]]
    )  # fmt: skip
    assert columns.flags.tolist() == [4, 32, 0, 0]


@pytest.mark.parametrize(
    ("value", "expected", "known"),
    [
        ("COMPLETED", "completed", True),
        ("NO_SHOW", "no_show", True),
        ("No-show", "no_show", True),
        ("CANCELED", "cancelled", True),
        ("RESCHEDULED", "rescheduled", True),
        (None, "scheduled", True),
        ("", "scheduled", True),
        ("PENDING_REVIEW", "scheduled", False),  # documented default: an unknown outcome is booked
    ],
)
def test_meeting_outcomes_are_normalised_with_a_documented_default(value, expected, known) -> None:
    outcome, recognised = meeting_outcome(value)
    assert (outcome.value, recognised) == (expected, known)


@pytest.mark.parametrize(
    ("value", "expected", "known"),
    [
        ("COMPLETED", "completed", True),
        ("NO_ANSWER", "not_connected", True),
        ("BUSY", "not_connected", True),
        ("FAILED", "not_connected", True),
        ("IN_PROGRESS", "completed", True),
        (None, "completed", True),
        ("VOICEMAIL_LEFT", "completed", False),
    ],
)
def test_call_statuses_are_normalised_with_a_documented_default(value, expected, known) -> None:
    outcome, recognised = call_outcome(value)
    assert (outcome.value, recognised) == (expected, known)
