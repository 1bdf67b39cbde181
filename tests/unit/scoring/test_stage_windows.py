"""Buying stage: deepest stage whose signals fall inside its recency window."""

from __future__ import annotations

import pytest

from leadsync.scoring import score_person

from .helpers import NOW, ago, event, model, profile

STAGED = model(
    """
[engagement.pages.pricing]
patterns = ['/pricing']
points = 0

[engagement.pages.docs]
patterns = ['/docs']
points = 0

[stage.investigation]
signals = ["page:docs", "content_download"]
window_days = 60
min_count = 2

[stage.decision]
signals = ["page:pricing", "demo_request"]
window_days = 30

[stage.action]
signals = ["purchase", "deal_won"]
window_days = 365
"""
)


def _view(path: str, days: float):
    return event("page_view", ago(days), url=f"https://example.com{path}")


CASES = [
    # (behaviour, events, stage)
    ("no signals: awareness", [], "awareness"),
    ("other activity: awareness", [event("email_open", ago(1))], "awareness"),
    ("one investigation signal is not enough", [_view("/docs/a", 5)], "awareness"),
    ("two investigation signals", [_view("/docs/a", 5), event("content_download", ago(50))], "investigation"),
    (
        "one investigation signal out of window",
        [_view("/docs/a", 5), event("content_download", ago(61))],
        "awareness",
    ),
    ("window edge is inside", [_view("/docs/a", 60), _view("/docs/b", 60)], "investigation"),
    ("pricing page by URL pattern", [_view("/pricing?plan=pro", 29)], "decision"),
    ("other URLs are no signal", [_view("/blog/on-pricing", 1)], "awareness"),
    (
        "decision signal out of window falls back",
        [_view("/pricing", 31), _view("/docs", 1), _view("/docs", 2)],
        "investigation",
    ),
    ("deepest stage wins", [_view("/docs", 1), _view("/docs", 2), event("demo_request", ago(3))], "decision"),
    ("purchase: action", [event("purchase", ago(200))], "action"),
    ("won deal: action", [event("deal_won", ago(1)), event("demo_request", ago(1))], "action"),
    ("old purchase falls back", [event("purchase", ago(400)), event("demo_request", ago(1))], "decision"),
    ("future signals do not count", [event("purchase", ago(-3))], "awareness"),
]


@pytest.mark.parametrize(("what", "events", "stage"), CASES, ids=[c[0] for c in CASES])
def test_stage_windows(what: str, events: list, stage: str) -> None:
    assert score_person(profile(), events, STAGED, now=NOW).stage == stage


def test_a_model_without_a_stage_never_reaches_it() -> None:
    only_action = model('[stage.action]\nsignals = ["purchase"]\nwindow_days = 30\n')
    assert score_person(profile(), [event("demo_request", ago(1))], only_action, now=NOW).stage == "awareness"
