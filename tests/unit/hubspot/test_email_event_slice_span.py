"""Which email events a time slice keeps (``_in_span``): its own span only, the first slice less
what the first page already held, and an event it cannot date always (the stream quarantines it)."""

from __future__ import annotations

import pytest

from leadsync.connectors.hubspot.connector import _created, _in_span


@pytest.mark.parametrize(
    ("event", "above", "below", "kept"),
    [
        ({"id": "a", "created": 100}, 100, 200, True),  # at its lower bound
        ({"id": "a", "created": 99}, 100, 200, False),  # the slice before holds it
        ({"id": "a", "created": 199}, 100, 200, True),
        ({"id": "a", "created": 200}, 100, 200, False),  # the next slice holds it
        ({"id": "a", "created": 10**13}, 100, None, True),  # the last slice is open-ended
        ({"id": "a", "created": 100}, {"a"}, 200, False),  # the first page held it
        ({"id": "b", "created": 100}, {"a"}, 200, True),
        ({"id": "b", "created": 5}, {"a"}, 200, True),  # before the first page's newest, not on it
        ({"id": "c"}, 100, 200, True),  # no time: kept for quarantine
        ({"id": "c", "created": "soon"}, 100, 200, True),
        (["not", "an", "event"], 100, 200, True),
    ],
)
def test_a_slice_keeps_only_what_lies_in_its_own_span(event, above, below, kept):
    assert _in_span(event, _created(event), above, below) is kept
