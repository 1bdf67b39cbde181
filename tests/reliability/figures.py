"""The reliability suite's figures: counted by the tests from what they observed, shipped to the
controlling process in each report's ``user_properties`` (so they survive ``pytest -n``), summed and
printed at the end of the session by ``tests/conftest.py``."""

from __future__ import annotations

from collections import Counter
from typing import Any

KEY = "leadsync-reliability"
FIGURES = (
    "faults injected",
    "bad records injected",
    "records quarantined",
    "runs completed",
    "records lost",
    "records duplicated",
    "secrets leaked",
)
MUST_BE_ZERO = ("records lost", "records duplicated", "secrets leaked")

_totals: Counter[str] = Counter()
_tests: set[str] = set()


class Figures:
    """What one test observed; handed to the session when the test ends (pass or fail)."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def add(self, figure: str, count: int = 1) -> None:
        if figure not in FIGURES:
            raise KeyError(f"unknown figure {figure!r}; one of {FIGURES}")
        self.counts[figure] += int(count)


def pytest_runtest_logreport(report: Any) -> None:
    if report.when != "teardown":
        return
    for key, counts in report.user_properties:
        if key == KEY:
            _tests.add(report.nodeid)
            _totals.update(counts)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _tests:
        return
    terminalreporter.write_sep("=", f"leadsync reliability figures ({len(_tests)} tests)")
    for figure in FIGURES:
        flag = " (must be 0)" if figure in MUST_BE_ZERO else ""
        bad = figure in MUST_BE_ZERO and _totals[figure] != 0
        terminalreporter.write_line(f"{figure:>20}: {_totals[figure]}{flag}", red=bad, bold=bad)
