"""``leadsync undo RUN_ID``: write back the values a push run replaced.

The audit table holds, for every field and tag a push run wrote, the value it replaced (the
platform's value where the pull had read it, see ``sync.writeback``). Undo reads what the platform
holds now and, for each value, puts the replaced one back only if the platform still holds what
that run wrote: a value someone else (or a later run) has changed since is left alone and
reported. The lifecycle stage moves forward only (hubspot.md §3), so undo never moves it back.

Undo is itself a push run (command ``undo``) with its own audit rows, and what it writes becomes
leadsync's record of the platform's values. The next push writes the current scores again: stop
the daemon, or deselect the source, first if the run should stay undone.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, desc, select

from leadsync.config.settings import LeadsyncConfig, resolve_source
from leadsync.connectors.base import ScoreUpdate
from leadsync.connectors.errors import ConfigError, LeadsyncError
from leadsync.connectors.registry import connector_class
from leadsync.sync.lease import LeaseKeeper, holder_id
from leadsync.sync.observed import LIFECYCLE_TAG, OWNED_TAGS, STAGE_TAG, same_value
from leadsync.sync.runs import Outcome, RunCounts, Step, Trigger, finish_run, mark_interrupted, start_run
from leadsync.sync.store.models import Identity, SyncRun, WritebackAudit
from leadsync.sync.writeback import PLATFORM_LIFECYCLE, PlannedWrite, own_tags, record_push

__all__ = ["UndoItem", "UndoResult", "UnknownRun", "undo_run"]

_TAG_FAMILY = {STAGE_TAG: "stage", LIFECYCLE_TAG: "lifecycle"}


class UnknownRun(ConfigError):
    """RUN_ID names no push run: the message lists the recent push runs."""


@dataclass
class UndoItem:
    """One value a push run wrote, and what undo does with it."""

    remote_id: str
    email: str | None
    field: str
    written: str | None  # what the run wrote
    previous: str | None  # what it replaced: undo puts this back
    now: str | None  # what the platform holds now
    action: str  # restore | restored | failed | changed_since | forward_only
    detail: str = ""


@dataclass
class UndoResult:
    run_id: int
    source: str
    dry_run: bool
    undo_run_id: int | None = None
    items: list[UndoItem] = field(default_factory=list)
    requests: int = 0

    def count(self, *actions: str) -> int:
        return sum(1 for item in self.items if item.action in actions)


def _push_runs(engine: Engine, limit: int = 10) -> list[int]:
    with engine.connect() as connection:
        return list(
            connection.execute(
                select(SyncRun.id)
                .where(SyncRun.step == Step.PUSH.value)
                .order_by(desc(SyncRun.id))
                .limit(limit)
            ).scalars()
        )


def _find_run(engine: Engine, run_id: int) -> Any:
    with engine.connect() as connection:
        run = connection.execute(select(SyncRun).where(SyncRun.id == run_id)).first()
    recent = _push_runs(engine)
    choices = f"recent push runs: {', '.join(map(str, recent))}" if recent else "no push run is recorded yet"
    if run is None:
        raise UnknownRun(f"no run {run_id}; {choices}")
    if run.step != Step.PUSH.value:
        raise UnknownRun(f"run {run_id} is a {run.step} run, and undo takes a push run; {choices}")
    return run


def _written(engine: Engine, run_id: int) -> tuple[list[Any], dict[str, str | None]]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(WritebackAudit)
            .where(WritebackAudit.run_id == run_id, WritebackAudit.status == "written")
            .order_by(WritebackAudit.id)
        ).all()
        source = rows[0].source if rows else None
        emails = dict(
            connection.execute(
                select(Identity.remote_id, Identity.email).where(
                    Identity.source == source, Identity.remote_id.in_({row.remote_id for row in rows})
                )
            ).all()
        )
    return rows, emails


def _tags(value: str | None) -> list[str]:
    return [tag for tag in (value or "").split(",") if tag]


def _decide(row: Any, email: str | None, held: Mapping[str, Any] | None, prefix: str) -> UndoItem:
    item = UndoItem(row.remote_id, email, row.field, row.new_value, row.old_value, None, "restore")
    if row.field == PLATFORM_LIFECYCLE:
        item.action, item.detail = "forward_only", "the lifecycle stage only moves forward: not moved back"
        return item
    if held is None:
        item.action, item.detail = "changed_since", "the platform no longer has this contact"
        return item
    if row.field in _TAG_FAMILY:
        if OWNED_TAGS not in held:
            item.action, item.detail = "changed_since", "this platform holds no tags of leadsync's"
            return item
        ours = own_tags(prefix, _TAG_FAMILY[row.field])
        now = sorted(tag for tag in held[OWNED_TAGS] if tag in ours)
        item.now = ",".join(now) or None
        if now != [row.new_value]:
            item.action, item.detail = "changed_since", "the tags were changed since that run"
        return item
    item.now = held.get(row.field)
    if not same_value(row.field, item.now, row.new_value):
        item.action, item.detail = "changed_since", "changed on the platform since that run"
    return item


def undo_run(
    engine: Engine, config: LeadsyncConfig, run_id: int, *, dry_run: bool = False, now: datetime | None = None
) -> UndoResult:
    """Undo push run ``run_id`` (see the module's docstring); with ``dry_run`` only say what it would do."""
    run = _find_run(engine, run_id)
    source = config.source(run.source)
    rows, emails = _written(engine, run_id)
    result = UndoResult(run_id=run_id, source=source.name, dry_run=dry_run)
    if not rows:
        return result
    remote_ids = sorted({row.remote_id for row in rows if row.field != PLATFORM_LIFECYCLE})
    prefix = config.writeback.field_prefix
    with connector_class(source.platform)(resolve_source(config, source)) as connector:
        held = connector.read_owned(remote_ids) if remote_ids else {}
        result.items = [
            _decide(row, emails.get(row.remote_id), held.get(row.remote_id), prefix) for row in rows
        ]
        if dry_run:
            return result
        plans = _undo_plans(result.items)
        if not plans:
            return result
        holder = holder_id()
        mark_interrupted(engine, source=source.name)
        result.undo_run_id = start_run(
            engine,
            source=source.name,
            step=Step.PUSH,
            trigger=Trigger.COMMAND,
            command="undo",
            worker=holder,
            now=now or datetime.now(UTC),
        )
        report = None
        error: str | None = None
        try:
            with LeaseKeeper(engine, f"source:{source.name}", holder=holder):
                report = connector.push([plan.update for plan in plans])
                record_push(
                    engine, source.name, plans, report, run_id=result.undo_run_id, now=datetime.now(UTC)
                )
        except LeadsyncError as exc:
            error = str(exc)
            raise
        finally:
            failed = {failure.remote_id for failure in report.failed} if report is not None else set()
            for item in result.items:
                if item.action == "restore":
                    done = report is not None and item.remote_id not in failed
                    item.action = "restored" if done else "failed"
            result.requests = report.requests if report is not None else 0
            counts = RunCounts(
                planned=len(plans),
                written=len(plans) - len(failed) if report is not None else 0,
                write_failures=len(failed),
                requests=result.requests,
                undo_of=run_id,
            )
            ok = report is not None and not failed
            finish_run(
                engine,
                result.undo_run_id,
                outcome=Outcome.OK if ok else Outcome.FAILED,
                counts=counts,
                error=error
                if report is None
                else (None if ok else f"{len(failed)} contacts could not be restored"),
            )
    return result


def _undo_plans(items: Sequence[UndoItem]) -> list[PlannedWrite]:
    by_contact: dict[str, list[UndoItem]] = defaultdict(list)
    for item in items:
        if item.action == "restore":
            by_contact[item.remote_id].append(item)
    plans: list[PlannedWrite] = []
    for remote_id, restoring in by_contact.items():
        fields = {item.field: item.previous for item in restoring if item.field not in _TAG_FAMILY}
        tags_add = [tag for item in restoring if item.field in _TAG_FAMILY for tag in _tags(item.previous)]
        tags_remove = [item.written for item in restoring if item.field in _TAG_FAMILY and item.written]
        update = ScoreUpdate(
            remote_id=remote_id,
            email=restoring[0].email or "",
            fields=fields,
            tags_add=tuple(tags_add),
            tags_remove=tuple(tags_remove),
        )
        plans.append(
            PlannedWrite(
                update=update,
                old={item.field: item.now for item in restoring},
                new={item.field: item.previous for item in restoring},
            )
        )
    return plans
