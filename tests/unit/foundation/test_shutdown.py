"""SIGTERM/SIGINT handling (``sync.shutdown``) and a re-score that stops between two batches.

The signal tests send real signals to this process; the handlers are put back after each, and the
``exit`` the handler would call (``os._exit``) is replaced by a recorder.
"""

from __future__ import annotations

import os
import select as io_select
import signal
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

import leadsync.sync.scorebatch as scorebatch
from leadsync.config.scoring_model import load_model
from leadsync.connectors import stopping
from leadsync.connectors.base import PullBatch
from leadsync.connectors.records import ContactRecord, Platform
from leadsync.sync.ingest import ingest_batch
from leadsync.sync.rescore import rescore
from leadsync.sync.rescore_workers import _exit_with_parent
from leadsync.sync.shutdown import SignalStop, signal_exit_code
from leadsync.sync.store import make_engine
from leadsync.sync.store.models import ChangedPerson, Score


@pytest.fixture
def handlers() -> Iterator[None]:
    saved = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGINT)}
    yield
    for signum, handler in saved.items():
        signal.signal(signum, handler)


def deliver(signum: int) -> None:
    os.kill(os.getpid(), signum)
    time.sleep(0.05)  # the handler runs in the main thread at the next bytecode boundary


def test_exit_codes_are_128_plus_the_signal() -> None:
    assert signal_exit_code(signal.SIGINT) == 130
    assert signal_exit_code(signal.SIGTERM) == 143


def test_first_signal_requests_a_stop_and_a_second_exits_at_once(handlers: None) -> None:
    exits: list[int] = []
    told: list[int] = []
    with SignalStop(exit=exits.append, on_stop=told.append, grace_s=30) as signals:
        deliver(signal.SIGTERM)
        assert stopping.requested() and told == [signal.SIGTERM] and exits == []
        assert signals.exit_code == 143 and signals.name == "SIGTERM"
        deliver(signal.SIGINT)
        assert exits == [130]  # at once, not after the grace period
    signals.cancel()


def test_the_grace_period_bounds_a_stop_whatever_is_still_running(handlers: None) -> None:
    exits: list[int] = []
    with SignalStop(exit=exits.append, clean_exit=lambda _signum: 0, grace_s=0.2):
        deliver(signal.SIGINT)
        time.sleep(0.5)  # a request in flight that does not end
    assert exits == [0]  # the daemon's clean status, not a failure


def test_handlers_are_put_back_when_no_signal_came(handlers: None) -> None:
    before = signal.getsignal(signal.SIGTERM)
    with SignalStop():
        assert signal.getsignal(signal.SIGTERM) is not before
    assert signal.getsignal(signal.SIGTERM) is before
    assert not stopping.requested()


def test_a_stopped_rescore_keeps_what_it_wrote_and_the_rest_is_scored_next_time(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:  # noqa: ANN001
    engine = make_engine(f"sqlite:///{tmp_path / 'store.db'}")
    contacts = [
        ContactRecord(source="hs", platform=Platform.HUBSPOT, remote_id=str(i), email=f"p{i}@acme.io")
        for i in range(5)
    ]
    now = datetime(2026, 11, 1, tzinfo=UTC)
    ingest_batch(engine, PullBatch("contacts", contacts=contacts), source="hs", now=now)
    monkeypatch.setattr(scorebatch, "BATCH", 2)  # 3 batches: 2, 2, 1 persons
    model = load_model("default")

    def scored() -> tuple[int, int]:
        with engine.connect() as connection:
            return (
                connection.execute(select(func.count()).select_from(Score)).scalar_one(),
                connection.execute(select(func.count()).select_from(ChangedPerson)).scalar_one(),
            )

    with pytest.raises(stopping.Stopped):
        rescore(engine, model, now=now, workers=1, progress=lambda _done: stopping.request())
    assert scored() == (2, 3)  # the first batch is committed; the others keep their marks
    stopping.reset()
    counts = rescore(engine, model, now=now, workers=1)
    assert counts.scored == 3
    assert scored() == (5, 0)
    engine.dispose()


def test_a_rescore_worker_ends_when_its_parent_is_gone() -> None:
    # child forks a "worker" that watches it, then exits without closing anything (os._exit, as
    # after the grace period); the worker must end on its own. It holds the pipe's write end, so
    # reading here sees EOF once it has ended.
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the forked processes
        os.close(read_end)
        parent = os.getpid()
        if os.fork() == 0:
            _exit_with_parent(parent, every_s=0.05)
            os._exit(3)  # unreachable: _exit_with_parent never returns
        os._exit(0)
    os.close(write_end)
    os.waitpid(child, 0)
    ready, _, _ = io_select.select([read_end], [], [], 5.0)
    try:
        assert ready and os.read(read_end, 1) == b"", "the orphaned worker is still running"
    finally:
        os.close(read_end)
