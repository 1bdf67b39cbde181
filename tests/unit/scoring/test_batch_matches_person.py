"""score_many over everyone and score_person one at a time give identical results."""

from __future__ import annotations

import random

import numpy as np
import pytest

from leadsync.config.scoring_model import PRESETS, load_model
from leadsync.scoring import EventColumns, Previous, score_many, score_person
from leadsync.scoring.ordering import group_time_order

from .helpers import NOW
from .synth import population


@pytest.mark.parametrize("preset", PRESETS)
def test_batch_and_per_person_results_are_identical(preset: str) -> None:
    people = population(300, seed=3)
    scoring_model = load_model(preset)
    rng = random.Random(1)
    previous = [
        Previous(
            lifecycle=rng.choice([None, "lead", "marketing_qualified_lead"]),
            grade=rng.choice([None, "A1", "C3"]),
            engagement=rng.choice([None, 0, 12, 55.0]),
        )
        for _ in people
    ]
    batch = score_many(
        [p for p, _ in people],
        EventColumns.from_records(e for _, e in people),
        scoring_model,
        now=NOW,
        previous=previous,
    )
    for i, (person, events) in enumerate(people):
        assert score_person(person, events, scoring_model, now=NOW, previous=previous[i]) == batch.result(i)


def test_scoring_a_subset_gives_the_same_results_as_scoring_everyone() -> None:
    people = population(200, seed=8)
    default = load_model("default")
    columns = EventColumns.from_records(e for _, e in people)
    everyone = score_many([p for p, _ in people], columns, default, now=NOW)
    subset = [5, 17, 18, 150]
    some = score_many(
        [people[i][0] for i in subset], columns.for_persons(subset, len(people)), default, now=NOW
    )
    for j, i in enumerate(subset):
        assert some.result(j) == everyone.result(i)
    assert some.sentences() == [everyone.sentence(i) for i in subset]


def test_event_order_in_the_input_does_not_matter() -> None:
    people = population(150, seed=4)
    default = load_model("default")
    columns = EventColumns.from_records(e for _, e in people)
    shuffled = columns.take(np.random.default_rng(0).permutation(len(columns)))
    profiles = [p for p, _ in people]
    one = score_many(profiles, columns, default, now=NOW)
    two = score_many(profiles, shuffled, default, now=NOW)
    assert one.results() == two.results()


@pytest.mark.parametrize("huge", [False, True])
def test_group_time_order_matches_lexsort(huge: bool) -> None:
    rng = np.random.default_rng(2)
    group = rng.integers(0, 2**40 if huge else 1000, 5000).astype(np.int64)  # huge: falls back to lexsort
    at = 1.78e9 + rng.integers(0, 10_000, 5000).astype(float)
    tie = rng.integers(0, 2, 5000)
    expected = np.lexsort((tie, at, group))
    assert np.array_equal(group_time_order(group, at, tie), expected)
