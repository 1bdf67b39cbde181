"""Grade: affinity letter and engagement digit, with hysteresis against the previous grade."""

from __future__ import annotations

import numpy as np
import pytest

from leadsync.scoring.grade import band, grade_name, parse_grade

BOUNDS = (75, 50, 25)

BANDS = [
    # (score, band) — lower bounds are inclusive
    (100, 0),
    (75, 0),
    (74, 1),
    (50, 1),
    (49, 2),
    (25, 2),
    (24, 3),
    (0, 3),
]


@pytest.mark.parametrize(("score", "expected"), BANDS)
def test_grade_bands(score: int, expected: int) -> None:
    assert band(np.array([score]), BOUNDS, np.array([-1]), margin=5).tolist() == [expected]


HYSTERESIS = [
    # (behaviour, score, previous band, band)
    ("keeps a better band within the margin", 72, 0, 0),
    ("keeps it down to bound minus margin", 70, 0, 0),
    ("drops below bound minus margin", 69, 0, 1),
    ("drops straight to the computed band when far below", 10, 0, 3),
    ("promotion needs the full bound", 74, 1, 1),
    ("promotion at the bound", 75, 1, 0),
    ("a worse previous band does not hold a person down", 80, 3, 0),
    ("unknown previous: plain bands", 72, -1, 1),
]


@pytest.mark.parametrize(
    ("what", "score", "previous", "expected"), HYSTERESIS, ids=[h[0] for h in HYSTERESIS]
)
def test_grade_hysteresis(what: str, score: int, previous: int, expected: int) -> None:
    assert band(np.array([score]), BOUNDS, np.array([previous]), margin=5).tolist() == [expected]


def test_a_score_wobbling_around_a_bound_keeps_its_grade() -> None:
    previous = np.array([-1])
    seen = []
    for score in [76, 73, 77, 71, 74, 75, 72]:
        previous = band(np.array([score]), BOUNDS, previous, margin=5)
        seen.append(int(previous[0]))
    assert seen == [0] * 7


@pytest.mark.parametrize(("code", "name"), [(0, "A1"), (3, "A4"), (5, "B2"), (15, "D4")])
def test_grade_names_round_trip(code: int, name: str) -> None:
    assert grade_name(code) == name
    assert parse_grade(name) == (code // 4, code % 4)


@pytest.mark.parametrize("junk", [None, "", "E1", "A5", "A", "a1x"])
def test_unknown_previous_grade(junk: str | None) -> None:
    assert parse_grade(junk) == (-1, -1)
