"""Reading one page ahead keeps the order, the errors and the early stop of a plain loop."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import closing

import pytest

from leadsync.connectors.readahead import merge_ahead, read_ahead


def test_items_arrive_in_order_and_all_of_them():
    assert list(read_ahead(iter(range(1000)))) == list(range(1000))


def test_an_error_of_the_source_is_raised_after_the_items_before_it():
    def pages() -> Iterator[int]:
        yield 1
        yield 2
        raise ValueError("page 3 is malformed")

    got = []
    with pytest.raises(ValueError, match="page 3 is malformed"):
        for item in read_ahead(pages()):
            got.append(item)
    assert got == [1, 2]


def test_the_next_item_is_produced_while_the_consumer_works_on_the_current_one():
    produced: list[float] = []

    def pages() -> Iterator[int]:
        for n in range(3):
            time.sleep(0.05)  # the request
            produced.append(time.monotonic())
            yield n

    consumed: list[float] = []
    for _ in read_ahead(pages()):
        consumed.append(time.monotonic())
        time.sleep(0.1)  # the ingest
    # page 2 was fetched before page 1's ingest ended (a plain loop would fetch it after)
    assert produced[1] < consumed[0] + 0.1


def test_at_most_depth_items_wait_ahead_of_the_consumer():
    produced = 0

    def pages() -> Iterator[int]:
        nonlocal produced
        for n in range(100):
            produced += 1
            yield n

    with closing(read_ahead(pages(), depth=2)) as items:
        assert next(items) == 0
        time.sleep(0.2)
        # one handed over, two in the queue, one waiting to be put: never the whole source
        assert produced <= 4


def test_closing_early_stops_the_worker_and_closes_the_source():
    closed = threading.Event()

    def pages() -> Iterator[int]:
        try:
            n = 0
            while True:
                yield n
                n += 1
        finally:
            closed.set()

    with closing(read_ahead(pages())) as items:
        for item in items:
            if item == 3:
                break
    assert closed.wait(2), "the source was not closed"
    assert not any(t.name == "read-ahead" and t.is_alive() for t in threading.enumerate())


# --- several sources side by side (merge_ahead) ------------------------------------------------


def test_merged_sources_hand_over_every_item_each_source_in_its_order():
    sources = [iter(range(n * 100, n * 100 + 50)) for n in range(4)]
    got = list(merge_ahead(sources, depth=3))
    assert sorted(got) == [(n, v) for n in range(4) for v in range(n * 100, n * 100 + 50)]
    for n in range(4):
        assert [v for i, v in got if i == n] == list(range(n * 100, n * 100 + 50))


def test_merged_sources_are_read_side_by_side_from_the_start():
    started = [threading.Event() for _ in range(3)]

    def source(n: int) -> Iterator[int]:
        started[n].set()
        yield n

    with merge_ahead([source(n) for n in range(3)], depth=5):
        # nothing asked for yet: every worker is already reading
        assert all(event.wait(2) for event in started)


def test_an_error_of_one_merged_source_is_raised_and_stops_the_others():
    closed = threading.Event()

    def endless() -> Iterator[int]:
        try:
            while True:
                time.sleep(0.001)
                yield 0
        finally:
            closed.set()

    def failing() -> Iterator[int]:
        yield 1
        raise ValueError("slice 2 is malformed")

    with pytest.raises(ValueError, match="slice 2 is malformed"):
        for _ in merge_ahead([endless(), failing()], depth=2, name="merged-test"):
            pass
    assert closed.wait(2), "the other source was not closed"
    assert not any(t.name.startswith("merged-test") and t.is_alive() for t in threading.enumerate())


def test_closing_merged_sources_unread_stops_their_workers():
    closed = threading.Event()

    def endless() -> Iterator[int]:
        try:
            while True:
                yield 0
        finally:
            closed.set()

    merge_ahead([endless()], depth=1, name="unread-test").close()
    assert closed.wait(2), "the source was not closed"
    assert not any(t.name == "unread-test" and t.is_alive() for t in threading.enumerate())
