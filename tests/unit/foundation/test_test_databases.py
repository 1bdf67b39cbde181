"""The test databases a killed run left on the PostgreSQL server are dropped by the next run on the
same machine, and only those (tests/stores.py)."""

from __future__ import annotations

import pytest

from tests.stores import HOST, leftover_databases

LIVE, DEAD = 4242, 4343


@pytest.mark.parametrize(
    ("name", "dropped"),
    [
        (f"leadsync_test_{HOST}_gw0_{DEAD}_a1b2c3", True),  # this machine, its process gone
        (f"leadsync_test_{HOST}_main_{DEAD}_a1b2c3", True),
        (f"leadsync_test_{HOST}_gw1_{LIVE}_a1b2c3", False),  # a run still going
        (f"leadsync_test_otherhost_gw0_{DEAD}_a1b2c3", False),  # another machine's run
        (f"leadsync_test_{HOST}x_gw0_{DEAD}_a1b2c3", False),  # a machine whose name starts like ours
        (f"leadsync_test_gw0_{DEAD}_a1b2c3", False),  # the older naming, without a host: not ours to tell
        ("leadsync_bench_a1b2c3d4", False),
        ("postgres", False),
        ("test", False),
    ],
)
def test_only_this_machines_databases_of_dead_processes_are_leftovers(name: str, dropped: bool) -> None:
    assert leftover_databases([name], alive=lambda pid: pid == LIVE) == ([name] if dropped else [])
