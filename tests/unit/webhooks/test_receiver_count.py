"""The receiver's count of waiting deliveries (the queue bound): a recount that raced the processor
does not leave the count above what waits (seen after a flood: 1 waiting with the queue empty)."""

from __future__ import annotations

from pathlib import Path

import pytest

from leadsync.config.settings import LeadsyncConfig, StoreConfig, WebhooksConfig
from leadsync.sync.store import make_engine
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
