"""Learned points: fit a model's own points to history, as a normal model file.

Pure: arrays and models in, a model (and its TOML text) out. The method is deliberately plain and
readable: an L2-regularised logistic regression on the model's *own* features, that is

* one 0/1 column per affinity rule (did it match, with the model's group logic), and
* one column per engagement channel with points: the decayed, capped points that channel gave
  (so a learned weight ``w`` becomes ``points * K * w`` with the same half-life and caps).

The ranking score the backtest compares is ``total = affinity + engagement`` (HubSpot's combined
"total"). The learned model writes ``affinity = base + K * (v . matches)`` and ``engagement =
K * (w . points)`` on a linear 0–100 curve, so ``total`` is the fitted log-odds times ``K`` wherever
neither score is clamped; ``K`` is chosen so the observed range fits 0–100. Everything else (stages,
lifecycle rules, grade bands, disqualifiers, machine filters) is kept from the base model: review
the lifecycle thresholds before publishing, since the scale of the scores changes.

Validation is time-based (``sync/analytics.py``): train on features as of an earlier date with the
outcomes that followed, evaluate on a later as-of date with the outcomes after it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import tomli_w

from leadsync.config.scoring_model import PAGE_PREFIX, ScoringModel, parse_model
from leadsync.connectors.errors import LeadsyncError

__all__ = [
    "MIN_HOLDOUT_POSITIVES",
    "MIN_POSITIVES",
    "Features",
    "Fit",
    "TooFewOutcomes",
    "choose_c",
    "feature_matrix",
    "fit_logistic",
    "learned_model",
    "model_text",
    "persons_needed",
    "shortfall",
]

#: Fewer won outcomes than this in training and the fit is refused (scoring-research.md §6, ≥20 wins).
MIN_POSITIVES = 20
#: A holdout with fewer converters than this cannot say whether the learned model is better.
MIN_HOLDOUT_POSITIVES = 5


class TooFewOutcomes(LeadsyncError):
    """Not enough converters to learn from (or to validate on): nothing was written.

    ``persons_needed`` (when known): about how many persons a history like this one needs for a fit.
    """

    def __init__(self, message: str, *, persons_needed: int | None = None) -> None:
        super().__init__(message)
        self.persons_needed = persons_needed


@dataclass(frozen=True)
class Features:
    """The design matrix of one as-of date: ``columns[j]`` names ``x[:, j]``."""

    x: np.ndarray  # float64[persons, features]
    columns: tuple[str, ...]  # "affinity:<rule>" or "engagement:<channel key>"


def feature_matrix(batch: Any) -> Features:
    """The model's own features from a ``score_many`` result (a ``BatchResult``)."""
    compiled = batch.compiled
    rules = compiled.affinity
    matched = np.asarray(batch._aff_present[:, : len(rules)], dtype=np.float64)
    channels = np.flatnonzero(compiled.points != 0)
    points = np.asarray(batch._parts.points[:, channels], dtype=np.float64)
    columns = tuple(f"affinity:{r.name}" for r in rules) + tuple(
        f"engagement:{compiled.channel_keys[c]}" for c in channels
    )
    return Features(np.concatenate([matched, points], axis=1), columns)


def fit_logistic(
    x: np.ndarray, y: np.ndarray, *, c: float = 1.0, iterations: int = 100
) -> tuple[float, np.ndarray]:
    """Minimise ``0.5 * |w|^2 + c * sum(log-loss)`` (intercept not penalised), by Newton steps.

    The same objective as scikit-learn's ``LogisticRegression(C=c)``. Columns are standardised
    inside (constant columns get weight 0) and the weights returned are for the original columns.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    mean = x.mean(axis=0)
    std = x.std(axis=0)
    live = std > 1e-12
    z = np.zeros_like(x)
    z[:, live] = (x[:, live] - mean[live]) / std[live]
    z = z[:, live]
    design = np.concatenate([np.ones((len(z), 1)), z], axis=1)
    beta = np.zeros(design.shape[1])
    penalty = np.full(design.shape[1], 1.0 / c)
    penalty[0] = 0.0
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-(design @ beta)))
        gradient = design.T @ (p - y) + penalty * beta
        hessian = (design * (p * (1 - p))[:, None]).T @ design + np.diag(penalty) + 1e-9 * np.eye(len(beta))
        step = np.linalg.solve(hessian, gradient)
        beta -= step
        if np.max(np.abs(step)) < 1e-10:
            break
    weights = np.zeros(x.shape[1])
    weights[live] = beta[1:] / std[live]
    intercept = beta[0] - float(np.sum(weights[live] * mean[live]))
    return float(intercept), weights


#: Regularisation strengths tried by ``choose_c`` (smaller = simpler model, points nearer 0).
C_GRID = (0.003, 0.01, 0.03, 0.1, 0.3, 1.0)


def choose_c(
    x: np.ndarray, y: np.ndarray, *, grid: tuple[float, ...] = C_GRID, folds: int = 5, seed: int = 0
) -> float:
    """The ``c`` with the best mean ROC-AUC in ``folds``-fold cross-validation on the training rows.

    Converters and the rest are dealt into folds separately, so each fold gets its share of both.
    Only training data is used: the holdout stays untouched for the final comparison.
    """
    from leadsync.scoring.backtest import roc_auc

    y = np.asarray(y, dtype=bool)
    rng = np.random.default_rng(seed)
    fold = np.empty(len(y), dtype=np.int64)
    for group in (np.flatnonzero(y), np.flatnonzero(~y)):
        fold[rng.permutation(group)] = np.arange(len(group)) % folds
    best, best_auc = grid[-1], -1.0
    for c in grid:
        aucs = []
        for k in range(folds):
            train, test = fold != k, fold == k
            if y[train].sum() == 0 or y[test].sum() == 0 or (~y[test]).sum() == 0:
                continue
            intercept, weights = fit_logistic(x[train], y[train], c=c)
            aucs.append(roc_auc(y[test], x[test] @ weights + intercept))
        score = float(np.mean(aucs)) if aucs else -1.0
        if score > best_auc + 1e-9:
            best, best_auc = c, score
    return best


@dataclass(frozen=True)
class Fit:
    """A learned model and how it was made."""

    model: ScoringModel
    weights: dict[str, float]
    scale: float  # K: score points per unit of log-odds


def learned_model(
    base: ScoringModel, features: Features, weights: np.ndarray, *, name: str | None = None
) -> Fit:
    """``base`` with its affinity and engagement points replaced by the learned ones."""
    columns = features.columns
    n_aff = sum(1 for c in columns if c.startswith("affinity:"))
    v, w = weights[:n_aff], weights[n_aff:]
    aff_part = features.x[:, :n_aff] @ v
    eng_part = features.x[:, n_aff:] @ w
    aff_range = float(aff_part.max() - aff_part.min()) if len(aff_part) else 0.0
    eng_high = float(np.quantile(eng_part, 0.99)) if len(eng_part) else 0.0
    span = max(aff_range, eng_high, 1e-6)
    scale = 100.0 / span
    low = float(aff_part.min()) if len(aff_part) else 0.0

    data = base.model_dump(mode="json", exclude_none=True)
    data["name"] = name or f"{base.name}-learned"
    data["version"] = base.version + 1
    data["description"] = (
        f"Points learned from history (logistic regression on {base.name}'s features); "
        "stages, lifecycle rules and grade bands as in the base model."
    )
    data["affinity"]["base"] = int(round(-low * scale))
    for rule, weight in zip(data["affinity"]["rules"], v, strict=True):
        rule["points"] = int(round(weight * scale))
    data["engagement"]["curve"] = "linear"
    data["engagement"]["scale"] = 100.0
    for column, weight in zip(columns[n_aff:], w, strict=True):
        key = column.removeprefix("engagement:")
        section = data["engagement"]["pages"] if key.startswith(PAGE_PREFIX) else data["engagement"]["events"]
        rule = section[key.removeprefix(PAGE_PREFIX)]
        factor = float(weight) * scale
        rule["points"] = round(rule["points"] * factor, 4)
        if "max_points" in rule:
            # the cap bounds the channel's total: scale it with the points (it bounds |total|)
            rule["max_points"] = max(round(rule["max_points"] * abs(factor), 4), 1e-4)
    model = parse_model(tomli_w.dumps(data), file="<learned model>")
    named = {column: float(weight) for column, weight in zip(columns, weights, strict=True)}
    return Fit(model, named, scale)


def model_text(model: ScoringModel, header: list[str]) -> str:
    """A normal model file: ``header`` lines as comments, then the model as TOML."""
    comments = "".join(f"# {line}\n" if line else "#\n" for line in header)
    text = comments + "\n" + tomli_w.dumps(model.model_dump(mode="json", exclude_none=True))
    parse_model(text, file="<learned model>")  # what we write must load
    return text


def shortfall(train: int, holdout: int) -> str | None:
    """What is missing for a fit, or None when both windows hold enough converters."""
    if train < MIN_POSITIVES:
        return f"only {train} converters in the training window (need at least {MIN_POSITIVES})"
    if holdout < MIN_HOLDOUT_POSITIVES:
        return (
            f"only {holdout} converters in the holdout window (need at least {MIN_HOLDOUT_POSITIVES}) "
            "to tell whether the learned model is better"
        )
    return None


def check_positives(train: int, holdout: int) -> None:
    """Refuse when there are too few converters (``sync.analytics.fit_model`` says what would help)."""
    problem = shortfall(train, holdout)
    if problem is not None:
        raise TooFewOutcomes(f"{problem}; no model written")


def persons_needed(persons: int, train: int, holdout: int, *, margin: float = 2.0, step: int = 500) -> int:
    """About how many persons a history like this one needs for a fit: the windows' converters
    grow with the persons, so scale ``persons`` until both minimums are met, ``margin`` times over
    (conversions vary from one history to another), rounded up to a multiple of ``step``."""
    scale = max(MIN_POSITIVES / max(train, 0.5), MIN_HOLDOUT_POSITIVES / max(holdout, 0.5), 1.0) * margin
    return max(step, math.ceil(persons * scale / step) * step)


def finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else value
