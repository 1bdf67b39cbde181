"""Lifecycle: rules over the scores, hysteresis between runs, disqualifiers that hold promotion."""

from __future__ import annotations

import pytest

from leadsync.scoring import Previous, score_person

from .helpers import NOW, ago, event, model, profile

LIFECYCLE = model(
    """
[[affinity.rules]]
name = "fit"
attribute = "country"
values = ["us"]
points = 50

[[affinity.rules]]
name = "competitor"
attribute = "email_domain"
values = ["rival.example"]
points = 0

[engagement.events.form_submit]
points = 10

[engagement.events.demo_request]
points = 0

[engagement.events.email_unsubscribe]
points = 0

[engagement.events.purchase]
points = 0

[stage.decision]
signals = ["demo_request"]
window_days = 30

[lifecycle]
margin = 10

[[lifecycle.lead.when]]
events = ["form_submit"]

[[lifecycle.marketing_qualified_lead.when]]
min_affinity = 40
min_engagement = 40

[[lifecycle.marketing_qualified_lead.when]]
events = ["demo_request"]
within_days = 90

[[lifecycle.sales_qualified_lead.when]]
min_affinity = 50
min_engagement = 70
min_stage = "decision"

[lifecycle.customer]
blockable = false

[[lifecycle.customer.when]]
events = ["purchase"]

[[disqualifiers]]
name = "unsubscribed"
events = ["email_unsubscribe"]
max_lifecycle = "lead"

[[disqualifiers]]
name = "competitor"
rules = ["competitor"]
max_lifecycle = "subscriber"

[[disqualifiers]]
name = "recent_unsubscribe"
events = ["email_unsubscribe"]
within_days = 30
max_lifecycle = "subscriber"
"""
)


def _forms(n: int) -> list:
    return [event("form_submit", ago(1)) for _ in range(n)]


def _lifecycle(
    events: list, *, email: str = "a@acme.io", country: str | None = "us", previous: str | None = None
) -> str:
    person = profile(email, country=country)
    return score_person(person, events, LIFECYCLE, now=NOW, previous=Previous(lifecycle=previous)).lifecycle


RULES = [
    # (behaviour, events, country, lifecycle)
    ("nothing: subscriber", [], "us", "subscriber"),
    ("a form: lead", _forms(1), "us", "lead"),
    ("fit and engagement at the thresholds: MQL", _forms(4), "us", "marketing_qualified_lead"),
    ("engagement without fit stays lead", _forms(4), None, "lead"),
    (
        "hand-raiser: MQL without the scores",
        [event("demo_request", ago(10))],
        None,
        "marketing_qualified_lead",
    ),
    ("hand-raise out of its window", [event("demo_request", ago(91))], None, "subscriber"),
    ("SQL needs the stage too", _forms(8), "us", "marketing_qualified_lead"),
    ("SQL", [*_forms(8), event("demo_request", ago(1))], "us", "sales_qualified_lead"),
    ("customer from a purchase", [event("purchase", ago(300))], None, "customer"),
]


@pytest.mark.parametrize(("what", "events", "country", "expected"), RULES, ids=[r[0] for r in RULES])
def test_lifecycle_rules(what: str, events: list, country: str | None, expected: str) -> None:
    assert _lifecycle(events, country=country) == expected


HYSTERESIS = [
    # (behaviour, forms (10 engagement each), previous, lifecycle)
    ("promotion at the threshold", 4, "lead", "marketing_qualified_lead"),
    ("no promotion below it", 3, "lead", "lead"),
    ("an MQL stays MQL within the margin", 3, "marketing_qualified_lead", "marketing_qualified_lead"),
    ("an MQL stays down to threshold minus margin", 3, "sales_qualified_lead", "marketing_qualified_lead"),
    ("an MQL drops below threshold minus margin", 2, "marketing_qualified_lead", "lead"),
    ("no previous: plain thresholds", 3, None, "lead"),
]


@pytest.mark.parametrize(
    ("what", "forms", "previous", "expected"), HYSTERESIS, ids=[h[0] for h in HYSTERESIS]
)
def test_lifecycle_hysteresis(what: str, forms: int, previous: str | None, expected: str) -> None:
    assert _lifecycle(_forms(forms), previous=previous) == expected


def test_engagement_wobbling_around_a_threshold_does_not_flip_the_lifecycle() -> None:
    previous = None
    seen = []
    for forms in [4, 3, 4, 3, 3, 4]:  # engagement 40, 30, 40, ... around the MQL threshold of 40
        result = score_person(profile(country="us"), _forms(forms), LIFECYCLE, now=NOW, previous=previous)
        seen.append(result.lifecycle)
        previous = result
    assert seen == ["marketing_qualified_lead"] * 6


DISQUALIFIERS = [
    # (behaviour, events, email, lifecycle, disqualifiers)
    (
        "unsubscribe holds an MQL at lead",
        [*_forms(5), event("email_unsubscribe", ago(40))],
        "a@acme.io",
        "lead",
        ("unsubscribed",),
    ),
    (
        "unsubscribe does not promote",
        [event("email_unsubscribe", ago(40))],
        "a@acme.io",
        "subscriber",
        ("unsubscribed",),
    ),
    (
        "a hand-raiser is held too",
        [event("demo_request", ago(1)), event("email_unsubscribe", ago(40))],
        "a@acme.io",
        "lead",
        ("unsubscribed",),
    ),
    (
        "the strictest disqualifier wins",
        [*_forms(5), event("email_unsubscribe", ago(5))],
        "a@acme.io",
        "subscriber",
        ("unsubscribed", "recent_unsubscribe"),
    ),
    ("competitor by affinity rule", _forms(5), "a@rival.example", "subscriber", ("competitor",)),
    (
        "a customer is never held back",
        [event("purchase", ago(1)), event("email_unsubscribe", ago(5))],
        "a@acme.io",
        "customer",
        ("unsubscribed", "recent_unsubscribe"),
    ),
    ("no disqualifier", _forms(5), "a@acme.io", "marketing_qualified_lead", ()),
]


@pytest.mark.parametrize(
    ("what", "events", "email", "expected", "names"), DISQUALIFIERS, ids=[d[0] for d in DISQUALIFIERS]
)
def test_disqualifiers(what: str, events: list, email: str, expected: str, names: tuple[str, ...]) -> None:
    result = score_person(profile(email, country="us"), events, LIFECYCLE, now=NOW)
    assert result.lifecycle == expected
    assert result.disqualifiers == names
    assert result.disqualified == bool(names)
    if names:
        assert result.disqualified_reason is not None
        assert "Disqualified:" in result.sentence


def test_disqualifier_does_not_change_the_scores() -> None:
    clean = score_person(profile(country="us"), _forms(5), LIFECYCLE, now=NOW)
    held = score_person(
        profile(country="us"), [*_forms(5), event("email_unsubscribe", ago(40))], LIFECYCLE, now=NOW
    )
    assert (clean.affinity, clean.engagement) == (held.affinity, held.engagement)
