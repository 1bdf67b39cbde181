"""Machine activity: flagged events, opens on delivery, link-scanner click bursts."""

from __future__ import annotations

from datetime import timedelta

import pytest

from leadsync.scoring import score_person

from .helpers import NOW, ago, event, model, profile

FILTERED = model(
    """
[engagement.events.email_open]
points = 1

[engagement.events.email_click]
points = 10

[engagement.events.page_view]
points = 2

[machine]
open_after_send_seconds = 10
scanner_min_links = 3
scanner_window_seconds = 5

[stage.decision]
signals = ["email_click"]
window_days = 30
"""
)
SENT = ago(2)


def _after(seconds: float):
    return SENT + timedelta(seconds=seconds)


def _sent(campaign: str = "c1"):
    return event("email_sent", SENT, campaign=campaign)


def _click(seconds: float, url: str, campaign: str = "c1"):
    return event("email_click", _after(seconds), campaign=campaign, url=url)


OPENS = [
    # (behaviour, events, opens that count)
    (
        "a human open long after delivery counts",
        [_sent(), event("email_open", _after(3600), campaign="c1")],
        1,
    ),
    ("an open at delivery is machine", [_sent(), event("email_open", _after(0), campaign="c1")], 0),
    ("an open 10 s after delivery is machine", [_sent(), event("email_open", _after(10), campaign="c1")], 0),
    ("an open 11 s after delivery counts", [_sent(), event("email_open", _after(11), campaign="c1")], 1),
    (
        "fast after another campaign's send counts",
        [_sent("c2"), event("email_open", _after(1), campaign="c1")],
        1,
    ),
    ("fast open without any send counts", [event("email_open", _after(1), campaign="c1")], 1),
    ("open without a campaign is not timed", [_sent(), event("email_open", _after(1))], 1),
    ("open before the send counts", [_sent(), event("email_open", _after(-5), campaign="c1")], 1),
    (
        "the latest send of the campaign is the delivery",
        [
            _sent(),
            event("email_sent", _after(7200), campaign="c1"),
            event("email_open", _after(7201), campaign="c1"),
        ],
        0,
    ),
    ("platform flag", [event("email_open", ago(1), campaign="c1", machine=True)], 0),
    (
        "three fast opens all filtered",
        [_sent(), *(event("email_open", _after(s), campaign="c1") for s in (0.2, 1.0, 1.9))],
        0,
    ),
]


@pytest.mark.parametrize(("what", "events", "counted"), OPENS, ids=[o[0] for o in OPENS])
def test_machine_opens(what: str, events: list, counted: int) -> None:
    result = score_person(profile(), events, FILTERED, now=NOW)
    assert result.engagement_points == counted
    assert result.machine_filtered == len([e for e in events if e.type == "email_open"]) - counted


CLICKS = [
    # (behaviour, events, clicks that count)
    ("one click is human", [_click(60, "a")], 1),
    ("three links within seconds is a scanner", [_click(60, "a"), _click(61, "b"), _click(63, "c")], 0),
    ("chained within the window each time", [_click(60, "a"), _click(64, "b"), _click(68, "c")], 0),
    ("two links is not enough", [_click(60, "a"), _click(61, "b")], 2),
    ("same link three times is not a scanner", [_click(60, "a"), _click(61, "a"), _click(62, "a")], 3),
    ("slow clicks on three links are human", [_click(60, "a"), _click(600, "b"), _click(1200, "c")], 3),
    (
        "a burst among human clicks only drops the burst",
        [_click(60, "a"), _click(61, "b"), _click(62, "c"), _click(5000, "a")],
        1,
    ),
    (
        "clicks of different emails do not combine",
        [_click(60, "a", "c1"), _click(61, "b", "c2"), _click(62, "c", "c3")],
        3,
    ),
    ("flagged click", [event("email_click", ago(1), campaign="c1", url="a", machine=True)], 0),
]


@pytest.mark.parametrize(("what", "events", "counted"), CLICKS, ids=[c[0] for c in CLICKS])
def test_scanner_clicks(what: str, events: list, counted: int) -> None:
    result = score_person(profile(), events, FILTERED, now=NOW)
    assert result.engagement_points == 10 * counted
    # machine clicks are not stage signals either
    assert result.stage == ("decision" if counted else "awareness")


def test_flagged_page_view_is_dropped_when_the_flag_is_honoured() -> None:
    events = [event("page_view", ago(1), url="https://x.io/", machine=True)]
    assert score_person(profile(), events, FILTERED, now=NOW).engagement_points == 0
    ignoring = model("[engagement.events.page_view]\npoints = 2\n[machine]\nhonour_platform_flag = false\n")
    assert score_person(profile(), events, ignoring, now=NOW).engagement_points == 2


def test_scanner_bursts_of_two_persons_do_not_combine() -> None:
    from leadsync.scoring import EventColumns, score_many

    first = [_click(60, "a"), _click(61, "b")]
    second = [_click(62, "c")]
    batch = score_many(
        [profile("a@x.io"), profile("b@x.io")], EventColumns.from_records([first, second]), FILTERED, now=NOW
    )
    assert batch.engagement_points.tolist() == [20.0, 10.0]


def test_huge_campaign_codes_are_renumbered_not_overflowed() -> None:
    import numpy as np

    from leadsync.scoring import EVENT_TYPES, EventColumns, score_many

    sent, opened = EVENT_TYPES.index("email_sent"), EVENT_TYPES.index("email_open")
    at = SENT.timestamp()
    columns = EventColumns(
        person=np.array([0, 0, 1, 1], dtype=np.int64),
        kind=np.array([sent, opened, sent, opened], dtype=np.int8),
        at=np.array([at, at + 1, at, at + 3600]),
        campaign=np.array([2**61, 2**61, 2**61 - 5, 2**61 - 5], dtype=np.int64),
        url=np.full(4, -1, dtype=np.int64),
        flags=np.zeros(4, dtype=np.uint8),
    )
    batch = score_many([profile("a@x.io"), profile("b@x.io")], columns, FILTERED, now=NOW)
    assert batch.machine_filtered.tolist() == [1, 0]
