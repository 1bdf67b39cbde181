"""Session hooks and fixtures shared by the whole suite: the reliability figures
(tests/reliability/figures.py) and both stores (tests/stores.py: ``store_url``)."""

from typing import Any

from tests import stores
from tests.reliability import figures
from tests.stores import postgres_session, store_kind, store_url

__all__ = [
    "postgres_session",
    "pytest_runtest_logreport",
    "pytest_terminal_summary",
    "store_kind",
    "store_url",
]


def pytest_runtest_logreport(report: Any) -> None:
    figures.pytest_runtest_logreport(report)
    stores.pytest_runtest_logreport(report)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    figures.pytest_terminal_summary(terminalreporter)
    stores.pytest_terminal_summary(terminalreporter)
