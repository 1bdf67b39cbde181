"""The per-person fast path: a webhook delivery about a person becomes their new scores on every
platform that holds them, within seconds, through the same code as a scheduled sync.

For one person (all the deliveries waiting about them, taken together): read that one contact and
its recent events with the connector (``Connector.fetch_contact``), store them with the pull's
ingest (``sync.ingest.ingest_batch``, no cursor moved), re-score that person
(``sync.rescore.rescore_persons``), and push only that person's changes to each source holding
them (``sync.pipeline.push_source`` with a plan of their identities: the same diff, limits and
audit as a scheduled push, under a lease of its own, ``webhook:{source}``, so that a scheduled run
of the source is never made to wait or skip; a scheduled push that planned before the fast path
re-scored may write the older values, and the next run writes the new ones).

Echoes of leadsync's own writes cost no re-score and no write: a HubSpot property change of one of
leadsync's own properties is known from the delivery alone (hubspot.md §6: ``propertyName``), and
any other delivery whose contact reads back with the same scoring inputs and no new event marks
nobody for re-scoring (``sync.observed``: the digest; the ingest tells the echo).

A person the store does not know is logged and left to the next scheduled pull, which is also the
backstop for deliveries that never came.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, select

from leadsync.config.scoring_model import ScoringModel
from leadsync.config.settings import LeadsyncConfig, SourceConfig, resolve_source
from leadsync.connectors.base import Connector
from leadsync.connectors.errors import LeadsyncError
from leadsync.connectors.records import Platform
from leadsync.connectors.registry import connector_class
from leadsync.sync.ingest import ingest_batch
from leadsync.sync.pipeline import push_source
from leadsync.sync.rescore import rescore_persons
from leadsync.sync.runs import Trigger
from leadsync.sync.store.models import ChangedPerson, Identity, Person
from leadsync.sync.webhooks import queue
from leadsync.sync.writeback import plan_source

__all__ = ["FastPath", "Processor"]

log = logging.getLogger("leadsync.webhooks")

RESCORED, UNCHANGED, ECHO, UNKNOWN, FAILED = "rescored", "unchanged", "echo", "unknown_person", "failed"


def utcnow() -> datetime:
    return datetime.now(UTC)


class FastPath:
    """Processes the deliveries about one person at a time; safe to call from several threads (one
    lock per source around its connector, which is kept open between deliveries)."""

    def __init__(
        self,
        engine: Engine,
        config: LeadsyncConfig,
        model: ScoringModel,
        *,
        environ: Mapping[str, str] | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.engine, self.config, self.model, self.clock = engine, config, model, clock
        self.environ = dict(os.environ if environ is None else environ)
        self._connectors: dict[str, Connector] = {}
        self._locks: dict[str, threading.Lock] = {s.name: threading.Lock() for s in config.sources}
        self._guard = threading.Lock()
        self.counts: Counter[str] = Counter()  # outcomes, and "rescored_persons", "written"

    def _connector(self, source: SourceConfig) -> Connector:
        with self._guard:
            if source.name not in self._connectors:
                settings = resolve_source(self.config, source, self.environ)
                self._connectors[source.name] = connector_class(source.platform)(settings)
            return self._connectors[source.name]

    def close(self) -> None:
        with self._guard:
            for connector in self._connectors.values():
                connector.close()
            self._connectors.clear()

    def _count(self, key: str, amount: int = 1) -> None:
        with self._guard:
            self.counts[key] += amount

    def _own_echo(self, source: SourceConfig, row: Any) -> bool:
        """The echo of our own write, told from the delivery alone: a HubSpot change of one of
        leadsync's own properties (hubspot.md §6), an ActiveCampaign tag change of one of leadsync's
        own tags made through the API (activecampaign.md §9: ``initiated_from``)."""
        payload = row.payload or {}
        prefix = self.config.writeback.field_prefix
        if source.platform is Platform.HUBSPOT and row.kind == "contact.propertyChange":
            return str(payload.get("propertyName") or "").startswith(prefix)
        if source.platform is Platform.ACTIVECAMPAIGN and row.kind in (
            "contact_tag_added",
            "contact_tag_removed",
        ):
            return payload.get("initiated_from") == "api" and str(payload.get("tag") or "").startswith(prefix)
        return False

    def _find(self, source: str, rows: Sequence[Any]) -> tuple[str | None, int | None]:
        """The contact's remote id and its person's id in the store (None: not known)."""
        with self.engine.connect() as connection:
            for row in rows:
                if row.remote_id:
                    found = connection.execute(
                        select(Identity.remote_id, Identity.person_id).where(
                            Identity.source == source, Identity.remote_id == row.remote_id
                        )
                    ).first()
                    if found is not None:
                        return found.remote_id, found.person_id
            for row in rows:
                if row.email:
                    found = connection.execute(
                        select(Identity.remote_id, Identity.person_id).where(
                            Identity.source == source, Identity.email == row.email
                        )
                    ).first()
                    if found is not None:
                        return found.remote_id, found.person_id
        return None, None

    def process(self, source_name: str, rows: Sequence[Any]) -> str:
        """Work the deliveries ``rows`` (queue rows of one source about one person); the outcome."""
        source = self.config.source(source_name)
        relevant = [row for row in rows if not self._own_echo(source, row)]
        if not relevant:
            self._count(ECHO)
            return ECHO
        remote_id, person_id = self._find(source.name, relevant)
        if remote_id is None:
            who = next((r.email or r.remote_id for r in relevant if r.email or r.remote_id), "?")
            log.warning(
                "webhook %s of source %r is about %s, who is not in the store: the next scheduled "
                "pull of %s brings them in",
                relevant[0].kind,
                source.name,
                who,
                source.name,
            )
            self._count(UNKNOWN)
            return UNKNOWN
        now = self.clock()
        connector = self._connector(source)
        with self._locks[source.name]:
            batch = connector.fetch_contact(remote_id)
        if batch is None:
            log.warning(
                "webhook %s of source %r: contact %s is gone from the platform; the next pull settles it",
                relevant[0].kind,
                source.name,
                remote_id,
            )
            self._count(UNKNOWN)
            return UNKNOWN
        counts = ingest_batch(self.engine, batch, source=source.name, now=now)
        with self.engine.connect() as connection:
            person_id = connection.execute(
                select(Identity.person_id).where(
                    Identity.source == source.name, Identity.remote_id == remote_id
                )
            ).scalar_one_or_none()
            marked = (
                person_id is not None
                and connection.execute(
                    select(ChangedPerson.person_id).where(ChangedPerson.person_id == person_id)
                ).first()
                is not None
            )
        if not marked or person_id is None:
            outcome = ECHO if counts.echoes else UNCHANGED
            self._count(outcome)
            return outcome
        rescore_persons(self.engine, self.model, [person_id], now=now)
        self._count("rescored_persons")
        self._push(person_id, now)
        self._count(RESCORED)
        return RESCORED

    def _push(self, person_id: int, now: datetime) -> None:
        with self.engine.connect() as connection:
            held = connection.execute(
                select(Identity.source, Identity.remote_id).where(Identity.person_id == person_id)
            ).all()
            email = connection.execute(
                select(Person.email).where(Person.id == person_id)
            ).scalar_one_or_none()
        by_source: dict[str, list[str]] = {}
        for source_name, remote_id in held:
            by_source.setdefault(source_name, []).append(remote_id)
        for source in self.config.sources:
            if not source.enabled or source.name not in by_source:
                continue
            with self.engine.connect() as connection:
                plan = plan_source(
                    connection,
                    source.name,
                    prefix=self.config.writeback.field_prefix,
                    lifecycle_writeback=self.config.writeback.lifecycle,
                    now=now,
                    on_drift=self.config.writeback.on_drift,
                    remote_ids=by_source[source.name],
                )
            if not (plan.writes or plan.adopt or plan.drift):
                continue
            with self._locks[source.name]:
                result = push_source(
                    self.engine,
                    self.config,
                    source,
                    plan=plan,
                    now=now,
                    environ=self.environ,
                    connector=self._connector(source),
                    # its own lease: one fast-path push per source at a time across receivers,
                    # never the source's (a scheduled pull would skip its run meanwhile)
                    lease=f"webhook:{source.name}",
                    trigger=Trigger.WEBHOOK,
                )
            self._count("written", result.written)
            if not result.ok:
                log.warning(
                    "push of %s's new scores to %s failed; the scheduled push writes them: %s",
                    email,
                    source.name,
                    result.error,
                )


class Processor:
    """Takes queued deliveries from the store and works them on a small thread pool, one person at
    a time (their deliveries together), oldest first. ``processed(n)`` is told when ``n`` rows
    leave the queue (the receiver's bound). Runs on its own thread: the receiver and the scheduled
    jobs never wait for it."""

    def __init__(
        self,
        engine: Engine,
        fastpath: FastPath,
        *,
        workers: int = 2,
        processed: Callable[[int], None] | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.engine, self.fastpath, self.workers = engine, fastpath, workers
        self.processed = processed or (lambda _: None)
        self.clock = clock
        self.wake = threading.Event()
        self.stop = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="webhook")
        self._busy_ids: set[int] = set()
        self._busy_people: set[tuple[str, str]] = set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._futures: set[Future[None]] = set()

    def notify(self) -> None:
        self.wake.set()

    def start(self) -> Processor:
        self._thread = threading.Thread(target=self.run, name="webhook-dispatch", daemon=True)
        self._thread.start()
        return self

    def close(self, timeout: float = 30.0) -> None:
        self.stop.set()
        self.wake.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout)
        self._pool.shutdown(wait=True, cancel_futures=True)

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self.dispatch()
            except Exception:  # noqa: BLE001 - logged; the next wake-up tries again (the rows stay queued)
                log.exception("webhook dispatch failed; retrying")
            self.wake.wait(0.5)
            self.wake.clear()

    def idle(self) -> bool:
        with self._lock:
            return not self._busy_ids

    def dispatch(self) -> int:
        """Hand out the queued deliveries of persons nobody is working on; how many were handed."""
        with self._lock:
            skip = sorted(self._busy_ids)
            room = self.workers * 2 - len(self._busy_people)
        if room <= 0:
            return 0
        rows = queue.queued_rows(self.engine, limit=500, skip=skip)
        groups: dict[tuple[str, str], list[Any]] = {}
        for row in rows:
            key = (row.source, row.remote_id or row.email or row.event_id)
            groups.setdefault(key, []).append(row)
        handed = 0
        for key, group in groups.items():
            if self.stop.is_set() or room <= 0:
                break
            with self._lock:
                if key in self._busy_people:
                    continue
                self._busy_people.add(key)
                self._busy_ids.update(row.id for row in group)
            queue.claim(self.engine, [row.id for row in group])
            future = self._pool.submit(self._work, key, group)
            self._futures.add(future)
            future.add_done_callback(self._futures.discard)
            room -= 1
            handed += len(group)
        return handed

    def _work(self, key: tuple[str, str], rows: list[Any]) -> None:
        ids = [row.id for row in rows]
        started = time.monotonic()
        try:
            outcome = self.fastpath.process(key[0], rows)
            queue.finish(self.engine, ids, outcome=outcome, now=self.clock())
            log.info(
                "webhook %s: %d delivery(ies) of %s about %s: %s in %.2f s",
                rows[0].kind,
                len(rows),
                key[0],
                rows[0].email or rows[0].remote_id,
                outcome,
                time.monotonic() - started,
            )
        except LeadsyncError as exc:
            log.error(
                "webhook deliveries of source %r failed: %s; the scheduled sync catches up", key[0], exc
            )
            queue.finish(self.engine, ids, outcome=FAILED, now=self.clock(), error=str(exc))
        except Exception as exc:  # noqa: BLE001 - recorded on the rows and logged with its traceback
            log.exception("webhook deliveries of source %r failed unexpectedly", key[0])
            queue.finish(
                self.engine, ids, outcome=FAILED, now=self.clock(), error=f"{type(exc).__name__}: {exc}"
            )
        finally:
            self.processed(len(ids))  # before the rows stop being busy: idle() means counted too
            with self._lock:
                self._busy_people.discard(key)
                self._busy_ids.difference_update(ids)
            self.wake.set()
