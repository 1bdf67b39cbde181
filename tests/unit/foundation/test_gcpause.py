"""The garbage collector is paused over a block and comes back as it was."""

from __future__ import annotations

import gc
import threading
import weakref
from contextlib import nullcontext

import pytest

from leadsync.connectors import gcpause
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


class _Cycle:
    def __init__(self) -> None:
        self.me = self


def _cycle_freed_by_collection() -> weakref.ref[_Cycle]:
    made = _Cycle()
    ref = weakref.ref(made)
    del made
    return ref


@pytest.mark.parametrize(
    ("enabled_before", "paused", "seconds_since", "collects"),
    [
        (True, True, gcpause.COLLECT_EVERY_S + 1, True),  # a long paused stretch frees its cycles
        (True, True, 0.0, False),  # not due yet
        (True, False, gcpause.COLLECT_EVERY_S + 1, False),  # not paused: the collector runs itself
        (False, True, gcpause.COLLECT_EVERY_S + 1, False),  # turned off by the program: left off
    ],
)
def test_a_paused_stretch_collects_its_cycles_when_due(
    monkeypatch, enabled_before: bool, paused: bool, seconds_since: float, collects: bool
) -> None:
    (gc.enable if enabled_before else gc.disable)()
    clock = [1000.0]
    monkeypatch.setattr(gcpause, "_clock", lambda: clock[0])
    with collector_paused() if paused else nullcontext():
        cycle = _cycle_freed_by_collection()
        clock[0] += seconds_since
        assert gcpause.collect_when_due() is collects
        if collects or paused:  # (not paused, the collector may run on its own at any time)
            assert (cycle() is None) is collects
        assert gcpause.collect_when_due() is False  # the next one is due COLLECT_EVERY_S later
