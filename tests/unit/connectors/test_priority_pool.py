"""A priority pool runs its queued tasks most urgent first, each in its submitter's context, and a
shutdown that cancels leaves no one waiting on a task that will never run."""

from __future__ import annotations

import contextvars
import threading
import time
from concurrent.futures import CancelledError, Future

import pytest

from leadsync.connectors.pools import PriorityPool

TAG: contextvars.ContextVar[str] = contextvars.ContextVar("tag", default="none")


def _blocked(pool: PriorityPool) -> threading.Event:
    """Occupy the pool's one worker until the returned event is set."""
    release, started = threading.Event(), threading.Event()

    def hold() -> None:
        started.set()
        release.wait(5)

    pool.at(0).submit(hold)
    assert started.wait(5)
    return release


def test_queued_tasks_run_lowest_priority_first_and_in_submission_order_within_one() -> None:
    pool = PriorityPool(max_workers=1)
    release = _blocked(pool)
    ran: list[str] = []
    futures = [
        pool.at(priority).submit(ran.append, name)
        for priority, name in [(3, "c"), (1, "a1"), (2, "b"), (1, "a2"), (0, "first")]
    ]
    release.set()
    for future in futures:
        future.result(5)
    pool.shutdown()
    assert ran == ["first", "a1", "a2", "b", "c"]


def test_a_task_runs_in_the_context_of_the_code_that_submitted_it() -> None:
    pool = PriorityPool(max_workers=2)
    got = []
    for tag in ("members", "email_activity"):
        TAG.set(tag)
        got.append(pool.at(1).submit(TAG.get))
    pool.shutdown()
    assert [future.result() for future in got] == ["members", "email_activity"]


def test_a_task_error_is_raised_to_whoever_waits_on_it() -> None:
    pool = PriorityPool(max_workers=1)

    def fail() -> None:
        raise ValueError("page 2 is malformed")

    future = pool.at(0).submit(fail)
    with pytest.raises(ValueError, match="page 2 is malformed"):
        future.result(5)
    pool.shutdown()


def test_shutdown_with_cancel_cancels_the_queued_tasks() -> None:
    pool = PriorityPool(max_workers=1)
    release = _blocked(pool)
    queued = [pool.at(n).submit(lambda: "never") for n in range(3)]
    done = threading.Thread(target=pool.shutdown, kwargs={"wait": True, "cancel_futures": True})
    done.start()
    for future in queued:
        with pytest.raises(CancelledError):
            future.result(5)
    release.set()
    done.join(5)
    assert not done.is_alive()


def _submit_until_refused(pool: PriorityPool, submitted: list[Future[None]], going: threading.Event) -> None:
    going.set()
    while True:
        try:
            submitted.append(pool.at(1).submit(time.sleep, 0))
        except RuntimeError:
            return


@pytest.mark.parametrize("cancel", [True, False])
def test_a_task_submitted_while_the_pool_shuts_down_is_refused_run_or_cancelled_never_left_waiting(
    cancel: bool,
) -> None:
    """The Mailchimp pull's campaign workers go on submitting pages while the pull is stopped (a
    full disk failed the ingest): a page queued between the cancel and the threads' stop was never
    run nor cancelled, and its campaign worker, and the stop with it, waited forever."""
    for _ in range(200):
        pool = PriorityPool(max_workers=2)
        submitted: list[Future[None]] = []
        going = threading.Event()
        submitters = [
            threading.Thread(target=_submit_until_refused, args=(pool, submitted, going)) for _ in range(3)
        ]
        for thread in submitters:
            thread.start()
        going.wait(5)
        pool.shutdown(wait=True, cancel_futures=cancel)
        for thread in submitters:
            thread.join(5)
        # the threads have stopped: every task ran, or was cancelled
        assert all(future.done() for future in submitted)
