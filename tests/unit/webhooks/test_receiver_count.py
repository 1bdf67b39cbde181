"""The receiver's count of waiting deliveries (the queue bound): a recount that raced the processor
does not leave the count above what waits (seen after a flood: 1 waiting with the queue empty)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from leadsync.config.settings import LeadsyncConfig, StoreConfig, WebhooksConfig
from leadsync.sync.store import make_engine
from leadsync.sync.webhooks import queue
from leadsync.sync.webhooks import receiver as receiver_module
from leadsync.sync.webhooks.receiver import Receiver


@pytest.fixture
def receiver(tmp_path: Path) -> Receiver:
    config = LeadsyncConfig(
        store=StoreConfig(url=f"sqlite:///{tmp_path / 'store.db'}"),
        webhooks=WebhooksConfig(port=0, queue_limit=10),
        sources=[],
    )
    return Receiver(make_engine(config.store.url), config)


def test_a_recount_that_raced_a_worked_batch_is_read_again(receiver: Receiver, monkeypatch) -> None:
    counts = iter([5, 3])  # the first read still saw the 2 rows the processor then marked done

    def queued_count(_engine):  # noqa: ANN001, ANN202
        stored = next(counts)
        if stored == 5:
            receiver.processed(2)  # the processor's word, while the count was being read
        return stored

    receiver._waiting = 5
    monkeypatch.setattr(receiver_module.queue, "queued_count", queued_count)
    receiver._recount()
    assert receiver.waiting == 3


def test_a_recount_without_a_race_is_taken_at_once(receiver: Receiver, monkeypatch) -> None:
    reads: list[int] = []
    monkeypatch.setattr(receiver_module.queue, "queued_count", lambda _engine: reads.append(1) or 4)
    receiver._waiting = 9
    receiver._recount()
    assert receiver.waiting == 4 and len(reads) == 1


def test_a_recount_while_a_commit_is_settled_does_not_hold_its_rows_twice(
    receiver: Receiver, monkeypatch
) -> None:
    """The rows of a commit are stored before their reservation is let go: a count read in between
    would find them in the store and still reserved (seen after a flood: 1 waiting, the queue empty)."""
    stored = 0
    recounts: list[threading.Thread] = []

    def enqueue_many(_engine, requests) -> None:  # noqa: ANN001
        nonlocal stored
        for request in requests:
            request.queued = len(request.deliveries)
            stored += request.queued
        recount = threading.Thread(target=receiver._recount)  # the event loop, at the bound
        recount.start()
        recount.join(0.3)  # it must wait for the settling, not count the rows twice
        recounts.append(recount)

    monkeypatch.setattr(receiver_module.queue, "enqueue_many", enqueue_many)
    monkeypatch.setattr(receiver_module.queue, "queued_count", lambda _engine: stored)
    assert receiver._reserve(3)
    receiver._store([queue.Enqueue("ac", [object()] * 3, None, datetime.now(UTC))])  # type: ignore[list-item]
    recounts[0].join(5)
    assert not recounts[0].is_alive()
    assert receiver.waiting == 3 == stored


def test_a_failed_commit_lets_its_reservation_go(receiver: Receiver, monkeypatch) -> None:
    def enqueue_many(_engine, _requests) -> None:  # noqa: ANN001
        raise OSError("disk full")

    monkeypatch.setattr(receiver_module.queue, "enqueue_many", enqueue_many)
    assert receiver._reserve(4)
    with pytest.raises(OSError):
        receiver._store([queue.Enqueue("ac", [object()] * 4, None, datetime.now(UTC))])  # type: ignore[list-item]
    assert receiver.waiting == 0
