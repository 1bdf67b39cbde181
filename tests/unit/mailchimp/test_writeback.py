from __future__ import annotations

from datetime import UTC, datetime

import pytest

from leadsync.connectors.mailchimp.writeback import ValueRefused, field_defs, merge_value, owned_tag, tag_stem


@pytest.mark.parametrize("prefix", ["leadsync_", "ls_", "acme_scores_", "x"])
def test_given_prefix_when_fields_defined_then_tags_fit_mailchimp_limit(prefix: str) -> None:
    defs = field_defs(prefix)
    tags = [d.tag for d in defs.values()]
    assert all(len(t) <= 10 and t.replace("_", "").isalnum() and t.isupper() for t in tags)
    assert len(set(tags)) == len(tags) == 7
    assert all(d.name.startswith(prefix) for d in defs.values())


@pytest.mark.parametrize(
    ("logical", "value", "expected"),
    [
        ("affinity", 71.0, 71),
        ("engagement", 12.345, 12.35),
        ("engagement", None, ""),
        ("scored_at", datetime(2026, 11, 1, 23, 30, tzinfo=UTC), "2026-11-01"),
        ("scored_at", "2026-11-01T23:30:00Z", "2026-11-01"),
        ("reason", "é" * 200, "é" * 127),  # 255 bytes, cut on a character boundary
    ],
)
def test_given_value_when_converted_then_mailchimp_value(
    logical: str, value: object, expected: object
) -> None:
    assert merge_value(field_defs("leadsync_")[logical], value) == expected


@pytest.mark.parametrize(
    ("logical", "value"),
    [
        ("affinity", "high"),
        ("affinity", True),
        ("scored_at", "soon"),
        ("stage", {"a": 1}),
        ("affinity", float("nan")),
    ],
)
def test_given_unwritable_value_when_converted_then_refused(logical: str, value: object) -> None:
    with pytest.raises(ValueRefused):
        merge_value(field_defs("leadsync_")[logical], value)


def test_given_tag_names_when_checked_then_only_prefixed_tags_are_ours() -> None:
    assert owned_tag("leadsync_stage:decision", "leadsync_")
    assert not owned_tag("VIP customer", "leadsync_")
    assert tag_stem("leadsync_") == "LEAD"
