"""Explanations: contributions sum to the scores exactly; the reason fits 255 characters."""

from __future__ import annotations

import orjson
import pytest

from leadsync.config.scoring_model import PRESETS, load_model
from leadsync.scoring import REASON_LIMIT, EventColumns, render_explanation, score_many, score_person
from leadsync.scoring.explain import build_sentence, item_text

from .helpers import NOW, ago, event, model, profile
from .synth import population


@pytest.mark.parametrize("preset", PRESETS)
def test_contributions_sum_exactly_to_each_score_for_a_varied_population(preset: str) -> None:
    people = population(400, seed=11)
    batch = score_many(
        [p for p, _ in people], EventColumns.from_records(e for _, e in people), load_model(preset), now=NOW
    )
    for i in range(len(batch)):
        result = batch.result(i)
        for score, total in (("affinity", result.affinity), ("engagement", result.engagement)):
            assert sum(c.points for c in result.contributions if c.score == score) == total, (
                preset,
                i,
                score,
            )
        assert 0 <= result.affinity <= 100
        assert 0 <= result.engagement <= 100
        assert len(result.sentence) <= REASON_LIMIT


def test_each_share_is_its_scaled_points_rounded_within_one_point() -> None:
    people = population(200, seed=5)
    default = load_model("default")
    batch = score_many(
        [p for p, _ in people], EventColumns.from_records(e for _, e in people), default, now=NOW
    )
    for i in range(len(batch)):
        result = batch.result(i)
        if result.engagement_points <= 0:
            continue
        import math

        curved = 100 * (1 - math.exp(-result.engagement_points / default.engagement.scale))
        factor = curved / result.engagement_points
        for c in result.contributions:
            if c.score == "engagement":
                assert abs(c.points - c.raw_points * factor) < 1.0 + 1e-9


def test_explanation_prints_every_contribution_and_sums_that_match() -> None:
    default = load_model("default")
    events = [
        event("email_sent", ago(5), campaign="c1"),
        event("email_open", ago(5, -2), campaign="c1"),  # machine: 2 s after the send
        event("email_open", ago(4), campaign="c1"),
        event("email_click", ago(4), campaign="c1", url="https://x.io/a"),
        event("page_view", ago(3), url="https://example.com/pricing"),
        event("demo_request", ago(2)),
        event("email_unsubscribe", ago(1)),
    ]
    person = profile(
        "ana@acme.io", job_title="VP Finance", industry="Software", company_size=800, country="US"
    )
    result = score_person(person, events, default, now=NOW)
    text = render_explanation(result)
    lines = text.splitlines()
    for c in result.contributions:
        assert any(c.label in line and f"{c.points:+4d}" in line for line in lines), c
    assert f"{result.affinity:4d}  = affinity" in text
    assert f"{result.engagement:4d}  = engagement" in text
    assert "machine activity ignored: 1 event(s)" in text
    assert "disqualified: unsubscribed" in text
    assert result.sentence in text


def test_reason_json_lists_the_top_contributions() -> None:
    default = load_model("default")
    events = [
        event("demo_request", ago(2)),
        event("form_submit", ago(3)),
        *[event("email_open", ago(d)) for d in (1, 2)],
    ]
    result = score_person(profile(job_title="CEO", country="us"), events, default, now=NOW)
    payload = orjson.loads(result.reason_json())
    assert payload["engagement"] == result.engagement
    top = [(t["score"], t["rule"]) for t in payload["top"]]
    assert top[:2] == [("engagement", "demo_request"), ("engagement", "form_submit")]
    assert ("affinity", "title_c_level") in top
    assert len(top) <= 2 * default.explain.top
    assert all({"rule", "points", "count", "last_seen"} <= set(t) for t in payload["top"])


def test_sentence_names_grade_lifecycle_stage_and_the_top_items() -> None:
    default = load_model("default")
    result = score_person(
        profile(job_title="CEO", country="us"), [event("demo_request", ago(2))], default, now=NOW
    )
    assert result.sentence.startswith(
        f"{result.grade} marketing_qualified_lead, decision stage. Engagement {result.engagement}: demo request +"
    )
    assert "(1x, 2026-05-30)" in result.sentence
    assert "Fit 35: C-level title +25; primary market +10." in result.sentence


def test_given_long_labels_when_the_sentence_is_too_long_then_items_are_dropped_to_fit() -> None:
    long = "x" * 60
    eng = [item_text(f"{long}{i}", 10 - i, 3, "2026-05-01") for i in range(3)]
    fit = [item_text(f"{long}{i}", 10 - i) for i in range(3)]
    text = build_sentence(
        grade="A1",
        lifecycle="marketing_qualified_lead",
        stage="decision",
        affinity=90,
        engagement=80,
        engagement_items=eng,
        affinity_items=fit,
        held="Disqualified: student.",
    )
    assert len(text) <= REASON_LIMIT
    assert f"{long}0" in text  # the most important item survives
    assert text.endswith("Disqualified: student.")


def test_given_one_huge_label_then_the_sentence_is_cut_to_the_limit() -> None:
    text = build_sentence(
        grade="A1",
        lifecycle="lead",
        stage="awareness",
        affinity=1,
        engagement=1,
        engagement_items=[],
        affinity_items=[],
        held="Disqualified: " + "y" * 400,
    )
    assert len(text) == REASON_LIMIT
    assert text.endswith("...")


def test_sentence_with_custom_long_labels_from_a_model_still_fits() -> None:
    wordy = model(
        "".join(
            f'[engagement.events.{k}]\nlabel = "{k} with a very long and descriptive label for sales"\npoints = 5\n'
            for k in ("email_click", "form_submit", "content_download", "webinar_attended")
        )
    )
    events = [
        event(k, ago(1)) for k in ("email_click", "form_submit", "content_download", "webinar_attended")
    ]
    assert len(score_person(profile(), events, wordy, now=NOW).sentence) <= REASON_LIMIT


def test_a_person_with_nothing_has_an_honest_sentence() -> None:
    result = score_person(profile("x@y.io"), [], load_model("default"), now=NOW)
    assert result.contributions == ()
    assert (
        result.sentence
        == "D4 subscriber, awareness stage. Engagement 0: no recent activity. Fit 0: no matching attributes."
    )
