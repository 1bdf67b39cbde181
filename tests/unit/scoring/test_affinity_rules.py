"""Affinity rules: patterns, values, ranges, email domains, groups, negation, clamping."""

from __future__ import annotations

import pytest

from leadsync.connectors.records import Profile
from leadsync.scoring import score_person

from .helpers import NOW, model, profile

RULES = """
[[affinity.rules]]
name = "c_level"
attribute = "job_title"
group = "role"
patterns = ['\\bchief\\b', '\\bceo\\b']
points = 25

[[affinity.rules]]
name = "vp"
attribute = "job_title"
group = "role"
patterns = ['\\bvp\\b']
points = 20

[[affinity.rules]]
name = "senior_fallback"
attribute = "seniority"
group = "role"
values = ["director"]
points = 15

[[affinity.rules]]
name = "saas"
attribute = "industry"
values = ["SaaS", "software"]
points = 20

[[affinity.rules]]
name = "mid_size"
attribute = "company_size"
min = 50
max = 199
points = 15

[[affinity.rules]]
name = "big"
attribute = "company_size"
min = 1000
points = 5

[[affinity.rules]]
name = "home_market"
attribute = "country"
values = ["us", "united states"]
points = 10

[[affinity.rules]]
name = "free_mail"
attribute = "email_domain"
values = ["gmail.com"]
points = -10

[[affinity.rules]]
name = "academic"
attribute = "email_domain"
values = ["edu", "ac.uk"]
points = -20
"""
AFFINITY = model(RULES)


def _rules(person: Profile) -> dict[str, int]:
    result = score_person(person, [], AFFINITY, now=NOW)
    # raw_points: the rule's own points (its share of a clamped score may differ)
    return {c.rule: int(c.raw_points) for c in result.contributions if c.score == "affinity"}


CASES = [
    # (behaviour, profile attributes, matched rules)
    ("title pattern, case-insensitive", {"job_title": "Chief Revenue Officer"}, {"c_level": 25}),
    ("pattern needs a word boundary", {"job_title": "Mischief Manager"}, {}),
    ("first match in a group wins", {"job_title": "CEO and VP Sales"}, {"c_level": 25}),
    ("a later rule of the group when the earlier ones miss", {"job_title": "VP Finance"}, {"vp": 20}),
    (
        "seniority used when no title rule matched",
        {"job_title": "Analyst", "seniority": "Director"},
        {"senior_fallback": 15},
    ),
    (
        "title rule beats seniority in the same group",
        {"job_title": "VP", "seniority": "director"},
        {"vp": 20},
    ),
    ("values match whole values, case and spaces ignored", {"industry": "  saas "}, {"saas": 20}),
    ("values do not match substrings", {"industry": "SaaS consulting"}, {}),
    ("range lower bound is inclusive", {"company_size": 50}, {"mid_size": 15}),
    ("range upper bound is inclusive", {"company_size": 199}, {"mid_size": 15}),
    ("below a range", {"company_size": 49}, {}),
    ("between two ranges", {"company_size": 500}, {}),
    ("open-ended range", {"company_size": 250_000}, {"big": 5}),
    ("missing size matches no range", {"company_size": None}, {}),
    ("country value", {"country": "United States"}, {"home_market": 10}),
    ("free mail domain", {"email": "ana@GMAIL.com"}, {"free_mail": -10}),
    ("domain suffix on label boundary", {"email": "ana@cs.mit.edu"}, {"academic": -20}),
    ("multi-label suffix", {"email": "ana@ox.ac.uk"}, {"academic": -20}),
    ("suffix must be a whole label", {"email": "ana@reedu.com"}, {}),
    ("missing attributes match nothing", {}, {}),
]


@pytest.mark.parametrize(("what", "attrs", "expected"), CASES, ids=[c[0] for c in CASES])
def test_affinity_rule_kinds(what: str, attrs: dict, expected: dict[str, int]) -> None:
    email = attrs.pop("email", "ana@acme.io")
    assert _rules(profile(email, **attrs)) == expected


def test_given_negated_rule_when_domain_not_listed_then_it_matches_and_missing_does_not() -> None:
    negated = model(
        '[[affinity.rules]]\nname = "business"\nattribute = "email_domain"\nnegate = true\n'
        'values = ["gmail.com"]\npoints = 10\n'
        '[[affinity.rules]]\nname = "no_title"\nattribute = "job_title"\nnegate = true\n'
        'patterns = ["."]\npoints = 1\n'
    )
    assert score_person(profile("a@acme.io"), [], negated, now=NOW).affinity == 10
    assert score_person(profile("a@gmail.com"), [], negated, now=NOW).affinity == 0
    # a missing title matches neither the rule nor its negation
    assert score_person(profile("a@gmail.com", job_title=None), [], negated, now=NOW).affinity == 0


@pytest.mark.parametrize(
    ("attrs", "affinity"),
    [
        ({"job_title": "CEO", "industry": "saas", "company_size": 60, "country": "us"}, 70),
        ({"email": "a@gmail.com"}, 0),  # -10 clamps to 0
        ({"email": "a@gmail.com", "job_title": "VP", "industry": "saas"}, 30),
    ],
)
def test_affinity_is_base_plus_points_clamped(attrs: dict, affinity: int) -> None:
    email = attrs.pop("email", "ana@acme.io")
    assert score_person(profile(email, **attrs), [], AFFINITY, now=NOW).affinity == affinity


def test_given_points_over_100_when_clamped_then_contributions_still_sum_to_100() -> None:
    heavy = model(
        "[affinity]\nbase = 10\n"
        + "".join(
            f'[[affinity.rules]]\nname = "r{i}"\nattribute = "country"\nvalues = ["us"]\npoints = {p}\n'
            for i, p in enumerate([40, 35, 30, -7])
        )
    )
    result = score_person(profile(country="us"), [], heavy, now=NOW)
    parts = [c for c in result.contributions if c.score == "affinity"]
    assert result.affinity == 100
    assert sum(c.points for c in parts) == 100
    assert {c.rule for c in parts} == {"r0", "r1", "r2", "r3", "base"}
    assert [c.raw_points for c in parts if c.rule == "r3"] == [-7]


def test_affinity_contribution_carries_the_matched_value() -> None:
    result = score_person(profile(job_title="VP Finance"), [], AFFINITY, now=NOW)
    (vp,) = [c for c in result.contributions if c.rule == "vp"]
    assert vp.value == "VP Finance"
    assert vp.count == 1
    assert vp.last_seen is None
