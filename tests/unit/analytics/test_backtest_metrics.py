"""Backtest metrics: hand-computed small cases, and the same figures as scikit-learn on random data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from leadsync.scoring.backtest import (
    average_precision,
    backtest,
    label_outcomes,
    lift_curve,
    precision_recall,
    rates_by,
    roc_auc,
    top_decile,
)


@pytest.mark.parametrize(
    ("y", "s", "expected"),
    [
        ([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8], 0.75),  # 3 of 4 pairs ordered right
        ([1, 0], [1, 1], 0.5),  # a tie counts one half
        ([0, 1, 0, 1], [1, 2, 3, 4], 0.75),
        ([1, 1, 0, 0], [5, 5, 5, 1], 0.75),  # pairs: (5>5 tie .5, 5>1), twice: (0.5+1)*2/4
        ([1, 0, 0], [3, 2, 1], 1.0),
        ([0, 1, 1], [3, 2, 1], 0.0),
    ],
)
def test_roc_auc_counts_ordered_pairs_and_half_of_ties(y, s, expected):
    assert roc_auc(y, s) == pytest.approx(expected)


@pytest.mark.parametrize("y", [[0, 0, 0], [1, 1]])
def test_roc_auc_is_undefined_with_one_class(y):
    assert roc_auc(y, list(range(len(y)))) is None


@pytest.mark.parametrize(
    ("y", "s", "expected"),
    [
        # ranked: 1(hit) 0 1(hit): precision at hits 1/1 and 2/3; AP = 0.5*1 + 0.5*2/3
        ([1, 0, 1], [3, 2, 1], 0.5 + 1 / 3),
        # all tied: one threshold, precision = base rate
        ([1, 0, 0, 1], [1, 1, 1, 1], 0.5),
        ([0, 1], [2, 1], 0.5),
    ],
)
def test_average_precision_by_hand(y, s, expected):
    assert average_precision(y, s) == pytest.approx(expected)


def test_top_decile_takes_the_best_tenth_rounded_up():
    y = np.zeros(25, dtype=bool)
    y[[0, 1, 20]] = True
    s = np.arange(25, 0, -1)  # person 0 scores best
    lift, share = top_decile(y, s)  # best 3: persons 0, 1, 2 -> 2 hits
    assert share == pytest.approx(2 / 3)
    assert lift == pytest.approx((2 / 3) / (3 / 25))


def test_lift_curve_ends_at_everyone_and_every_converter():
    y = [1, 0, 0, 1, 0, 0, 0, 0, 0, 0]
    s = [9, 8, 7, 6, 5, 4, 3, 2, 1, 0]
    curve = lift_curve(y, s)
    assert [p["share_of_converters"] for p in curve[:4]] == [0.5, 0.5, 0.5, 1.0]
    assert curve[-1] == {"share_of_persons": 1.0, "share_of_converters": 1.0, "lift": 1.0}
    assert curve[0]["lift"] == pytest.approx(5.0)


@pytest.mark.parametrize(
    ("y", "predicted", "expected"),
    [
        ([1, 1, 0, 0], [1, 0, 1, 0], (0.5, 0.5)),
        ([1, 0], [0, 0], (None, 0.0)),
        ([0, 0], [1, 0], (0.0, None)),
    ],
)
def test_precision_recall_of_a_yes_no_prediction(y, predicted, expected):
    assert precision_recall(y, predicted) == expected


def test_rates_by_lists_empty_cells_in_the_given_order_first():
    cells = rates_by(["B", "A", "B"], [1, 0, 0], order=["A", "B", "C"])
    assert list(cells) == ["A", "B", "C"]
    assert (cells["B"].persons, cells["B"].converted, cells["B"].rate) == (2, 1, 0.5)
    assert cells["C"].rate is None


def test_label_outcomes_splits_before_within_and_after_the_horizon():
    as_of = datetime(2026, 8, 1, tzinfo=UTC)
    day = 86_400
    t0 = as_of.timestamp()
    person = [0, 1, 2, 3, 3]
    at = [t0, t0 + 1, t0 + 90 * day, t0 + 90 * day + 1, t0 - day]
    before, within = label_outcomes(person, at, 5, as_of=as_of, horizon=timedelta(days=90))
    assert before.tolist() == [True, False, False, True, False]  # at as_of counts as already converted
    assert within.tolist() == [False, True, True, False, False]  # the horizon's end is included


def test_backtest_reports_every_figure():
    y = [1, 0, 0, 1]
    figures = backtest(
        outcome="deal_won",
        as_of=datetime(2026, 8, 1, tzinfo=UTC),
        horizon=timedelta(days=90),
        y=y,
        scores={"total": [4, 3, 2, 1]},
        grade=["A1", "A1", "D4", "D4"],
        stage=["decision", "awareness", "awareness", "awareness"],
        lifecycle=["lead"] * 4,
        mql=[1, 1, 0, 0],
    )
    data = figures.as_dict()
    assert data["persons"] == 4 and data["converted"] == 2 and data["base_rate"] == 0.5
    assert data["scores"]["total"]["roc_auc"] == pytest.approx(0.5)  # 4 > 3, 2; 1 < 3, 2
    assert data["mql"] == {"count": 2, "precision": 0.5, "recall": 0.5}
    assert data["by_grade"]["A1"] == {"persons": 2, "converted": 1, "rate": 0.5}
    assert len(data["by_grade"]) == 16


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_roc_and_pr_auc_equal_scikit_learn_on_random_scores_with_ties(seed):
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(seed)
    y = rng.random(2000) < 0.05
    s = rng.integers(0, 40, size=2000) + 8 * y  # whole-number scores: many ties
    assert roc_auc(y, s) == pytest.approx(metrics.roc_auc_score(y, s), abs=1e-12)
    assert average_precision(y, s) == pytest.approx(metrics.average_precision_score(y, s), abs=1e-12)
