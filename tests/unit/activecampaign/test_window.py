"""The incremental window: overlap, client-side checks and de-duplication (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from leadsync.connectors.activecampaign.window import Window

H = timedelta(hours=1)
T0 = datetime(2026, 6, 1, 12, tzinfo=UTC)


def test_given_a_full_run_when_it_ends_then_since_is_the_newest_stamp_and_seen_covers_the_overlap() -> None:
    window = Window.start(None, lookback=H, full=False)
    assert window.bound_text() is None
    for key, stamp in (("1", T0 - 3 * H), ("2", T0 - timedelta(minutes=30)), ("3", T0)):
        assert window.accept(key, stamp)
    cursor = window.checkpoint(None)
    assert cursor["since"] == T0.isoformat()
    assert set(cursor["seen"]) == {"2", "3"}


def test_given_nothing_changed_when_the_server_returns_the_overlap_again_then_nothing_is_emitted() -> None:
    window = Window.start({"since": T0.isoformat(), "seen": {"3": T0.isoformat()}}, lookback=H, full=False)
    assert not window.accept("3", T0)  # same key and stamp: already emitted
    assert not window.accept("1", T0 - 3 * H)  # an ignored filter returned old rows: dropped
    assert window.accept("3", T0 + H)  # changed since: emitted
    assert (window.dropped_seen, window.dropped_old) == (1, 1)


def test_given_the_account_offset_when_building_the_filter_then_it_is_sent_in_that_offset() -> None:
    window = Window.start({"since": T0.isoformat(), "seen": {}}, lookback=H, full=False)
    window.learn_offset("2026-06-01T07:00:00-05:00")
    assert window.bound_text() == "2026-06-01T06:00:00-05:00"


def test_given_a_run_that_dies_when_resuming_then_the_position_and_recent_keys_survive() -> None:
    window = Window.start({"since": T0.isoformat(), "seen": {}}, lookback=H, full=False)
    window.accept("5", T0 + H)
    mid = window.checkpoint({"offset": 100})
    resumed = Window.start(mid, lookback=H, full=False)
    assert resumed.resume == {"offset": 100} and resumed.high == T0 + H
    assert resumed.checkpoint(None)["seen"] == {"5": (T0 + H).isoformat()}


def test_given_full_when_starting_then_the_cursor_is_ignored() -> None:
    assert Window.start({"since": T0.isoformat(), "seen": {"1": "x"}}, lookback=H, full=True).bound is None
