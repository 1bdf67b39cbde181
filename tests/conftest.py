"""Session hooks shared by the whole suite: the reliability figures (tests/reliability/figures.py),
and a clean stop request (``connectors.stopping``, one per process) around every test."""

from collections.abc import Iterator

import pytest

from leadsync.connectors import stopping
from tests.reliability.figures import pytest_runtest_logreport, pytest_terminal_summary

__all__ = ["pytest_runtest_logreport", "pytest_terminal_summary"]


@pytest.fixture(autouse=True)
def _no_stop_request() -> Iterator[None]:
    stopping.reset()
    yield
    stopping.reset()
