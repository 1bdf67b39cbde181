"""The benchmark runs (small sizes here; the real figures come from `python -m bench.scoring_bench`)."""

from __future__ import annotations

from bench.scoring_bench import run


def test_benchmark_runs_and_reports_its_figures() -> None:
    figures = run(persons=500, events=10_000, seed=1, repeat=1)
    assert figures["persons"] == 500
    assert figures["events"] == 10_000
    assert figures["changed_persons"] == 5
    assert figures["machine_filtered"] >= 0
    for key in ("full_seconds", "full_cpu_seconds", "incremental_seconds"):
        assert figures[key] >= 0
