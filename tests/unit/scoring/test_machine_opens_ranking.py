"""Acceptance: machine opens barely move the engagement ranking.

Three opens within two seconds of delivery are added for 30 % of persons; the engagement ranking
must keep a Spearman correlation of at least 0.95 with the ranking without them.
"""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from leadsync.config.scoring_model import PRESETS, load_model
from leadsync.connectors.records import EventRecord, EventType
from leadsync.scoring import EventColumns, score_many

from .helpers import NOW, event
from .synth import population, spearman


def _with_machine_opens(people: list, share: float, seed: int) -> tuple[list[list[EventRecord]], int]:
    rng = random.Random(seed)
    chosen = set(rng.sample(range(len(people)), int(len(people) * share)))
    out, added = [], 0
    for i, (_, events) in enumerate(people):
        events = list(events)
        if i in chosen:
            sends = [e for e in events if e.type == EventType.EMAIL_SENT]
            if not sends:  # deliver one first, so there is something to open
                sends = [event("email_sent", NOW - timedelta(days=rng.uniform(0, 60)), campaign="c-extra")]
                events += sends
            for _ in range(3):
                send = rng.choice(sends)
                at = send.occurred_at + timedelta(seconds=rng.uniform(0, 2))
                events.append(event("email_open", at, campaign=send.properties["campaign"]))
                added += 1
        out.append(events)
    return out, added


@pytest.mark.parametrize("preset", PRESETS)
def test_machine_opens_keep_the_engagement_ranking(preset: str) -> None:
    people = population(3000, seed=21)
    profiles = [p for p, _ in people]
    scoring_model = load_model(preset)
    clean = score_many(profiles, EventColumns.from_records(e for _, e in people), scoring_model, now=NOW)
    noisy_events, added = _with_machine_opens(people, share=0.30, seed=5)
    noisy = score_many(profiles, EventColumns.from_records(noisy_events), scoring_model, now=NOW)

    assert int(noisy.machine_filtered.sum() - clean.machine_filtered.sum()) == added
    rho = spearman(clean.engagement_points.tolist(), noisy.engagement_points.tolist())
    rho_scores = spearman(clean.engagement.tolist(), noisy.engagement.tolist())
    assert rho >= 0.95, rho
    assert rho_scores >= 0.95, rho_scores


def test_without_the_filter_machine_opens_would_break_the_ranking() -> None:
    """The test above has teeth: with the on-delivery filter off, the points preset (opens +5) fails it."""
    people = population(3000, seed=21)
    profiles = [p for p, _ in people]
    points = load_model("points")
    unfiltered = points.model_copy(
        update={"machine": points.machine.model_copy(update={"open_after_send_seconds": 0.0})}
    )
    clean = score_many(profiles, EventColumns.from_records(e for _, e in people), unfiltered, now=NOW)
    noisy_events, _ = _with_machine_opens(people, share=0.30, seed=5)
    noisy = score_many(profiles, EventColumns.from_records(noisy_events), unfiltered, now=NOW)
    assert (noisy.engagement_points != clean.engagement_points).mean() > 0.2
    assert spearman(clean.engagement_points.tolist(), noisy.engagement_points.tolist()) < 0.95
