"""Session hooks and fixtures shared by the whole suite: the reliability figures
(tests/reliability/figures.py), both stores (tests/stores.py: ``store_url``), and a clean stop
request (``connectors.stopping``, one per process) around every test."""

import gc
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


def pytest_configure(config: Any) -> None:
    """The cyclic collector runs a full pass a fifth as often: the test processes hold generated
    worlds of up to 5,000 persons (millions of objects, none in cycles), and each full pass over them
    cost about 0.75 s: 12 s of CPU in the HubSpot and Mailchimp integration tests, 4 s with these
    thresholds. The CLI calls the tests make keep Python's defaults (each is a new interpreter or a
    fork of one, tests/forkcli.py)."""
    gc.set_threshold(50_000, 20, 10)


def pytest_collection_modifyitems(config: Any, items: list[Any]) -> None:
    """The long tests first, spread evenly over the test processes (``@pytest.mark.slow(seconds)``:
    about how long one takes on two cores, most of it waiting on rate limits or schedules), so that
    no process is left running a long one alone at the end.

    ``make test``'s work-stealing scheduler first hands each of the N processes one contiguous block
    of the collection; each block here opens with its share of the long tests, longest first. Every
    process collects the same order, as xdist requires (N is the same for all)."""
    processes = int(getattr(config, "workerinput", {}).get("workercount", 1))
    slow = sorted((item for item in items if _seconds(item)), key=lambda item: -_seconds(item))
    rest = iter([item for item in items if not _seconds(item)])
    shares: list[list[Any]] = [[] for _ in range(processes)]
    loads = [0.0] * processes
    for item in slow:  # each to the block with the least long work so far
        block = loads.index(min(loads))
        shares[block].append(item)
        loads[block] += _seconds(item)
    ordered: list[Any] = []
    remaining = len(items)
    for block, share in enumerate(shares):
        size = remaining // (processes - block)  # the block xdist's worksteal sends this process
        remaining -= size
        ordered += share + [next(rest) for _ in range(max(size - len(share), 0))]
    items[:] = ordered + list(rest)


def _seconds(item: Any) -> float:
    slow = item.get_closest_marker("slow")
    return 0.0 if slow is None else float(slow.args[0] if slow.args else 30)


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
