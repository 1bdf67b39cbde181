"""Inputs: columns from records, subsets, and refusals of inputs that cannot be right."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pytest

from leadsync.config.scoring_model import load_model
from leadsync.scoring import EVENT_TYPES, EventColumns, EventColumnsBuilder, score_many
from leadsync.scoring.columns import HARD_BOUNCE, MACHINE

from .helpers import NOW, ago, event, profile

DEFAULT = load_model("default")


def test_columns_from_records_intern_campaigns_and_urls_and_set_flags() -> None:
    columns = EventColumns.from_records(
        [
            [
                event("email_open", ago(1), campaign="c1", machine=True),
                event("page_view", ago(2), url="https://a/"),
            ],
            [
                event("email_bounce", ago(1), campaign="c1", bounce_type="hard"),
                event("page_view", ago(1), url="https://a/"),
            ],
        ]
    )
    assert columns.person.tolist() == [0, 0, 1, 1]
    assert [EVENT_TYPES[k] for k in columns.kind] == ["email_open", "page_view", "email_bounce", "page_view"]
    assert columns.campaign.tolist() == [0, -1, 0, -1]
    assert columns.url.tolist() == [-1, 0, -1, 0]
    assert columns.urls == ("https://a/",)
    assert columns.flags.tolist() == [MACHINE, 0, HARD_BOUNCE, 0]
    assert columns.at[0] == ago(1).timestamp()


def test_naive_event_times_are_taken_as_utc() -> None:
    builder = EventColumnsBuilder()
    builder.add(0, "email_open", datetime(2026, 1, 1))
    assert builder.build().at.tolist() == [datetime.fromisoformat("2026-01-01T00:00:00+00:00").timestamp()]


def test_for_persons_renumbers() -> None:
    columns = EventColumns.from_records(
        [[event("email_open", ago(1))], [], [event("form_submit", ago(1))] * 2]
    )
    sub = columns.for_persons([2, 0], n_persons=3)
    assert sorted(zip(sub.person.tolist(), [EVENT_TYPES[k] for k in sub.kind], strict=True)) == [
        (0, "form_submit"),
        (0, "form_submit"),
        (1, "email_open"),
    ]


def test_mismatched_columns_are_refused() -> None:
    good = EventColumns.from_records([[event("email_open", ago(1))]])
    with pytest.raises(ValueError, match="column kind"):
        EventColumns(good.person, good.kind[:0], good.at, good.campaign, good.url, good.flags)


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        score_many([profile()], EventColumns.empty(), DEFAULT, now=datetime(2026, 1, 1))


def test_events_of_unknown_persons_are_refused() -> None:
    columns = EventColumns.from_records([[], [event("email_open", ago(1))]])
    with pytest.raises(ValueError, match="outside"):
        score_many([profile()], columns, DEFAULT, now=NOW)


def test_previous_must_match_profiles() -> None:
    with pytest.raises(ValueError, match="previous"):
        score_many([profile()], EventColumns.empty(), DEFAULT, now=NOW, previous=[])


def test_nobody_and_no_events() -> None:
    batch = score_many([], EventColumns.empty(), DEFAULT, now=NOW)
    assert len(batch) == 0
    assert batch.sentences() == []
    assert np.asarray(batch.affinity).size == 0


def test_unknown_event_type_codes_are_refused() -> None:
    good = EventColumns.from_records([[event("email_open", ago(1))]])
    with pytest.raises(ValueError, match="event type codes"):
        EventColumns(good.person, np.array([99], dtype=np.int8), good.at, good.campaign, good.url, good.flags)


def test_scoring_persons_in_ranges_of_sorted_columns_equals_scoring_everyone_at_once():
    from bench.scoring_bench import NOW, synthetic_population
    from leadsync.config.scoring_model import load_model

    profiles, columns = synthetic_population(900, 20_000, 3)
    model = load_model("default")
    everyone = score_many(profiles, columns, model, now=NOW)
    by_person = columns.sorted_by_person()
    for start in range(0, len(profiles), 250):
        stop = min(start + 250, len(profiles))
        part = score_many(profiles[start:stop], by_person.person_range(start, stop), model, now=NOW)
        assert part.results() == [everyone.result(i) for i in range(start, stop)]


def test_contribution_dicts_equal_the_as_dict_of_every_contribution():
    from bench.scoring_bench import NOW, synthetic_population
    from leadsync.config.scoring_model import load_model

    profiles, columns = synthetic_population(600, 12_000, 5)
    batch = score_many(profiles, columns, load_model("default"), now=NOW)
    rows = list(range(0, 600, 7))
    assert batch.contribution_dicts(rows) == [
        [c.as_dict() for c in batch.result(i).contributions] for i in rows
    ]
