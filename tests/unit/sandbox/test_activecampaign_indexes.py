"""The ActiveCampaign emulator's per-contact indexes answer as the scans they replaced did: a
contact's values in field order, its tags without the removed ones, activities by time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from leadsync.sandbox.activecampaign.state import AccountState, Activity

NOW = datetime(2026, 11, 1, tzinfo=UTC)


def _scan_values(state: AccountState, contact_id: int) -> list[int]:
    return [
        v.id for v in sorted(state.field_values.values(), key=lambda v: v.field) if v.contact == contact_id
    ]


def test_values_of_a_contact_come_in_field_order_whatever_the_order_they_were_written_in() -> None:
    state = AccountState()
    for contact_id, field_id in ((2, 7), (1, 9), (2, 3), (1, 1), (2, 5), (3, 2)):
        state.set_value(contact_id, field_id, f"{contact_id}/{field_id}", NOW)
    state.set_value(2, 3, "changed", NOW)  # an update keeps its place
    for contact_id in (1, 2, 3, 4):
        assert [v.id for v in state.values_of(contact_id)] == _scan_values(state, contact_id)
    assert [v.field for v in state.values_of(2)] == [3, 5, 7]
    assert state.values_of(2)[0].value == "changed"


def test_tags_of_a_contact_leave_out_the_removed_ones() -> None:
    state = AccountState()
    for name in ("a", "b", "c"):
        state.ensure_tag(name, NOW)  # ids 1, 2, 3
    rows = [
        state.tag_contact(contact_id, tag_id, NOW)[0]
        for contact_id, tag_id in ((1, 1), (2, 1), (1, 2), (1, 3))
    ]
    state.untag(rows[2].id)
    assert [row.tag for row in state.tags_of(1)] == [1, 3]
    assert [row.tag for row in state.tags_of(2)] == [1]
    assert state.tags_of(3) == []
    state.tag_contact(1, 2, NOW)  # tagged again: a new row, last
    assert [row.tag for row in state.tags_of(1)] == [1, 3, 2]


def test_activities_by_time_follow_appends_and_counts_follow_them_too() -> None:
    state = AccountState()
    times = [NOW - timedelta(hours=h) for h in (5, 1, 3, 1)]
    for n, when in enumerate(times, start=1):
        state.activities.append(
            Activity(
                n,
                contact=n % 2,
                tstamp=when,
                reference_type="x",
                reference_id=0,
                reference_action="open",
                reference_model="x",
            )
        )
        rows, keys = state.activities_by_time()
        assert rows == sorted(state.activities, key=lambda a: (a.tstamp, a.id))
        assert keys == [(a.tstamp, a.id) for a in rows]
        counts = state.activity_counts()
        assert [counts[c] for c in (0, 1)] == [sum(a.contact == c for a in state.activities) for c in (0, 1)]
    assert [a.id for a in state.activities_by_time()[0]] == [1, 3, 2, 4]
