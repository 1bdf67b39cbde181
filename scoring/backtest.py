"""Backtest metrics: how well scores computed as of a date predict the outcomes that followed.

Pure: arrays in, numbers out; no I/O, no clock. ``as_of`` and the horizon are arguments
(``label_outcomes``); the I/O shell (``sync/analytics.py``) reads the store, scores everyone as of
``as_of`` with only the data before it, and hands the arrays here.

Definitions (the same as scikit-learn's, so a test can check one against the other):

* ROC-AUC: the probability that a random converter scores above a random non-converter, ties
  counting one half (Mann-Whitney U over average ranks).
* PR-AUC: average precision, ``sum_k (R_k - R_{k-1}) * P_k`` over the distinct score thresholds
  from the highest down (scikit-learn's ``average_precision_score``).
* Top decile: the ``ceil(n / 10)`` best-scored persons (ties broken by position, so the result
  is deterministic); lift = conversion rate there / overall rate; share = their converters / all.
* Lift curve: the cumulative share of converters reached in the best 10 %, 20 %, ... 100 %.
* Precision / recall at the MQL threshold: persons at ``marketing_qualified_lead`` or above as the
  prediction.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np

__all__ = [
    "Backtest",
    "CellRate",
    "ScoreMetrics",
    "average_precision",
    "backtest",
    "label_outcomes",
    "lift_curve",
    "precision_recall",
    "rates_by",
    "roc_auc",
    "top_decile",
]


def _arrays(y: Any, s: Any) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y, dtype=bool)
    s = np.asarray(s, dtype=np.float64)
    if y.shape != s.shape or y.ndim != 1:
        raise ValueError(
            f"outcomes and scores must be 1-d arrays of one length (got {y.shape} and {s.shape})"
        )
    return y, s


def _average_ranks(s: np.ndarray) -> np.ndarray:
    """1-based ranks, tied values sharing the average of their ranks."""
    order = np.argsort(s, kind="mergesort")
    ordered = s[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    ends = np.r_[starts[1:], len(s)]
    average = (starts + ends + 1) / 2.0  # mean of ranks starts+1 .. ends
    ranks = np.empty(len(s))
    ranks[order] = np.repeat(average, ends - starts)
    return ranks


def roc_auc(y: Any, s: Any) -> float | None:
    """ROC-AUC, or None when only one class is present (it is undefined then)."""
    y, s = _arrays(y, s)
    pos = int(y.sum())
    neg = len(y) - pos
    if pos == 0 or neg == 0:
        return None
    ranks = _average_ranks(s)
    return float((ranks[y].sum() - pos * (pos + 1) / 2.0) / (pos * neg))


def average_precision(y: Any, s: Any) -> float | None:
    """PR-AUC as average precision; None without any converter."""
    y, s = _arrays(y, s)
    pos = int(y.sum())
    if pos == 0:
        return None
    order = np.argsort(-s, kind="mergesort")
    ys, ss = y[order], s[order]
    last = np.r_[ss[1:] != ss[:-1], True]  # the last row of each distinct score
    tp = np.cumsum(ys)[last]
    seen = (np.flatnonzero(last) + 1).astype(np.float64)
    precision = tp / seen
    recall = tp / pos
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def _ranked(s: np.ndarray) -> np.ndarray:
    """Indexes from the best score down; equal scores keep their order."""
    return np.argsort(-s, kind="mergesort")


def top_decile(y: Any, s: Any) -> tuple[float | None, float | None]:
    """(lift, share of converters) in the best ``ceil(n/10)``; None where undefined."""
    y, s = _arrays(y, s)
    n, pos = len(y), int(y.sum())
    if n == 0 or pos == 0:
        return None, None
    k = math.ceil(n / 10)
    hits = int(y[_ranked(s)[:k]].sum())
    return (hits / k) / (pos / n), hits / pos


def lift_curve(y: Any, s: Any, bins: int = 10) -> list[dict[str, float]]:
    """Cumulative gains: per ``bins`` step, the share of persons taken and of converters reached."""
    y, s = _arrays(y, s)
    n, pos = len(y), int(y.sum())
    if n == 0:
        return []
    found = np.cumsum(y[_ranked(s)])
    points = []
    for b in range(1, bins + 1):
        k = math.ceil(n * b / bins)
        reached = float(found[k - 1]) / pos if pos else 0.0
        taken = k / n
        points.append(
            {
                "share_of_persons": taken,
                "share_of_converters": reached,
                "lift": reached / taken if pos else 0.0,
            }
        )
    return points


def precision_recall(y: Any, predicted: Any) -> tuple[float | None, float | None]:
    """Precision and recall of a yes/no prediction; None where the denominator is zero."""
    y = np.asarray(y, dtype=bool)
    predicted = np.asarray(predicted, dtype=bool)
    tp = int((y & predicted).sum())
    chosen, pos = int(predicted.sum()), int(y.sum())
    return (tp / chosen if chosen else None), (tp / pos if pos else None)


@dataclass(frozen=True)
class CellRate:
    """Conversion within one group (a grade cell, a stage)."""

    persons: int
    converted: int

    @property
    def rate(self) -> float | None:
        return self.converted / self.persons if self.persons else None

    def as_dict(self) -> dict[str, Any]:
        return {"persons": self.persons, "converted": self.converted, "rate": self.rate}


def rates_by(labels: Sequence[str], y: Any, order: Sequence[str] = ()) -> dict[str, CellRate]:
    """Persons and converters per label; ``order`` lists labels to show even when empty, first."""
    y = np.asarray(y, dtype=bool)
    if len(labels) != len(y):
        raise ValueError(f"{len(labels)} labels for {len(y)} outcomes")
    counts: dict[str, list[int]] = {label: [0, 0] for label in order}
    for label, hit in zip(labels, y.tolist(), strict=True):
        cell = counts.setdefault(label, [0, 0])
        cell[0] += 1
        cell[1] += hit
    return {label: CellRate(*cell) for label, cell in counts.items()}


def label_outcomes(
    person: Any, at: Any, n: int, *, as_of: datetime, horizon: timedelta
) -> tuple[np.ndarray, np.ndarray]:
    """From outcome occurrences (``person[i]`` converted at epoch seconds ``at[i]``):

    ``(before, within)`` per person: converted at or before ``as_of`` (already a customer: not a
    lead to predict), and converted in ``(as_of, as_of + horizon]`` (the outcome).
    """
    person = np.asarray(person, dtype=np.int64)
    at = np.asarray(at, dtype=np.float64)
    start, end = as_of.timestamp(), (as_of + horizon).timestamp()
    before = np.zeros(n, dtype=bool)
    within = np.zeros(n, dtype=bool)
    before[person[at <= start]] = True
    within[person[(at > start) & (at <= end)]] = True
    return before, within


@dataclass(frozen=True)
class ScoreMetrics:
    roc_auc: float | None
    pr_auc: float | None
    top_decile_lift: float | None
    top_decile_share: float | None
    lift_curve: list[dict[str, float]] = field(default_factory=list)


@dataclass(frozen=True)
class Backtest:
    """Everything ``leadsync backtest`` reports for one outcome, as-of date and horizon."""

    outcome: str
    as_of: datetime
    horizon_days: float
    persons: int
    converted: int
    excluded_prior: int
    scores: dict[str, ScoreMetrics]
    mql_precision: float | None
    mql_recall: float | None
    mql_count: int
    by_grade: dict[str, CellRate]
    by_stage: dict[str, CellRate]
    by_lifecycle: dict[str, CellRate]

    @property
    def base_rate(self) -> float | None:
        return self.converted / self.persons if self.persons else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "as_of": self.as_of.isoformat(),
            "horizon_days": self.horizon_days,
            "persons": self.persons,
            "converted": self.converted,
            "base_rate": self.base_rate,
            "excluded_prior": self.excluded_prior,
            "scores": {name: asdict(m) for name, m in self.scores.items()},
            "mql": {"count": self.mql_count, "precision": self.mql_precision, "recall": self.mql_recall},
            "by_grade": {k: v.as_dict() for k, v in self.by_grade.items()},
            "by_stage": {k: v.as_dict() for k, v in self.by_stage.items()},
            "by_lifecycle": {k: v.as_dict() for k, v in self.by_lifecycle.items()},
        }


GRADES = tuple(f"{letter}{digit}" for letter in "ABCD" for digit in "1234")


def backtest(
    *,
    outcome: str,
    as_of: datetime,
    horizon: timedelta,
    y: Any,
    scores: Mapping[str, Any],
    grade: Sequence[str],
    stage: Sequence[str],
    lifecycle: Sequence[str],
    mql: Any,
    excluded_prior: int = 0,
    stages: Sequence[str] = (),
    lifecycles: Sequence[str] = (),
) -> Backtest:
    """All the figures for persons who were leads at ``as_of`` (``y``: converted within the horizon).

    ``scores`` maps a score's name (affinity, engagement, ...) to its values; higher = better.
    ``mql`` marks the persons at or above the MQL threshold as of ``as_of``.
    """
    y = np.asarray(y, dtype=bool)
    metrics = {}
    for name, values in scores.items():
        lift, share = top_decile(y, values)
        metrics[name] = ScoreMetrics(
            roc_auc(y, values), average_precision(y, values), lift, share, lift_curve(y, values)
        )
    precision, recall = precision_recall(y, mql)
    return Backtest(
        outcome=outcome,
        as_of=as_of,
        horizon_days=horizon.total_seconds() / 86_400,
        persons=len(y),
        converted=int(y.sum()),
        excluded_prior=excluded_prior,
        scores=metrics,
        mql_precision=precision,
        mql_recall=recall,
        mql_count=int(np.asarray(mql, dtype=bool).sum()),
        by_grade=rates_by(grade, y, GRADES),
        by_stage=rates_by(stage, y, stages),
        by_lifecycle=rates_by(lifecycle, y, lifecycles),
    )
