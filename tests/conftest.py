"""Session hooks and fixtures shared by the whole suite: the reliability figures
(tests/reliability/figures.py), both stores (tests/stores.py: ``store_url``), and a clean stop
request (``connectors.stopping``, one per process) around every test."""

from collections.abc import Iterator
from typing import Any

import pytest

from leadsync.connectors import stopping
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


@pytest.fixture(autouse=True)
def _no_stop_request() -> Iterator[None]:
    stopping.reset()
    yield
    stopping.reset()
