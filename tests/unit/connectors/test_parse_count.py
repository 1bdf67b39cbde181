"""Head counts as platforms hold them (numbers, strings, ranges) read by ``parse_count``."""

from __future__ import annotations

from typing import Any

import pytest

from leadsync.connectors.records import parse_count


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (250, 250),
        (250.0, 250),
        ("250", 250),
        (" 250 ", 250),
        ("1,200", 1200),
        ("12 000", 12000),
        ("25-50", 25),
        ("1000+", 1000),
        ("10,001+", 10001),
        ("", None),
        (None, None),
        (True, None),
        ("about fifty", None),
        ("-5", None),
        (-5, None),
        ("nan", None),
        (float("inf"), None),
    ],
)
def test_a_head_count_is_read_from_numbers_and_text_or_left_unknown(value: Any, expected: int | None) -> None:
    assert parse_count(value) == expected
