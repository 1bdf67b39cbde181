"""The bench keeps the sample of median ratio when it times a short pull more than once."""

from __future__ import annotations

import pytest

from bench.platforms import median_sample


@pytest.mark.parametrize(
    ("ratios", "kept"),
    [
        ([0.97], 0),
        ([0.861, 1.021, 0.967], 2),
        ([1.021, 0.861, 0.967], 2),
        ([0.95, 0.95, 0.80], 0),
        ([0.90, 0.80], 1),  # an even count keeps the lower median
    ],
)
def test_median_sample_is_the_sample_of_the_median_ratio(ratios: list[float], kept: int) -> None:
    assert median_sample([{"ratio": ratio} for ratio in ratios]) == kept
