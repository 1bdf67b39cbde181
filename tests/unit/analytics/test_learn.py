"""Learned points: the regression, the model file it becomes, and the refusal with too few outcomes."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from leadsync.config.scoring_model import load_model, parse_model
from leadsync.connectors.records import EventRecord, EventType, Platform, Profile
from leadsync.scoring import EventColumns, score_many
from leadsync.scoring.backtest import roc_auc
from leadsync.scoring.learn import (
    MIN_POSITIVES,
    TooFewOutcomes,
    check_positives,
    feature_matrix,
    fit_logistic,
    learned_model,
    model_text,
)

NOW = datetime(2026, 8, 1, tzinfo=UTC)


def test_fit_logistic_matches_scikit_learn_with_the_same_penalty():
    linear_model = pytest.importorskip("sklearn.linear_model")
    rng = np.random.default_rng(7)
    x = np.concatenate([rng.integers(0, 2, size=(500, 3)), rng.exponential(10, size=(500, 2))], axis=1)
    logit = -3 + 1.5 * x[:, 0] - x[:, 1] + 0.08 * x[:, 3]
    y = rng.random(500) < 1 / (1 + np.exp(-logit))
    _, weights = fit_logistic(x, y, c=1.0)
    z = (x - x.mean(axis=0)) / x.std(axis=0)  # fit_logistic standardises inside
    reference = linear_model.LogisticRegression(C=1.0, tol=1e-10, max_iter=10_000).fit(z, y)
    assert weights * x.std(axis=0) == pytest.approx(reference.coef_[0], abs=1e-5)


def test_fit_logistic_gives_constant_columns_no_weight():
    x = np.array([[1.0, 0.0], [1.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    _, weights = fit_logistic(x, np.array([0, 1, 0, 1]))
    assert weights[0] == 0.0 and weights[1] > 0


@pytest.mark.parametrize(("train", "holdout"), [(MIN_POSITIVES - 1, 50), (MIN_POSITIVES, 4), (0, 0)])
def test_too_few_converters_are_refused_with_what_to_do(train, holdout):
    with pytest.raises(TooFewOutcomes, match="no model written"):
        check_positives(train, holdout)


def _population(n: int, seed: int):
    """Persons whose title and demo requests decide who converts (demo requests matter most)."""
    rng = np.random.default_rng(seed)
    titles = ["VP Marketing", "Marketing Manager", "Student", "Engineer"]
    profiles, events, y = [], [], []
    for i in range(n):
        title = titles[rng.integers(0, 4)]
        demo = rng.random() < 0.2
        opens = int(rng.integers(0, 4))
        profiles.append(Profile(email=f"p{i}@acme.com", job_title=title, company_size=100, country="us"))
        mine = [
            EventRecord(
                "hs",
                Platform.HUBSPOT,
                f"{i}-o{k}",
                EventType.EMAIL_OPEN,
                datetime(2026, 7, 20 + k, tzinfo=UTC),
                "r",
            )
            for k in range(opens)
        ]
        if demo:
            mine.append(
                EventRecord(
                    "hs",
                    Platform.HUBSPOT,
                    f"{i}-d",
                    EventType.DEMO_REQUEST,
                    datetime(2026, 7, 25, tzinfo=UTC),
                    "r",
                )
            )
        events.append(mine)
        logit = (
            -3.5
            + 3.0 * demo
            + (1.0 if title.startswith("VP") else 0.0)
            - (2.0 if title == "Student" else 0.0)
        )
        y.append(rng.random() < 1 / (1 + np.exp(-logit)))
    return profiles, EventColumns.from_records(events), np.array(y)


def test_learned_model_is_a_valid_model_file_that_ranks_by_the_fitted_odds():
    base = load_model("default")
    profiles, columns, y = _population(3000, 1)
    batch = score_many(profiles, columns, base, now=NOW)
    features = feature_matrix(batch)
    _, weights = fit_logistic(features.x, y)
    fit = learned_model(base, features, weights)
    text = model_text(fit.model, ["learned in a test", ""])
    assert text.startswith("# learned in a test\n#\n")
    reloaded = parse_model(text)
    assert reloaded.fingerprint == fit.model.fingerprint
    assert reloaded.name == "default-learned" and reloaded.version == base.version + 1
    learned = score_many(profiles, columns, reloaded, now=NOW)
    total = learned.affinity + learned.engagement
    assert 0 <= learned.affinity.min() and learned.affinity.max() <= 100
    # total is the fitted log-odds up to rounding: it ranks about as well as the fitted probabilities
    logit = features.x @ weights
    assert roc_auc(y, total) == pytest.approx(roc_auc(y, logit), abs=0.01)
    assert roc_auc(y, total) >= roc_auc(y, batch.affinity + batch.engagement) - 0.005
    # the demo request weighs more than an email open in the learned points
    events = reloaded.engagement.events
    assert events["demo_request"].points > events["email_open"].points
