"""The garbage collector is paused over a block and comes back as it was."""

from __future__ import annotations

import gc
import threading

import pytest

from leadsync.connectors.gcpause import collector_paused


@pytest.fixture(autouse=True)
def _collector_restored():
    was = gc.isenabled()
    yield
    (gc.enable if was else gc.disable)()


@pytest.mark.parametrize("enabled_before", [True, False])
def test_the_collector_is_off_inside_and_as_before_after(enabled_before: bool) -> None:
    (gc.enable if enabled_before else gc.disable)()
    with collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled() is enabled_before


def test_nested_blocks_turn_it_back_on_only_when_the_outer_one_ends() -> None:
    gc.enable()
    with collector_paused():
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()


def test_it_comes_back_on_when_the_block_raises() -> None:
    gc.enable()
    with pytest.raises(ValueError), collector_paused():
        raise ValueError("boom")
    assert gc.isenabled()


def test_as_a_decorator_each_call_pauses_and_restores() -> None:
    gc.enable()

    @collector_paused()
    def inside() -> bool:
        return gc.isenabled()

    assert [inside(), inside()] == [False, False]
    assert gc.isenabled()


def test_blocks_overlapping_on_two_threads_leave_it_on_after_the_last_ends() -> None:
    gc.enable()
    first_in, first_may_end = threading.Event(), threading.Event()
    seen: list[bool] = []

    def first() -> None:
        with collector_paused():
            first_in.set()
            first_may_end.wait(5)
        seen.append(gc.isenabled())  # the second thread's block is still open

    thread = threading.Thread(target=first)
    thread.start()
    first_in.wait(5)
    with collector_paused():
        first_may_end.set()
        thread.join(5)
        assert seen == [False]
    assert gc.isenabled()
