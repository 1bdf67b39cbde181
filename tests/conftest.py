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


def pytest_collection_modifyitems(items: list[Any]) -> None:
    """The long tests first, longest first (``@pytest.mark.slow(seconds)``: about how long one takes
    on two cores, most of it waiting on rate limits or schedules), so that with ``make test``'s
    ``--dist load`` each worker starts on one and none is left running alone at the end. The rest
    keeps its order (the same on every worker, as xdist requires)."""

    def seconds(item: Any) -> float:
        slow = item.get_closest_marker("slow")
        return 0.0 if slow is None else float(slow.args[0] if slow.args else 30)

    items.sort(key=lambda item: -seconds(item))


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
