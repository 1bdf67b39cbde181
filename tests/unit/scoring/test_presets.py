"""The presets behave as their files say: points recipe sort key, Pardot MQL rule, default grid."""

from __future__ import annotations

import pytest

from leadsync.config.scoring_model import load_model
from leadsync.scoring import score_person

from .helpers import NOW, ago, event, profile

POINTS = load_model("points")
PARDOT = load_model("pardot")
DEFAULT = load_model("default")


@pytest.mark.parametrize(
    ("attrs", "events", "composite"),
    [
        # awareness (1000) + no persona attributes + nothing done
        ({"email": "a@gmail.com"}, [], 1000),
        # awareness + business email (1 attribute) + one open (5 points)
        ({"email": "a@acme.io"}, [event("email_open", NOW)], 1105),
        # decision (3000) + title, industry, size, country, business email (5) + demo 30 + pricing 10
        (
            {
                "email": "a@acme.io",
                "job_title": "VP Sales",
                "industry": "SaaS",
                "company_size": 300,
                "country": "US",
            },
            [event("demo_request", NOW), event("page_view", NOW, url="https://x.io/pricing")],
            3540,
        ),
        # action (4000); engagement clamps at 99 in the key
        ({"email": "a@acme.io"}, [event("purchase", NOW), *[event("demo_request", NOW)] * 5], 4199),
    ],
)
def test_points_recipe_sort_key(attrs: dict, events: list, composite: int) -> None:
    email = attrs.pop("email")
    result = score_person(profile(email, **attrs), events, POINTS, now=NOW)
    assert result.composite == composite


def test_points_recipe_open_5_ebook_10() -> None:
    result = score_person(
        profile(), [event("email_open", NOW), event("content_download", NOW)], POINTS, now=NOW
    )
    assert {c.rule: c.raw_points for c in result.contributions if c.score == "engagement"} == {
        "email_open": 5.0,
        "content_download": 10.0,
    }


def test_pardot_grade_starts_at_d_and_moves_in_letter_steps() -> None:
    nobody = score_person(profile("a@gmail.com"), [], PARDOT, now=NOW)
    assert (nobody.affinity, nobody.grade[0]) == (12, "D")
    fits = profile("a@acme.io", job_title="VP Sales", industry="SaaS", company_size=300, country="US")
    assert score_person(fits, [], PARDOT, now=NOW).affinity == 12 + 5 * 17  # five 2/3-letter criteria


@pytest.mark.parametrize(
    ("forms", "attrs", "lifecycle"),
    [
        (2, {"job_title": "VP", "country": "US"}, "marketing_qualified_lead"),  # score 100, grade B
        (1, {"job_title": "VP", "country": "US"}, "lead"),  # score 50
        (2, {}, "lead"),  # grade C
    ],
)
def test_pardot_mql_is_score_100_and_grade_b(forms: int, attrs: dict, lifecycle: str) -> None:
    events = [event("form_submit", NOW) for _ in range(forms)]
    assert score_person(profile("a@acme.io", **attrs), events, PARDOT, now=NOW).lifecycle == lifecycle


def test_default_hot_lead() -> None:
    person = profile(
        "ana@acme.io", job_title="VP Finance", industry="Computer Software", company_size=800, country="US"
    )
    events = [
        event("demo_request", ago(2)),
        event("page_view", ago(1), url="https://example.com/pricing"),
        event("page_view", ago(3), url="https://example.com/pricing"),
        event("meeting_booked", ago(1)),
        event("content_download", ago(10)),
    ]
    result = score_person(person, events, DEFAULT, now=NOW)
    assert result.affinity == 75
    assert result.stage == "decision"
    assert result.grade == "A1"
    assert result.lifecycle == "opportunity"
    assert not result.disqualified
