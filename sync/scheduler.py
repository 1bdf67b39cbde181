"""``leadsync daemon``: a job per source on APScheduler, scoring and push after each pull.

Safe defaults as the APScheduler user guide recommends: explicit job ids with
``replace_existing``, ``coalesce`` (a backlog of missed runs becomes one run), ``max_instances=1``
and a misfire grace time from the config. A failing job is logged and simply runs again at its
next time; the others are not affected.

SIGTERM or SIGINT stops the daemon within ``sync.shutdown.GRACE_S`` (4 s), and it exits 0: the
stop request (``connectors.stopping``) ends every wait at once and lets no new request start, so a
pull stops between two requests (its cursor at the last committed page), a push between two batches
and a re-score between two batches; running jobs then end and the scheduler shuts down. A request
still in flight when the grace period ends is given up (the next run repeats it). A second signal
exits at once (``128 + signal``).

Two daemons on one store never work on the same source at once: every pull and push runs under the
source's lease (``sync.lease``); the second daemon's job logs who holds it and tries next time.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from contextlib import nullcontext
from datetime import UTC, datetime
from typing import Any

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, JobExecutionEvent
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import Engine

from leadsync.config.scoring_model import ScoringModel
from leadsync.config.settings import LeadsyncConfig
from leadsync.connectors import stopping
from leadsync.connectors.errors import LeadsyncError
from leadsync.sync.pipeline import prune_history, pull_source, push_source, score
from leadsync.sync.runs import Trigger
from leadsync.sync.shutdown import SignalStop

__all__ = ["Daemon"]

log = logging.getLogger("leadsync.daemon")


class Daemon:
    def __init__(self, engine: Engine, config: LeadsyncConfig, model: ScoringModel) -> None:
        self.engine = engine
        self.config = config
        self.model = model
        self.stop = threading.Event()
        self._score_lock = threading.Lock()  # one scoring pass at a time across source jobs
        sources = [source for source in config.sources if source.enabled]
        self.scheduler = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(max_workers=max(1, len(sources)))},
            job_defaults={
                "coalesce": True,
                "max_instances": 1,
                "misfire_grace_time": int(config.schedule.misfire_grace),
            },
            timezone=UTC,
        )
        self.scheduler.add_listener(self._on_event, EVENT_JOB_ERROR | EVENT_JOB_EXECUTED)
        for source in sources:
            self.scheduler.add_job(
                self.run_source,
                "interval",
                args=[source.name],
                id=f"sync:{source.name}",
                name=f"sync {source.name}",
                replace_existing=True,
                seconds=source.interval or config.schedule.interval,
                next_run_time=datetime.now(UTC),  # first run at start, then every interval
            )

    def run_source(self, name: str) -> dict[str, Any]:
        """Pull one source, score what changed, push that source. A plain id in, counts out."""
        source = self.config.source(name)
        done: dict[str, Any] = {}
        if self.stop.is_set():
            return {"stopped": True}
        prune_history(self.engine, self.config)
        pulled = pull_source(self.engine, self.config, source, stop=self.stop, trigger=Trigger.DAEMON)
        if pulled.held_by is not None:
            # a standby: another daemon holds the source's lease. pull_source logged the one INFO
            # line naming the holder; nothing failed, so no ERROR and no traceback
            return {"held_by": pulled.held_by}
        if not pulled.ok and pulled.error != "stopped":
            raise LeadsyncError(f"pull of {name} failed: {pulled.error}")
        done["pulled"] = pulled.contacts + pulled.events
        if self.stop.is_set():
            return {**done, "stopped": True}
        try:
            with self._score_lock:
                scored = score(self.engine, self.model, trigger=Trigger.DAEMON)
        except stopping.Stopped:  # between two batches: the rest keep their change marks
            log.info("score stopped between two batches (after the pull of %s)", name)
            return {**done, "stopped": True}
        done["scored"] = scored.scored
        if self.stop.is_set():
            return {**done, "stopped": True}
        pushed = push_source(self.engine, self.config, source, trigger=Trigger.DAEMON)
        if not pushed.ok:
            raise LeadsyncError(f"push to {name} failed: {pushed.error}")
        done["written"] = pushed.written
        return {**done, "stopped": True} if pushed.error == "stopped" else done

    def _on_event(self, event: JobExecutionEvent) -> None:
        if event.exception is not None:
            log.error("job %s failed: %s; it runs again at its next time", event.job_id, event.exception)
        elif isinstance(event.retval, dict) and "held_by" in event.retval:
            pass  # a standby's skipped run: already said in one INFO line (pull_source)
        else:
            log.info("job %s done: %s", event.job_id, event.retval)

    def request_stop(self, signum: int | None = None) -> None:
        """Stop every job between two requests (the process-wide stop request), then the loop."""
        stopping.request()
        self.stop.set()

    def run(self, *, install_signals: bool = True, on_started: Callable[[], None] | None = None) -> None:
        """Run until SIGTERM/SIGINT (or ``request_stop``), then wait for running jobs to end.

        With ``install_signals`` (the ``daemon`` command), the first signal stops the daemon and
        it exits 0 within ``GRACE_S`` whatever it was doing; a second exits at once.
        """
        signals = SignalStop(clean_exit=lambda _signum: 0, on_stop=self.request_stop)
        with signals if install_signals else nullcontext():
            self.scheduler.start()
            log.info("daemon started: %s", ", ".join(job.name for job in self.scheduler.get_jobs()))
            if on_started:
                on_started()
            while not self.stop.wait(0.5):
                pass
            self.scheduler.shutdown(wait=True)
            log.info("daemon stopped")
            if signals.received:
                signals.exit_process(0)  # committed and flushed: no slow interpreter teardown
