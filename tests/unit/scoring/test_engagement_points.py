"""Engagement: half-life decay, caps, maximum points, negative events, the 0–100 curve."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest

from leadsync.scoring import Previous, score_person

from .helpers import NOW, ago, event, model, profile

EVENTS = """
[engagement.events.email_click]
points = 10
half_life_days = 30

[engagement.events.form_submit]
points = 20

[engagement.events.email_open]
points = 1
cap = { count = 3, window_days = 30 }

[engagement.events.demo_request]
points = 30
max_points = 40

[engagement.events.email_unsubscribe]
points = -15
half_life_days = 10

[engagement.events.email_bounce]
points = -2

[engagement.events.email_hard_bounce]
points = -50

[engagement.pages.pricing]
patterns = ['/pricing']
points = 8
half_life_days = 7
"""
ENGAGEMENT = model(EVENTS)


def _raw(events: list) -> dict[str, float]:
    result = score_person(profile(), events, ENGAGEMENT, now=NOW)
    return {c.rule: c.raw_points for c in result.contributions if c.score == "engagement"}


HALF_LIFE = [
    # (behaviour, events, rule, expected raw points — exact)
    ("an event now counts fully", [event("email_click", NOW)], "email_click", 10.0),
    ("one half-life old counts exactly half", [event("email_click", ago(30))], "email_click", 5.0),
    ("two half-lives old counts a quarter", [event("email_click", ago(60))], "email_click", 2.5),
    ("three half-lives", [event("email_click", ago(90))], "email_click", 1.25),
    ("no half-life: no decay", [event("form_submit", ago(400))], "form_submit", 20.0),
    (
        "page category half-life",
        [event("page_view", ago(7), url="https://x.io/pricing")],
        "page:pricing",
        4.0,
    ),
    ("negative events decay too", [event("email_unsubscribe", ago(10))], "email_unsubscribe", -7.5),
]


@pytest.mark.parametrize(("what", "events", "rule", "points"), HALF_LIFE, ids=[h[0] for h in HALF_LIFE])
def test_half_life_decay(what: str, events: list, rule: str, points: float) -> None:
    assert _raw(events)[rule] == points


def test_decay_between_half_lives_follows_the_formula() -> None:
    assert _raw([event("email_click", ago(12.5))])["email_click"] == pytest.approx(10 * 0.5 ** (12.5 / 30))


def test_given_an_event_after_now_when_scored_then_it_is_ignored() -> None:
    assert _raw([event("form_submit", ago(-1))]) == {}


CAPS = [
    # (behaviour, open ages in days, counted, expected raw points)
    ("under the cap all count", [1, 2], 2, 2.0),
    ("at most three per window", [1, 2, 3, 4, 5], 3, 3.0),
    # windows are aligned to the epoch: NOW (2026-06-01 12:00) is 25.5 days into a window
    ("each window has its own cap", [0, 1, 2, 30, 31, 32, 33], 6, 6.0),
    ("a window boundary splits nearby events", [25, 26, 27, 28], 4, 4.0),
]


@pytest.mark.parametrize(("what", "ages", "counted", "points"), CAPS, ids=[c[0] for c in CAPS])
def test_count_cap_per_window(what: str, ages: list[float], counted: int, points: float) -> None:
    result = score_person(profile(), [event("email_open", ago(a)) for a in ages], ENGAGEMENT, now=NOW)
    (opens,) = [c for c in result.contributions if c.rule == "email_open"]
    assert (opens.count, opens.capped, opens.raw_points) == (counted, len(ages) - counted, points)


def test_given_a_capped_window_then_the_most_recent_events_count() -> None:
    decaying = model(
        "[engagement.events.email_open]\npoints = 8\nhalf_life_days = 1\ncap = { count = 1, window_days = 365 }\n"
    )
    result = score_person(
        profile(), [event("email_open", ago(2)), event("email_open", ago(1))], decaying, now=NOW
    )
    (opens,) = result.contributions
    assert opens.raw_points == 4.0  # the one-day-old open, not the two-day-old one


@pytest.mark.parametrize(("demos", "points"), [(1, 30.0), (2, 40.0), (5, 40.0)])
def test_max_points_bounds_the_total_of_a_kind(demos: int, points: float) -> None:
    assert _raw([event("demo_request", ago(1)) for _ in range(demos)])["demo_request"] == points


NEGATIVES = [
    ("soft bounce", [event("email_bounce", ago(1), bounce_type="soft")], "email_bounce", -2.0),
    ("unknown bounce type counts as soft", [event("email_bounce", ago(1))], "email_bounce", -2.0),
    (
        "hard bounce (Mailchimp word)",
        [event("email_bounce", ago(1), bounce_type="hard")],
        "email_hard_bounce",
        -50.0,
    ),
    (
        "hard bounce (HubSpot word)",
        [event("email_bounce", ago(1), bounce_type="HARD_BOUNCE")],
        "email_hard_bounce",
        -50.0,
    ),
    ("hard bounce (flag)", [event("email_bounce", ago(1), hard=True)], "email_hard_bounce", -50.0),
]


@pytest.mark.parametrize(("what", "events", "rule", "points"), NEGATIVES, ids=[n[0] for n in NEGATIVES])
def test_negative_events(what: str, events: list, rule: str, points: float) -> None:
    assert _raw(events) == {rule: points}


@pytest.mark.parametrize(
    ("events", "engagement"),
    [
        ([event("form_submit", ago(1)), event("email_bounce", ago(1), hard=True)], 0),  # negative total -> 0
        ([event("form_submit", ago(1)), event("email_unsubscribe", NOW)], 5),
        (
            [event("demo_request", ago(1)), event("form_submit", ago(1)), event("form_submit", ago(2))] * 3,
            100,
        ),
    ],
)
def test_linear_curve_clamps_to_0_and_100(events: list, engagement: int) -> None:
    assert score_person(profile(), events, ENGAGEMENT, now=NOW).engagement == engagement


@pytest.mark.parametrize("points", [0, 10, 30, 60, 120, 600])
def test_saturating_curve(points: int) -> None:
    saturating = model(
        f"[engagement.events.form_submit]\npoints = {points or 1}\n",
        engagement='[engagement]\ncurve = "saturating"\nscale = 60\n',
    )
    events = [event("form_submit", ago(1))] if points else []
    expected = math.floor(100 * (1 - math.exp(-points / 60)) + 0.5)
    result = score_person(profile(), events, saturating, now=NOW)
    assert result.engagement == expected
    assert sum(c.points for c in result.contributions if c.score == "engagement") == expected


def test_unconfigured_event_kinds_score_nothing_and_are_not_contributions() -> None:
    result = score_person(
        profile(), [event("email_sent", ago(1)), event("social_interaction", ago(1))], ENGAGEMENT, now=NOW
    )
    assert result.engagement == 0
    assert result.contributions == ()


def test_contribution_counts_and_last_seen() -> None:
    events = [event("email_click", ago(3)), event("email_click", ago(1)), event("email_click", ago(2))]
    result = score_person(profile(), events, ENGAGEMENT, now=NOW)
    (click,) = result.contributions
    assert click.count == 3
    assert click.last_seen == ago(1)


def test_scores_as_of_an_earlier_date() -> None:
    events = [event("email_click", ago(30)), event("email_click", ago(1))]
    earlier = score_person(profile(), events, ENGAGEMENT, now=ago(30))
    assert earlier.engagement_points == 10.0  # only the first click existed, and it was new


def test_a_changed_copy_of_a_model_scores_with_its_own_numbers() -> None:
    base = model("[engagement.events.form_submit]\npoints = 10\n")
    doubled_rule = base.engagement.events["form_submit"].model_copy(update={"points": 20})
    doubled = base.model_copy(
        update={"engagement": base.engagement.model_copy(update={"events": {"form_submit": doubled_rule}})}
    )
    events = [event("form_submit", NOW)]
    assert score_person(profile(), events, base, now=NOW).engagement == 10
    assert score_person(profile(), events, doubled, now=NOW).engagement == 20


# A click 45 days old (half-life 30): 10 x 2**-1.5 = 3.54 points, which round to 4.
HYSTERESIS = [
    # (behaviour, previous engagement, expected engagement)
    ("no previous score: rounded", None, 4),
    ("the same whole number as before: kept", 4, 4),
    ("a point above the exact value, less than a whole point away: kept", 3, 3),
    ("more than a point above the exact value: rounded", 5, 4),
    ("more than a point below the exact value: rounded", 2, 4),
    ("as the store gives it, a float", 3.0, 3),
]


@pytest.mark.parametrize(
    ("previous", "expected"), [case[1:] for case in HYSTERESIS], ids=[case[0] for case in HYSTERESIS]
)
def test_engagement_keeps_its_last_whole_number_until_the_exact_value_is_a_point_away(
    previous: float | None, expected: int
) -> None:
    result = score_person(
        profile(),
        [event("email_click", ago(45))],
        ENGAGEMENT,
        now=NOW,
        previous=Previous(engagement=previous),
    )
    assert result.engagement == expected
    assert sum(c.points for c in result.contributions if c.score == "engagement") == expected


def test_given_decay_alone_the_engagement_moves_only_once_it_is_a_point_lower() -> None:
    click = [event("email_click", NOW)]
    first = score_person(profile(), click, ENGAGEMENT, now=NOW).engagement  # 10 exactly
    later = [
        score_person(
            profile(), click, ENGAGEMENT, now=NOW + timedelta(days=days), previous=Previous(engagement=first)
        )
        for days in (1, 4, 5)  # 9.77, 9.12, 8.91 points
    ]
    assert [first, *(result.engagement for result in later)] == [10, 10, 10, 9]
