"""A push in chunks: each chunk marked pending before it is sent, recorded while the next one is
sent, and recorded before the push ends however it ends (``sync.pipeline._push_plan``).

The store side (``mark_pending``, ``record_push``) is replaced by recorders: what is checked here
is the order of the steps, which the end-to-end push tests cannot see."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import pytest

from leadsync.config.settings import LeadsyncConfig, SourceConfig
from leadsync.connectors import stopping
from leadsync.connectors.base import PushReport, ScoreUpdate
from leadsync.sync import pipeline
from leadsync.sync.runs import Run, Step
from leadsync.sync.writeback import Plan, PlannedWrite

WAIT_S = 5.0


class Steps:
    """What happened, in order, as ("pending" | "sent" | "recorded", chunk number)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.log: list[tuple[str, int]] = []

    def add(self, what: str, chunk: int) -> None:
        with self.lock:
            self.log.append((what, chunk))


def _chunk_of(items: Sequence[Any]) -> int:
    first = items[0].update.remote_id if isinstance(items[0], PlannedWrite) else items[0].remote_id
    return int(first.split(":")[1]) // 2  # two writes a chunk (PUSH_CHUNK below)


class FakeConnector:
    def __init__(self, steps: Steps, on_push: Any = None) -> None:
        self.steps = steps
        self.on_push = on_push or (lambda chunk: None)

    def ensure_fields(self) -> None:
        pass

    def push(self, updates: Sequence[ScoreUpdate]) -> PushReport:
        chunk = _chunk_of(updates)
        self.on_push(chunk)
        self.steps.add("sent", chunk)
        return PushReport(written=[u.remote_id for u in updates], requests=len(updates))

    def request_counts(self) -> dict[str, int]:
        return {}


def _plan(writes: int) -> Plan:
    return Plan(
        writes=[
            PlannedWrite(update=ScoreUpdate(remote_id=f"list:{n}", email=f"p{n}@example.com"), old={})
            for n in range(writes)
        ]
    )


def _push(
    monkeypatch: pytest.MonkeyPatch,
    steps: Steps,
    connector: FakeConnector,
    writes: int,
    on_record: Any = None,
) -> pipeline.PushResult:
    monkeypatch.setattr(pipeline, "PUSH_CHUNK", 2)
    monkeypatch.setattr(
        pipeline, "mark_pending", lambda engine, source, chunk, now: steps.add("pending", _chunk_of(chunk))
    )

    def record(engine: Any, source: str, chunk: Sequence[PlannedWrite], report: PushReport, **_: Any) -> None:
        (on_record or (lambda n: None))(_chunk_of(chunk))
        steps.add("recorded", _chunk_of(chunk))

    monkeypatch.setattr(pipeline, "record_push", record)
    result = pipeline.PushResult("fake")
    run = Run(id=1, source="fake", step=Step.PUSH, worker="test")
    source = SourceConfig.model_construct(name="fake")
    pipeline._push_plan(
        None,  # type: ignore[arg-type]  # the store side is replaced above
        source,
        LeadsyncConfig.model_construct(),
        _plan(writes),
        result,
        run,
        None,
        None,
        connector,  # type: ignore[arg-type]
    )
    return result


def test_a_chunk_is_recorded_while_the_next_one_is_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    steps = Steps()
    sending: dict[int, threading.Event] = {n: threading.Event() for n in range(3)}

    def on_push(chunk: int) -> None:
        sending[chunk].set()

    def on_record(chunk: int) -> None:
        # recording chunk n waits for chunk n + 1 to be on its way: a push that recorded first and
        # sent after would wait here in vain
        if chunk < 2:
            assert sending[chunk + 1].wait(WAIT_S), (
                f"chunk {chunk} was recorded before chunk {chunk + 1} was sent"
            )

    result = _push(monkeypatch, steps, FakeConnector(steps, on_push), writes=6, on_record=on_record)

    assert result.written == 6 and result.requests == 6
    for chunk in range(3):  # each chunk: marked pending, then sent, then recorded
        order = [steps.log.index((what, chunk)) for what in ("pending", "sent", "recorded")]
        assert order == sorted(order), steps.log
    assert steps.log[-1] == ("recorded", 2)


@pytest.mark.parametrize(
    ("failing_chunk", "error", "recorded"),
    [
        (1, stopping.Stopped("stop requested"), [0]),  # stopped mid chunk 1: chunk 0 is recorded
        (2, RuntimeError("platform down"), [0, 1]),  # chunk 2 failed: 0 and 1 are recorded
        (0, RuntimeError("platform down"), []),  # the first chunk failed: nothing was answered
    ],
)
def test_every_answered_chunk_is_recorded_before_the_push_ends(
    monkeypatch: pytest.MonkeyPatch, failing_chunk: int, error: BaseException, recorded: list[int]
) -> None:
    steps = Steps()

    def on_push(chunk: int) -> None:
        if chunk == failing_chunk:
            raise error

    with pytest.raises(type(error)):
        _push(monkeypatch, steps, FakeConnector(steps, on_push), writes=6)

    assert [chunk for what, chunk in steps.log if what == "recorded"] == recorded
    assert ("sent", failing_chunk) not in steps.log
    assert ("pending", failing_chunk) in steps.log  # marked before it was sent: sent in full next time


def test_a_chunk_that_cannot_be_recorded_ends_the_push_once_the_next_is_answered(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    steps = Steps()

    def on_record(chunk: int) -> None:
        if chunk == 0:
            raise RuntimeError("store lost")

    with pytest.raises(RuntimeError, match="store lost"):
        _push(monkeypatch, steps, FakeConnector(steps), writes=6, on_record=on_record)

    # chunk 1 was on its way when recording chunk 0 failed: answered before the push ended, and no
    # chunk after it was sent; chunks 0 and 1 stay pending (sent in full next time)
    assert ("sent", 1) in steps.log and ("pending", 2) not in steps.log
    assert [chunk for what, chunk in steps.log if what == "recorded"] == []
