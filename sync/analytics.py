"""Backtest and model fitting over the store: the thin I/O shell around ``scoring.backtest`` and
``scoring.learn``.

``snapshot(engine, model, as_of=...)`` rebuilds every score as it was at ``as_of``: the persons who
existed then (platform creation time at or before it), their events up to ``as_of`` only, scored by
the pure engine with ``now = as_of``. Outcomes come from the platforms' own records:

* ``deal_won``: won deals (HubSpot deals in a won stage, ActiveCampaign won deals);
* ``purchase``: e-commerce orders (Mailchimp);
* ``customer``: either of those, or a HubSpot lifecycle stage ``customer`` with its date
  (``hs_lifecyclestage_customer_date``).

A person who converted at or before ``as_of`` is already a customer, not a lead to predict: left
out and counted in ``excluded_prior``. Limitation: attributes (title, company size...) are as last
pulled, not as they were at ``as_of``; the store keeps no attribute history.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import Engine, and_, func, select

from leadsync.config.scoring_model import LIFECYCLE_LEVELS, STAGES, ScoringModel
from leadsync.connectors.errors import ConfigError, LeadsyncError
from leadsync.scoring import score_many
from leadsync.scoring.backtest import Backtest, backtest, label_outcomes, roc_auc
from leadsync.scoring.learn import (
    Features,
    TooFewOutcomes,
    choose_c,
    feature_matrix,
    fit_logistic,
    learned_model,
    model_text,
    persons_needed,
    shortfall,
)
from leadsync.sync.scorebatch import load_event_columns, load_profiles
from leadsync.sync.store.models import Attributes, Event, Identity, Person

__all__ = ["OUTCOMES", "FitReport", "Snapshot", "fit_model", "parse_horizon", "run_backtest", "snapshot"]

OUTCOMES: dict[str, tuple[str, ...]] = {
    "deal_won": ("deal_won",),
    "purchase": ("purchase",),
    "customer": ("deal_won", "purchase"),
}
CUSTOMER_DATE = "hs_lifecyclestage_customer_date"
MQL = LIFECYCLE_LEVELS.index("marketing_qualified_lead")
CHUNK = 5_000  # persons scored together (bounds memory and SQL parameter counts)


def parse_horizon(text: str) -> timedelta:
    """``90d``, ``12w`` or a bare number of days."""
    value = text.strip().lower()
    unit = {"d": 1, "w": 7}.get(value[-1:], None)
    number = value[:-1] if unit else value
    try:
        days = float(number) * (unit or 1)
    except ValueError:
        raise ConfigError(
            f"horizon {text!r}: write it as days, e.g. 90d (or weeks, 12w)", key="--horizon"
        ) from None
    if not math.isfinite(days) or days <= 0:
        raise ConfigError(f"horizon {text!r} must be a positive number of days", key="--horizon")
    return timedelta(days=days)


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _parse_time(value: Any) -> datetime | None:
    try:
        if isinstance(value, (int, float)) or (isinstance(value, str) and value.isdigit()):
            return datetime.fromtimestamp(int(value) / 1000, UTC)  # HubSpot epoch milliseconds
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except (TypeError, ValueError, OverflowError):
        return None
    return _utc(moment)


@dataclass
class Snapshot:
    """Everyone who existed at ``as_of``, scored as of then (index ``i`` = ``person_ids[i]``)."""

    as_of: datetime
    person_ids: list[int]
    affinity: np.ndarray
    engagement: np.ndarray
    composite: np.ndarray
    grade: list[str]
    stage: list[str]
    lifecycle: list[str]
    level: np.ndarray
    features: Features

    @property
    def total(self) -> np.ndarray:
        """affinity + engagement: the single number compared between models."""
        return self.affinity + self.engagement

    def scores(self) -> dict[str, np.ndarray]:
        """The scores the backtest ranks leads by; ``stage`` as its order (awareness 0 … action 3)."""
        return {
            "total": self.total,
            "affinity": self.affinity,
            "engagement": self.engagement,
            "stage": np.array([STAGES.index(name) for name in self.stage], dtype=np.float64),
            "composite": self.composite,
        }

    def take(self, mask: np.ndarray) -> Snapshot:
        rows = np.flatnonzero(mask)
        return Snapshot(
            as_of=self.as_of,
            person_ids=[self.person_ids[i] for i in rows],
            affinity=self.affinity[rows],
            engagement=self.engagement[rows],
            composite=self.composite[rows],
            grade=[self.grade[i] for i in rows],
            stage=[self.stage[i] for i in rows],
            lifecycle=[self.lifecycle[i] for i in rows],
            level=self.level[rows],
            features=Features(self.features.x[rows], self.features.columns),
        )


def existing_persons(engine: Engine, as_of: datetime) -> list[int]:
    """Persons whose first platform record was created at or before ``as_of`` (or has no date)."""
    with engine.connect() as connection:
        rows = connection.execute(
            select(Identity.person_id, func.min(Attributes.created_at))
            .join(
                Attributes,
                and_(Attributes.source == Identity.source, Attributes.remote_id == Identity.remote_id),
                isouter=True,
            )
            .where(Identity.person_id.is_not(None))
            .group_by(Identity.person_id)
            .order_by(Identity.person_id)
        ).all()
        known = {pid for pid, _ in rows}
        extra = [
            pid
            for pid in connection.execute(select(Person.id).order_by(Person.id)).scalars()
            if pid not in known
        ]
    kept = [pid for pid, created in rows if created is None or _utc(created) <= as_of]
    return sorted(kept + extra)


def snapshot(
    engine: Engine, model: ScoringModel, *, as_of: datetime, person_ids: Sequence[int] | None = None
) -> Snapshot:
    """Score everyone as of ``as_of`` with only the data up to it."""
    if as_of.tzinfo is None:
        raise ValueError("as_of must be timezone-aware (UTC)")
    ids = list(existing_persons(engine, as_of) if person_ids is None else person_ids)
    parts: dict[str, list[Any]] = defaultdict(list)
    columns: tuple[str, ...] = ()
    with engine.connect() as connection:
        # one scan of the events for everyone (the event table has no index on the contact)
        all_events = load_event_columns(connection, ids, as_of).sorted_by_person()
        for start in range(0, len(ids), CHUNK):
            chunk = ids[start : start + CHUNK]
            profiles = load_profiles(connection, chunk)
            events = all_events.person_range(start, start + len(chunk))
            batch = score_many(profiles, events, model, now=as_of)
            features = feature_matrix(batch)
            columns = features.columns
            parts["x"].append(features.x)
            parts["affinity"].append(batch.affinity.astype(np.float64))
            parts["engagement"].append(batch.engagement.astype(np.float64))
            parts["composite"].append(batch.composite.astype(np.float64))
            parts["level"].append(batch.lifecycle.astype(np.int64))
            parts["grade"] += [batch.grade(i) for i in range(len(batch))]
            parts["stage"] += [STAGES[k] for k in batch.stage.tolist()]
    if not ids:
        empty = np.zeros(0)
        return Snapshot(
            as_of, [], empty, empty, empty, [], [], [], np.zeros(0, np.int64), Features(np.zeros((0, 0)), ())
        )
    level = np.concatenate(parts["level"])
    return Snapshot(
        as_of=as_of,
        person_ids=ids,
        affinity=np.concatenate(parts["affinity"]),
        engagement=np.concatenate(parts["engagement"]),
        composite=np.concatenate(parts["composite"]),
        grade=parts["grade"],
        stage=parts["stage"],
        lifecycle=[LIFECYCLE_LEVELS[k] for k in level.tolist()],
        level=level,
        features=Features(np.concatenate(parts["x"]), columns),
    )


def outcome_times(engine: Engine, outcome: str) -> dict[int, list[datetime]]:
    """When each person converted, per the platforms (see the module docstring)."""
    if outcome not in OUTCOMES:
        raise ConfigError(f"unknown outcome {outcome!r}; outcomes: {', '.join(OUTCOMES)}", key="--outcome")
    times: dict[int, list[datetime]] = defaultdict(list)
    with engine.connect() as connection:
        rows = connection.execute(
            select(Identity.person_id, Event.occurred_at)
            .join(
                Identity, and_(Identity.source == Event.source, Identity.remote_id == Event.remote_contact_id)
            )
            .where(Event.type.in_(OUTCOMES[outcome]), Identity.person_id.is_not(None))
        )
        for pid, at in rows:
            times[pid].append(_utc(at))  # type: ignore[arg-type]
        if outcome == "customer":
            rows = connection.execute(
                select(Identity.person_id, Attributes.raw)
                .join(
                    Identity,
                    and_(Identity.source == Attributes.source, Identity.remote_id == Attributes.remote_id),
                )
                .where(Attributes.lifecycle_stage == "customer", Identity.person_id.is_not(None))
            )
            for pid, raw in rows:
                at = _parse_time((raw or {}).get(CUSTOMER_DATE))
                if at is not None:
                    times[pid].append(at)
    return times


def labels(
    snap: Snapshot, times: dict[int, list[datetime]], horizon: timedelta
) -> tuple[np.ndarray, np.ndarray]:
    """(converted before as_of, converted within the horizon) per person of ``snap``."""
    index = {pid: i for i, pid in enumerate(snap.person_ids)}
    person, at = [], []
    for pid, moments in times.items():
        if pid in index:
            person += [index[pid]] * len(moments)
            at += [m.timestamp() for m in moments]
    return label_outcomes(person, at, len(snap.person_ids), as_of=snap.as_of, horizon=horizon)


def evaluate(
    snap: Snapshot, times: dict[int, list[datetime]], *, outcome: str, horizon: timedelta
) -> tuple[Backtest, Snapshot, np.ndarray]:
    """The backtest of ``snap``: figures, the leads kept (not converted before), their outcomes."""
    before, within = labels(snap, times, horizon)
    leads = snap.take(~before)
    y = within[~before]
    figures = backtest(
        outcome=outcome,
        as_of=snap.as_of,
        horizon=horizon,
        y=y,
        scores=leads.scores(),
        grade=leads.grade,
        stage=leads.stage,
        lifecycle=leads.lifecycle,
        mql=leads.level >= MQL,
        excluded_prior=int(before.sum()),
        stages=STAGES,
        lifecycles=LIFECYCLE_LEVELS,
    )
    return figures, leads, y


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def _converted(snap: Snapshot, times: dict[int, list[datetime]], horizon: timedelta) -> int:
    """Leads of ``snap`` (not converted before its date) who converted within ``horizon``."""
    before, within = labels(snap, times, horizon)
    return int(within[~before].sum())


def run_backtest(
    engine: Engine, model: ScoringModel, *, outcome: str, as_of: datetime, horizon: timedelta
) -> Backtest:
    times = outcome_times(engine, outcome)
    figures, _, _ = evaluate(snapshot(engine, model, as_of=as_of), times, outcome=outcome, horizon=horizon)
    return figures


def latest_event(engine: Engine) -> datetime | None:
    with engine.connect() as connection:
        return _utc(connection.execute(select(func.max(Event.occurred_at))).scalar_one_or_none())


def default_as_of(engine: Engine, horizon: timedelta) -> datetime:
    """The latest as-of date whose whole horizon has been observed: last event minus the horizon."""
    last = latest_event(engine)
    if last is None:
        raise LeadsyncError("the store holds no events: run `leadsync pull` first")
    day = (last - horizon).replace(hour=0, minute=0, second=0, microsecond=0)
    return day


@dataclass
class FitReport:
    outcome: str
    train_as_of: datetime
    holdout_as_of: datetime
    horizon_days: float
    train_persons: int
    train_converted: int
    holdout_persons: int
    holdout_converted: int
    base_model: str
    base_auc: float | None
    learned_auc: float | None
    weights: dict[str, float]
    text: str
    c: float = 1.0

    @property
    def beats(self) -> bool:
        return (
            self.learned_auc is not None and self.base_auc is not None and self.learned_auc >= self.base_auc
        )

    def verdict(self) -> str:
        base = "n/a" if self.base_auc is None else f"{self.base_auc:.3f}"
        learned = "n/a" if self.learned_auc is None else f"{self.learned_auc:.3f}"
        word = "beats or equals" if self.beats else "does NOT beat"
        return f"holdout ROC-AUC of total (affinity + engagement): learned {learned}, {self.base_model} {base}: the learned model {word} {self.base_model}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "train_as_of": self.train_as_of.isoformat(),
            "holdout_as_of": self.holdout_as_of.isoformat(),
            "horizon_days": self.horizon_days,
            "train": {"persons": self.train_persons, "converted": self.train_converted},
            "holdout": {"persons": self.holdout_persons, "converted": self.holdout_converted},
            "base_model": self.base_model,
            "holdout_roc_auc": {"base": self.base_auc, "learned": self.learned_auc},
            "beats_base": self.beats,
            "c": self.c,
            "weights": self.weights,
        }


def fit_model(
    engine: Engine,
    base: ScoringModel,
    *,
    outcome: str,
    as_of: datetime,
    horizon: timedelta,
    train_horizon: timedelta | None = None,
    c: float | None = None,
) -> FitReport:
    """Learn points on an earlier window, compare with ``base`` on the holdout window.

    Train: features as of ``as_of - train_horizon``, outcomes in ``(that, as_of]``. Holdout:
    features as of ``as_of``, outcomes in ``(as_of, as_of + horizon]``. The windows do not overlap.
    """
    train_horizon = train_horizon or horizon / 2
    train_as_of = as_of - train_horizon
    times = outcome_times(engine, outcome)
    train_snap = snapshot(engine, base, as_of=train_as_of)
    holdout_snap = snapshot(engine, base, as_of=as_of)
    _, train, y_train = evaluate(train_snap, times, outcome=outcome, horizon=train_horizon)
    base_figures, holdout, y_hold = evaluate(holdout_snap, times, outcome=outcome, horizon=horizon)
    problem = shortfall(int(y_train.sum()), int(y_hold.sum()))
    if problem is not None:
        windows = (
            f"training: leads as of {train_as_of.date()}, outcomes to {as_of.date()}; "
            f"holdout: leads as of {as_of.date()}, outcomes to {(as_of + horizon).date()}"
        )
        persons = len(existing_persons(engine, as_of + horizon))
        needed = persons_needed(persons, int(y_train.sum()), int(y_hold.sum()))
        advice = [
            f"the store's whole history holds {len(times)} converters ({outcome}) among {persons} persons; "
            f"at that rate a fit needs about {needed:,} persons: keep syncing, and fit again when more "
            "leads have converted"
        ]
        if outcome != "customer":
            broader = outcome_times(engine, "customer")
            more = (
                _converted(train_snap, broader, train_horizon),
                _converted(holdout_snap, broader, horizon),
            )
            if shortfall(*more) is None:
                advice.insert(
                    0, f"--outcome customer (won deals and purchases) has enough: {more[0]} and {more[1]}"
                )
        raise TooFewOutcomes(
            f"{problem} ({windows}); no model written. {_sentence('; or '.join(advice))}",
            persons_needed=needed,
        )
    chosen = c is None
    if c is None:  # regularisation chosen by cross-validation on the training window only
        c = choose_c(train.features.x, y_train)
    _, weights = fit_logistic(train.features.x, y_train, c=c)
    fit = learned_model(base, train.features, weights)
    learned = snapshot(engine, fit.model, as_of=as_of, person_ids=holdout.person_ids)
    learned_auc = roc_auc(y_hold, learned.total)
    base_auc = base_figures.scores["total"].roc_auc
    report = FitReport(
        outcome=outcome,
        train_as_of=train_as_of,
        holdout_as_of=as_of,
        horizon_days=horizon.total_seconds() / 86_400,
        train_persons=len(y_train),
        train_converted=int(y_train.sum()),
        holdout_persons=len(y_hold),
        holdout_converted=int(y_hold.sum()),
        base_model=base.name,
        base_auc=base_auc,
        learned_auc=learned_auc,
        weights=fit.weights,
        text="",
        c=c,
    )
    header = [
        f"Learned by `leadsync model fit --outcome {outcome}` from {base.name!r} (logistic regression, L2, "
        f"C={c}{', chosen by cross-validation on the training window' if chosen else ''}).",
        f"Train: features as of {train_as_of.date()}, outcomes to {as_of.date()}: "
        f"{report.train_converted} of {report.train_persons} converted.",
        f"Holdout: features as of {as_of.date()}, outcomes to {(as_of + horizon).date()}: "
        f"{report.holdout_converted} of {report.holdout_persons} converted.",
        report.verdict() + ".",
        "Stages, lifecycle rules and grade bands are the base model's: review the lifecycle thresholds.",
    ]
    report.text = model_text(fit.model, header)
    return report
